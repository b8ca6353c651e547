//! The rebalance protocol's transitions: starting a join phase, completing
//! it into a new generation, propagating the leader's assignment, removing
//! members, and the timers that drive all of these.
//!
//! ```text
//!            join (new member)        all joined / rebalance timeout
//!   Empty ─────────────────────▶ PreparingRebalance ──────────────▶ CompletingRebalance
//!     ▲                               ▲    │ no members left            │ leader's SyncGroup
//!     └───────────────────────────────┼────┘                            ▼
//!                                     └──── join / leave / expiry ── Stable
//! ```

use bytes::Bytes;
use protocol::join_group_response::JoinGroupResponse;
use protocol::sync_group_response::SyncGroupResponse;

use super::state::{Group, GroupState, InitialDelay};
use super::{GroupError, Output};

/// How many rounds of due timers one call processes. Each round either
/// removes a due timer or moves it later, so this bound only matters for
/// zero timeouts; what is left is picked up by the next `tick`.
const MAX_TIMER_ROUNDS: usize = 16;

/// What a state transition needs from its caller.
pub(super) struct Ctx<'a> {
    pub(super) now: i64,
    pub(super) initial_delay_ms: i64,
    /// Responses that became ready, for this request's client or others.
    pub(super) out: &'a mut Vec<Output>,
}

/// A JoinGroup answer that carries only an error.
pub(super) fn join_error(member_id: &str, error: GroupError) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: error.code(),
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

/// A SyncGroup answer that carries only an error.
pub(super) fn sync_error(error: GroupError) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: error.code(),
        ..Default::default()
    }
}

impl Group {
    /// The JoinGroup answer of the current generation; only the leader gets
    /// the member list (with metadata) to run the assignor on.
    pub(super) fn join_response(&self, member_id: &str, with_members: bool) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code: 0,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: if with_members {
                self.current_member_metadata()
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    pub(super) fn maybe_prepare_rebalance(&mut self, ctx: &mut Ctx<'_>) {
        if self.state.can_rebalance() {
            self.prepare_rebalance(ctx);
        }
    }

    /// Starts a join phase. Members parked in SyncGroup are told to rejoin;
    /// a group that was empty waits the initial rebalance delay first.
    pub(super) fn prepare_rebalance(&mut self, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::CompletingRebalance {
            for member in &mut self.members {
                member.assignment = Bytes::new();
            }
            self.propagate_assignment(ctx, Some(GroupError::RebalanceInProgress));
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        if self.state == GroupState::Empty {
            let delay_ms = ctx.initial_delay_ms.max(0);
            self.initial_delay = Some(InitialDelay {
                delay_ms,
                remaining_ms: (self.rebalance_timeout_ms() - delay_ms).max(0),
            });
            self.join_deadline = Some(ctx.now.saturating_add(delay_ms));
        } else {
            self.initial_delay = None;
            self.join_deadline = Some(ctx.now.saturating_add(self.rebalance_timeout_ms()));
        }
        self.state = GroupState::PreparingRebalance;
        self.try_complete_join(ctx);
    }

    /// Completes the join phase early once every expected member is in
    /// (never during the initial delay, which always runs to its end).
    pub(super) fn try_complete_join(&mut self, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_members_joined()
        {
            self.complete_join(ctx);
        }
    }

    /// The join phase's deadline passed: extend the initial delay if new
    /// members keep arriving, otherwise form the generation with whoever
    /// joined.
    fn on_join_deadline(&mut self, ctx: &mut Ctx<'_>) {
        self.join_deadline = None;
        if let Some(delay) = self.initial_delay
            && self.new_member_added
            && delay.remaining_ms > 0
        {
            self.new_member_added = false;
            let next = delay.delay_ms.min(delay.remaining_ms);
            self.initial_delay = Some(InitialDelay {
                delay_ms: delay.delay_ms,
                remaining_ms: (delay.remaining_ms - next).max(0),
            });
            self.join_deadline = Some(ctx.now.saturating_add(next));
            return;
        }
        self.complete_join(ctx);
    }

    /// Ends the join phase: dynamic members that did not rejoin are removed
    /// (static ones are kept), the generation advances and every parked
    /// JoinGroup is answered.
    fn complete_join(&mut self, ctx: &mut Ctx<'_>) {
        self.initial_delay = None;
        self.join_deadline = None;
        self.new_member_added = false;
        let not_rejoined: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &not_rejoined {
            self.remove_answering(ctx, id);
        }
        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left: wait another
            // rebalance timeout, for them or for their sessions to expire.
            self.join_deadline = Some(ctx.now.saturating_add(self.rebalance_timeout_ms().max(1)));
            return;
        }
        self.init_next_generation();
        if self.state == GroupState::Empty {
            return;
        }
        let answers: Vec<Output> = self
            .members
            .iter()
            .filter_map(|m| {
                let responder = m.awaiting_join?;
                Some(Output::Join(
                    responder,
                    self.join_response(&m.id, self.is_leader(&m.id)),
                ))
            })
            .collect();
        ctx.out.extend(answers);
        for member in &mut self.members {
            member.awaiting_join = None;
            member.is_new = false;
            member.touch(ctx.now);
        }
        self.pending_sync = self.members.iter().map(|m| m.id.clone()).collect();
        self.sync_deadline = Some(ctx.now.saturating_add(self.rebalance_timeout_ms()));
    }

    /// Keeps the leader if it rejoined, else picks the first member that
    /// did. False when nobody rejoined (or the group has no leader).
    fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.as_deref() else {
            return false;
        };
        if self
            .member(leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        match self.members.iter().find(|m| m.awaiting_join.is_some()) {
            Some(joined) => {
                self.leader_id = Some(joined.id.clone());
                true
            }
            None => false,
        }
    }

    fn init_next_generation(&mut self) {
        self.generation_id = self.generation_id.wrapping_add(1);
        self.pending_sync.clear();
        self.sync_deadline = None;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.state = GroupState::Empty;
        } else {
            self.protocol_name = self.select_protocol();
            self.state = GroupState::CompletingRebalance;
        }
    }

    /// Answers every member parked in SyncGroup with its assignment (or with
    /// `error`), restarting their session timers.
    pub(super) fn propagate_assignment(&mut self, ctx: &mut Ctx<'_>, error: Option<GroupError>) {
        let (protocol_type, protocol_name) = match error {
            None => (self.protocol_type.clone(), self.protocol_name.clone()),
            Some(_) => (None, None),
        };
        for member in &mut self.members {
            let Some(responder) = member.awaiting_sync.take() else {
                continue;
            };
            ctx.out.push(Output::Sync(
                responder,
                SyncGroupResponse {
                    error_code: error.map_or(0, GroupError::code),
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: member.assignment.clone(),
                    ..Default::default()
                },
            ));
            member.touch(ctx.now);
        }
    }

    /// Removes a member, answering whatever it had parked with
    /// UNKNOWN_MEMBER_ID so that no responder is left waiting forever.
    pub(super) fn remove_answering(&mut self, ctx: &mut Ctx<'_>, id: &str) {
        let Some(member) = self.remove(id) else {
            return;
        };
        if let Some(responder) = member.awaiting_join {
            ctx.out.push(Output::Join(
                responder,
                join_error("", GroupError::UnknownMemberId),
            ));
        }
        if let Some(responder) = member.awaiting_sync {
            ctx.out.push(Output::Sync(
                responder,
                sync_error(GroupError::UnknownMemberId),
            ));
        }
    }

    /// A member left or expired: rebalance the others.
    pub(super) fn remove_member_and_update(&mut self, ctx: &mut Ctx<'_>, id: &str) {
        self.remove_answering(ctx, id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(ctx)
            }
            GroupState::PreparingRebalance => self.try_complete_join(ctx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// A MEMBER_ID_REQUIRED member left or never came back.
    pub(super) fn remove_pending_and_update(&mut self, ctx: &mut Ctx<'_>, id: &str) {
        self.pending_members.retain(|(p, _)| p != id);
        self.try_complete_join(ctx);
    }

    /// The leader (or some followers) never sent SyncGroup within the
    /// rebalance timeout: drop those members and rebalance the rest.
    fn expire_pending_sync(&mut self, ctx: &mut Ctx<'_>) {
        self.sync_deadline = None;
        let in_sync_phase = matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        );
        if !in_sync_phase || self.pending_sync.is_empty() {
            return;
        }
        for id in std::mem::take(&mut self.pending_sync) {
            self.remove_answering(ctx, &id);
        }
        self.prepare_rebalance(ctx);
    }

    /// Fires every timer that is due at `ctx.now`.
    pub(super) fn run_timers(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        for _ in 0..MAX_TIMER_ROUNDS {
            let mut fired = false;

            let expired: Vec<String> = self
                .pending_members
                .iter()
                .filter(|(_, at)| *at <= now)
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                fired = true;
                self.remove_pending_and_update(ctx, &id);
            }

            let expired: Vec<String> = self
                .members
                .iter()
                .filter(|m| m.session_expiry().is_some_and(|at| at <= now))
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                // An earlier removal may have completed a join phase, which
                // restarts every session.
                let still_due = self
                    .member(&id)
                    .and_then(|m| m.session_expiry())
                    .is_some_and(|at| at <= now);
                if still_due {
                    fired = true;
                    self.remove_member_and_update(ctx, &id);
                }
            }

            if self.sync_deadline.is_some_and(|at| at <= now) {
                fired = true;
                self.expire_pending_sync(ctx);
            }

            if self.state == GroupState::PreparingRebalance
                && self.join_deadline.is_some_and(|at| at <= now)
            {
                fired = true;
                self.on_join_deadline(ctx);
            }

            if !fired {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::join_group_request::JoinGroupRequest;

    use super::super::testing::*;
    use super::super::{GroupState, NEW_MEMBER_JOIN_TIMEOUT_MS};
    use super::*;

    #[test]
    fn expired_session_removes_the_member_and_rebalances() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b", "c"], 0);
        for id in [&ids[0], &ids[2]] {
            assert_eq!(c.heartbeat(5_000, &heartbeat("g", 1, id), 3).error_code, 0);
        }
        // b's session started when it got its assignment (t = 2).
        assert_eq!(c.next_deadline(), Some(2 + SESSION));
        assert!(c.tick(1 + SESSION).is_empty());
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        assert!(c.tick(2 + SESSION).is_empty());
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let hb = c.heartbeat(2 + SESSION, &heartbeat("g", 1, &ids[1]), 3);
        assert_eq!(hb.error_code, GroupError::UnknownMemberId.code());
        assert!(
            c.join_group(12_000, 20, "c", "/h", &join("g", &ids[2], RANGE), 3)
                .is_empty()
        );
        let out = c.join_group(12_001, 21, "a", "/h", &join("g", &ids[0], RANGE), 3);
        let leader = joined(&out, 21);
        assert_eq!((leader.generation_id, leader.members.len()), (2, 2));
        assert_eq!(joined(&out, 20).leader, ids[0]);
    }

    #[test]
    fn rebalance_timeout_removes_members_that_did_not_rejoin() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b", "c"], 0);
        assert!(
            c.join_group(100, 20, "a", "/h", &join("g", &ids[0], RANGE), 3)
                .is_empty()
        );
        assert!(
            c.join_group(200, 21, "b", "/h", &join("g", &ids[1], RANGE), 3)
                .is_empty()
        );
        // c stays alive through heartbeats but ignores REBALANCE_IN_PROGRESS.
        for t in (5_000..=30_000).step_by(5_000) {
            let hb = c.heartbeat(t, &heartbeat("g", 1, &ids[2]), 3);
            assert_eq!(hb.error_code, GroupError::RebalanceInProgress.code());
        }
        assert_eq!(c.next_deadline(), Some(100 + REBALANCE));
        let out = c.tick(100 + REBALANCE);
        assert_eq!(out.len(), 2);
        let leader = joined(&out, 20);
        assert_eq!((leader.generation_id, leader.members.len()), (2, 2));
        assert_eq!(joined(&out, 21).generation_id, 2);
        let hb = c.heartbeat(100 + REBALANCE, &heartbeat("g", 1, &ids[2]), 3);
        assert_eq!(hb.error_code, GroupError::UnknownMemberId.code());
    }

    #[test]
    fn initial_delay_extends_while_members_arrive_up_to_the_rebalance_timeout() {
        let mut c = coordinator(1_000);
        let request = JoinGroupRequest {
            rebalance_timeout_ms: 2_500,
            ..join("g", "", RANGE)
        };
        assert!(c.join_group(0, 1, "a", "/h", &request, 3).is_empty());
        assert!(c.join_group(500, 2, "b", "/h", &request, 3).is_empty());
        assert!(c.tick(1_000).is_empty());
        assert!(c.join_group(1_500, 3, "c", "/h", &request, 3).is_empty());
        assert!(c.tick(2_000).is_empty());
        assert_eq!(c.next_deadline(), Some(2_500));
        assert!(c.join_group(2_200, 4, "d", "/h", &request, 3).is_empty());
        // The rebalance timeout caps the delay although d just arrived.
        let out = c.tick(2_500);
        assert_eq!(out.len(), 4);
        assert_eq!(joined(&out, 1).members.len(), 4);
    }

    #[test]
    fn a_new_member_stuck_in_join_times_out() {
        let mut c = coordinator(0);
        let slow = JoinGroupRequest {
            rebalance_timeout_ms: 600_000,
            ..join("g", "", RANGE)
        };
        let out = c.join_group(0, 1, "a", "/h", &slow, 3);
        let a = joined(&out, 1).member_id;
        let _ = c.sync_group(1, 2, &sync("g", 1, &a, &[]), 3);
        // b arrives; a keeps heartbeating but never rejoins.
        assert!(
            c.join_group(100, 3, "b", "/h", &join("g", "", RANGE), 3)
                .is_empty()
        );
        let mut t = 100;
        while t < 100 + NEW_MEMBER_JOIN_TIMEOUT_MS {
            assert!(c.tick(t).is_empty());
            let hb = c.heartbeat(t, &heartbeat("g", 1, &a), 3);
            assert_eq!(hb.error_code, GroupError::RebalanceInProgress.code());
            t += 5_000;
        }
        let out = c.tick(100 + NEW_MEMBER_JOIN_TIMEOUT_MS);
        assert_eq!(
            joined(&out, 3).error_code,
            GroupError::UnknownMemberId.code()
        );
        assert_eq!(c.groups["g"].members.len(), 1);
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
    }
}
