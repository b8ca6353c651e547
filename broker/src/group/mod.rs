//! The classic Kafka consumer-group coordinator (JoinGroup / SyncGroup /
//! Heartbeat / LeaveGroup, plus Describe/List/DeleteGroups) as a pure state
//! machine: no I/O, no async, the clock passed in as `now_ms`.
//!
//! A JoinGroup or SyncGroup may be answered much later, and a call for one
//! member may complete the requests of others (the last member to join
//! completes everyone's JoinGroup; the leader's SyncGroup completes every
//! parked follower's). So the caller names each such request with an opaque
//! [`Responder`] and every call returns the [`Output`]s that became ready.
//! Timeouts (sessions, rebalance, initial delay, pending SyncGroups) fire in
//! [`Coordinator::tick`]; [`Coordinator::next_deadline`] says when.
//!
//! # Layout
//! - `mod.rs`: [`Coordinator`], [`CoordinatorConfig`], [`Output`], timers, the
//!   queries OffsetCommit needs.
//! - `join.rs`, `sync.rs`, `heartbeat.rs`, `leave.rs`: one API each.
//! - `admin.rs`: DescribeGroups, ListGroups, DeleteGroups.
//! - `rebalance.rs`: the state transitions shared by the APIs and timers.
//! - `state.rs`: [`GroupState`], the group and member data, protocol election.
//! - `member_id.rs`: `<client_id>-<uuid>` member ids from a seeded generator.
//! - `error.rs`: [`GroupError`] and its Kafka error codes.
//!
//! # Example
//! ```
//! use broker::group::{Coordinator, CoordinatorConfig, Output};
//! use protocol::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
//!
//! let mut coordinator = Coordinator::new(CoordinatorConfig {
//!     initial_rebalance_delay_ms: 0,
//!     ..CoordinatorConfig::default()
//! });
//! let join = JoinGroupRequest {
//!     group_id: "orders".into(),
//!     session_timeout_ms: 10_000,
//!     rebalance_timeout_ms: 30_000,
//!     protocol_type: "consumer".into(),
//!     protocols: vec![JoinGroupRequestProtocol { name: "range".into(), metadata: Default::default() }],
//!     ..Default::default()
//! };
//! // v3: the member id is assigned at once; alone in the group, the
//! // consumer becomes the leader of generation 1.
//! let outputs = coordinator.join_group(0, 7, "client", "/10.0.0.1", &join, 3);
//! let Output::Join(7, response) = &outputs[0] else { panic!() };
//! assert_eq!((response.error_code, response.generation_id), (0, 1));
//! assert_eq!(response.leader, response.member_id);
//! // The session now expires unless the consumer heartbeats.
//! assert_eq!(coordinator.next_deadline(), Some(10_000));
//! ```

mod admin;
mod error;
mod heartbeat;
mod join;
mod leave;
mod member_id;
mod rebalance;
mod state;
mod sync;
#[cfg(test)]
mod testing;

use std::collections::{BTreeSet, HashMap};

use protocol::join_group_response::JoinGroupResponse;
use protocol::sync_group_response::SyncGroupResponse;

pub use error::GroupError;
pub use state::GroupState;

use member_id::MemberIds;
use rebalance::{Ctx, join_error, sync_error};
use state::Group;

/// The caller's name for a parked JoinGroup or SyncGroup (e.g. connection
/// and correlation id packed together); opaque to the coordinator.
pub type Responder = u64;

/// How long a new member may wait in JoinGroup before it is dropped: it has
/// no member id to heartbeat with, and a client that gave up (request
/// timeout) would otherwise hold the rebalance until the rebalance timeout.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// A response that is ready to be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Join(Responder, JoinGroupResponse),
    Sync(Responder, SyncGroupResponse),
}

impl Output {
    /// The request this answers.
    pub fn responder(&self) -> Responder {
        match self {
            Output::Join(r, _) | Output::Sync(r, _) => *r,
        }
    }
}

/// The coordinator's settings (Kafka's `group.*` broker configs).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of
    /// an empty group waits for more members (extended while they keep
    /// coming, up to the rebalance timeout). Kafka's default is 3000.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` (default 6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (default 1800000).
    pub max_session_timeout_ms: i32,
    /// `group.max.size` (default unbounded).
    pub max_group_size: usize,
    /// Seed of the member-id generator; give each broker (and shard) a
    /// different one, e.g. from the clock at startup.
    pub member_id_seed: u64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_group_size: usize::MAX,
            member_id_seed: 0,
        }
    }
}

/// The groups of one shard and their timers.
#[derive(Debug)]
pub struct Coordinator {
    config: CoordinatorConfig,
    groups: HashMap<String, Group>,
    /// `(deadline, group id)` for every group with timer work.
    timers: BTreeSet<(i64, String)>,
    ids: MemberIds,
}

impl Coordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        Coordinator {
            ids: MemberIds::new(config.member_id_seed),
            config,
            groups: HashMap::new(),
            timers: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Fires every timer due at `now_ms`: expired sessions (the member is
    /// removed and the group rebalances), join phases that reached their
    /// rebalance timeout or initial delay (members that did not rejoin are
    /// removed), and SyncGroups not received within the rebalance timeout.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let due: Vec<String> = self
            .timers
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .map(|(_, id)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            self.settle(&id, now_ms, &mut out);
        }
        out
    }

    /// The earliest time at which [`tick`](Self::tick) has work, if any.
    /// It changes after every call; read it again each time.
    pub fn next_deadline(&self) -> Option<i64> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Whether an OffsetCommit from this member may be applied (Kafka's
    /// `validateOffsetCommit`); the error is a Kafka error code for every
    /// partition of the commit. Generation -1 with no member id is a simple
    /// (standalone) commit, allowed while the group has no members; for an
    /// unknown group it is allowed too, and the caller should then
    /// [`ensure_group`](Self::ensure_group). Members must commit with the
    /// current generation (the previous one is still current while
    /// PreparingRebalance); during CompletingRebalance they get
    /// REBALANCE_IN_PROGRESS.
    pub fn commit_allowed(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), i16> {
        self.check_commit(group_id, generation_id, member_id, group_instance_id)
            .map_err(GroupError::code)
    }

    fn check_commit(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        let Some(group) = self.groups.get(group_id) else {
            return if generation_id < 0 {
                Ok(())
            } else {
                Err(GroupError::IllegalGeneration)
            };
        };
        if generation_id < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
            group.validate_member(member_id, group_instance_id)?;
            if generation_id != group.generation_id {
                return Err(GroupError::IllegalGeneration);
            }
            if group.state == GroupState::CompletingRebalance {
                return Err(GroupError::RebalanceInProgress);
            }
            return Ok(());
        }
        if group.state == GroupState::Empty {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    pub fn group_exists(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
    }

    /// The group's state, `None` if this coordinator does not hold it.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// The group's current generation id, `None` if not held.
    pub fn generation_id(&self, group_id: &str) -> Option<i32> {
        self.groups.get(group_id).map(|g| g.generation_id)
    }

    /// Makes sure an (Empty) group exists: for groups that only commit
    /// offsets (simple consumers, admin tools) and for groups whose offsets
    /// are loaded at startup, so that Describe/List/DeleteGroups see them.
    pub fn ensure_group(&mut self, group_id: &str) {
        if !self.groups.contains_key(group_id) {
            self.groups
                .insert(group_id.to_string(), Group::new(group_id));
        }
    }

    /// Unloads every group (shutdown, or the shard loses the groups): every
    /// parked JoinGroup and SyncGroup is answered with NOT_COORDINATOR so
    /// the clients look for the coordinator again.
    pub fn shutdown(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        for group in self.groups.values() {
            for member in &group.members {
                if let Some(r) = member.awaiting_join {
                    out.push(Output::Join(
                        r,
                        join_error(&member.id, GroupError::NotCoordinator),
                    ));
                }
                if let Some(r) = member.awaiting_sync {
                    out.push(Output::Sync(r, sync_error(GroupError::NotCoordinator)));
                }
            }
        }
        self.groups.clear();
        self.timers.clear();
        out
    }

    /// Fires the group's due timers, then files it under its next deadline.
    fn settle(&mut self, group_id: &str, now_ms: i64, out: &mut Vec<Output>) {
        if let Some(group) = self.groups.get_mut(group_id) {
            let mut ctx = Ctx {
                now: now_ms,
                initial_delay_ms: self.config.initial_rebalance_delay_ms,
                out,
            };
            group.run_timers(&mut ctx);
        }
        self.reschedule(group_id);
    }

    /// Files the group under its current next deadline.
    fn reschedule(&mut self, group_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let next = group.next_deadline();
        if group.scheduled == next {
            return;
        }
        if let Some(old) = group.scheduled.take() {
            self.timers.remove(&(old, group_id.to_string()));
        }
        if let Some(at) = next {
            self.timers.insert((at, group_id.to_string()));
        }
        group.scheduled = next;
    }

    fn unschedule(&mut self, group_id: &str) {
        if let Some(old) = self
            .groups
            .get_mut(group_id)
            .and_then(|g| g.scheduled.take())
        {
            self.timers.remove(&(old, group_id.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn commit(
        c: &Coordinator,
        group: &str,
        generation: i32,
        member: &str,
    ) -> Result<(), GroupError> {
        c.check_commit(group, generation, member, None)
    }

    #[test]
    fn simple_commits_need_an_empty_or_unknown_group() {
        let mut c = coordinator(0);
        assert_eq!(commit(&c, "solo", -1, ""), Ok(()));
        assert_eq!(
            commit(&c, "solo", 3, "m"),
            Err(GroupError::IllegalGeneration)
        );
        c.ensure_group("solo");
        assert_eq!(c.group_state("solo"), Some(GroupState::Empty));
        assert_eq!(commit(&c, "solo", -1, ""), Ok(()));

        let (ids, generation) = stable_group(&mut c, "g", &["a", "b"], 0);
        assert_eq!(commit(&c, "g", -1, ""), Err(GroupError::UnknownMemberId));
        assert_eq!(c.commit_allowed("g", -1, "", None), Err(25));
        assert_eq!(commit(&c, "g", generation, &ids[1]), Ok(()));
        assert_eq!(
            commit(&c, "g", generation + 1, &ids[1]),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(
            commit(&c, "g", generation, "ghost"),
            Err(GroupError::UnknownMemberId)
        );
        assert_eq!(
            c.check_commit("g", generation, &ids[1], Some("not-mine")),
            Err(GroupError::UnknownMemberId)
        );
    }

    #[test]
    fn commits_during_rebalance() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        // PreparingRebalance: the old generation may still commit (consumers
        // commit while revoking partitions).
        assert!(
            c.join_group(10, 1, "a", "/h", &join("g", &ids[0], RANGE), 3)
                .is_empty()
        );
        assert_eq!(commit(&c, "g", 1, &ids[1]), Ok(()));
        // CompletingRebalance: the new generation exists but has no
        // assignment yet.
        let out = c.join_group(11, 2, "b", "/h", &join("g", &ids[1], RANGE), 3);
        assert_eq!(out.len(), 2);
        assert_eq!(
            commit(&c, "g", 2, &ids[1]),
            Err(GroupError::RebalanceInProgress)
        );
        assert_eq!(
            commit(&c, "g", 1, &ids[1]),
            Err(GroupError::IllegalGeneration)
        );
    }

    #[test]
    fn shutdown_releases_parked_requests() {
        let mut c = coordinator(1_000);
        assert!(
            c.join_group(0, 1, "a", "/h", &join("g", "", RANGE), 3)
                .is_empty()
        );
        let out = c.shutdown();
        assert_eq!(
            joined(&out, 1).error_code,
            GroupError::NotCoordinator.code()
        );
        assert!(!c.group_exists("g"));
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn timers_are_indexed_per_group() {
        let mut c = coordinator(500);
        assert!(
            c.join_group(0, 1, "a", "/h", &join("g1", "", RANGE), 3)
                .is_empty()
        );
        assert!(
            c.join_group(100, 2, "a", "/h", &join("g2", "", RANGE), 3)
                .is_empty()
        );
        assert_eq!(c.next_deadline(), Some(500));
        let out = c.tick(550);
        assert_eq!(joined(&out, 1).generation_id, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(c.next_deadline(), Some(600));
        let out = c.tick(600);
        assert_eq!(joined(&out, 2).generation_id, 1);
    }
}
