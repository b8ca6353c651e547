//! The data of one group and its members, and the queries on it that do not
//! change state.

use std::fmt;

use bytes::Bytes;
use protocol::join_group_request::JoinGroupRequestProtocol;
use protocol::join_group_response::JoinGroupResponseMember;

use super::{GroupError, Responder};

/// A group's state, with the names Kafka uses in DescribeGroups and ListGroups.
///
/// `Dead` is only ever reported for groups this coordinator does not hold;
/// a deleted group is dropped at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (possibly committed offsets only).
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// A generation is formed; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Not held by this coordinator.
    Dead,
}

impl GroupState {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a rebalance may start from.
    pub(super) fn can_rebalance(self) -> bool {
        matches!(
            self,
            GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable
        )
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One member of a group.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) rebalance_timeout_ms: i64,
    pub(super) session_timeout_ms: i64,
    /// The member's protocols in its order of preference, metadata opaque.
    pub(super) protocols: Vec<JoinGroupRequestProtocol>,
    pub(super) assignment: Bytes,
    /// A parked JoinGroup waiting for the join phase to complete.
    pub(super) awaiting_join: Option<Responder>,
    /// A parked SyncGroup waiting for the leader's assignment.
    pub(super) awaiting_sync: Option<Responder>,
    /// Added in the current join phase; such members expire on their own
    /// timer even while parked in JoinGroup.
    pub(super) is_new: bool,
    /// When the session expires unless refreshed.
    pub(super) session_deadline: i64,
}

impl Member {
    /// Whether the member joined with exactly these protocols and metadata.
    pub(super) fn matches(&self, protocols: &[JoinGroupRequestProtocol]) -> bool {
        self.protocols == protocols
    }

    pub(super) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// The metadata the member sent for `protocol` (empty if it has none).
    pub(super) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// When the session timer can expire the member. A member parked in
    /// JoinGroup or SyncGroup is alive by definition (the rebalance and sync
    /// timeouts bound the wait), except a new member, which has never
    /// heartbeated and would otherwise linger forever (Kafka's
    /// `hasSatisfiedHeartbeat`).
    pub(super) fn session_expiry(&self) -> Option<i64> {
        let parked = self.awaiting_join.is_some() || self.awaiting_sync.is_some();
        if parked && !self.is_new {
            None
        } else {
            Some(self.session_deadline)
        }
    }

    pub(super) fn touch(&mut self, now_ms: i64) {
        self.session_deadline = now_ms.saturating_add(self.session_timeout_ms);
    }
}

/// The initial rebalance delay of a group that was empty: the join phase
/// waits `delay_ms` and, as long as new members keep arriving, waits again,
/// up to the group's rebalance timeout in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InitialDelay {
    pub(super) delay_ms: i64,
    pub(super) remaining_ms: i64,
}

/// One consumer group.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) id: String,
    pub(super) state: GroupState,
    pub(super) generation_id: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader_id: Option<String>,
    /// Members in the order they joined.
    pub(super) members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pub(super) pending_members: Vec<(String, i64)>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub(super) pending_sync: Vec<String>,
    /// When the join phase ends even if not every member rejoined.
    pub(super) join_deadline: Option<i64>,
    pub(super) initial_delay: Option<InitialDelay>,
    /// A member joined during the initial delay, which extends it.
    pub(super) new_member_added: bool,
    /// When members still in `pending_sync` are removed.
    pub(super) sync_deadline: Option<i64>,
    /// The deadline under which the coordinator's timer index holds this group.
    pub(super) scheduled: Option<i64>,
}

impl Group {
    pub(super) fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: Vec::new(),
            pending_members: Vec::new(),
            pending_sync: Vec::new(),
            join_deadline: None,
            initial_delay: None,
            new_member_added: false,
            sync_deadline: None,
            scheduled: None,
        }
    }

    pub(super) fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub(super) fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub(super) fn has(&self, id: &str) -> bool {
        self.member(id).is_some()
    }

    pub(super) fn is_leader(&self, id: &str) -> bool {
        self.leader_id.as_deref() == Some(id)
    }

    pub(super) fn is_pending(&self, id: &str) -> bool {
        self.pending_members.iter().any(|(p, _)| p == id)
    }

    /// The member id currently holding a static `group.instance.id`.
    pub(super) fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.as_str())
    }

    pub(super) fn num_awaiting_join(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    /// Every known member has rejoined and no MEMBER_ID_REQUIRED member is
    /// still expected.
    pub(super) fn all_members_joined(&self) -> bool {
        self.num_awaiting_join() == self.members.len() && self.pending_members.is_empty()
    }

    /// The group's rebalance timeout: the largest of its members'.
    pub(super) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Whether a member with these protocols may join: an empty group takes
    /// any non-empty protocol list; otherwise the protocol type must match
    /// and one of the protocols must be supported by every current member.
    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[JoinGroupRequestProtocol],
    ) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|p| self.members.iter().all(|m| m.supports(&p.name)))
    }

    /// Kafka's protocol election: among the protocols every member supports,
    /// each member votes for the first one in its own preference order; the
    /// most votes wins, ties going to the earlier-joined member's preference.
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for member in &self.members {
            let choice = member
                .protocols
                .iter()
                .find_map(|p| candidates.iter().position(|c| *c == p.name));
            if let Some(i) = choice {
                votes[i] += 1;
            }
        }
        // `max_by_key` keeps the last maximum; iterate in reverse so that
        // ties go to the earliest candidate.
        (0..candidates.len())
            .rev()
            .max_by_key(|&i| votes[i])
            .map(|i| candidates[i].to_string())
    }

    /// The member list the leader receives: every member with its metadata
    /// for the selected protocol.
    pub(super) fn current_member_metadata(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// Kafka's `validateCurrentMember`: a static instance id must map to this
    /// member id (else FENCED_INSTANCE_ID), and the member must exist.
    pub(super) fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            return match self.static_member_id(instance) {
                Some(current) if current != member_id => Err(GroupError::FencedInstanceId),
                Some(_) => Ok(()),
                None => Err(GroupError::UnknownMemberId),
            };
        }
        if self.has(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    /// Removes a member (or pending member) without answering anything it
    /// has parked; a removed leader is replaced by the earliest remaining
    /// member.
    pub(super) fn remove(&mut self, id: &str) -> Option<Member> {
        let removed = self
            .members
            .iter()
            .position(|m| m.id == id)
            .map(|i| self.members.remove(i));
        if self.is_leader(id) {
            self.leader_id = self.members.first().map(|m| m.id.clone());
        }
        self.pending_members.retain(|(p, _)| p != id);
        self.pending_sync.retain(|p| p != id);
        removed
    }

    /// The earliest time this group has timer work: a join phase or sync
    /// wait that ends, or a session that expires.
    pub(super) fn next_deadline(&self) -> Option<i64> {
        let join = match self.state {
            GroupState::PreparingRebalance => self.join_deadline,
            _ => None,
        };
        let sync = match self.state {
            GroupState::CompletingRebalance | GroupState::Stable => self.sync_deadline,
            _ => None,
        };
        let sessions = self.members.iter().filter_map(Member::session_expiry);
        let pending = self.pending_members.iter().map(|(_, at)| *at);
        join.into_iter()
            .chain(sync)
            .chain(sessions)
            .chain(pending)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol(name: &str) -> JoinGroupRequestProtocol {
        JoinGroupRequestProtocol {
            name: name.to_string(),
            metadata: Bytes::from(name.as_bytes().to_vec()),
        }
    }

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.to_string(),
            instance_id: None,
            client_id: "c".to_string(),
            client_host: "/127.0.0.1".to_string(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocols: protocols.iter().map(|p| protocol(p)).collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            session_deadline: 0,
        }
    }

    fn group(members: Vec<Member>) -> Group {
        let mut g = Group::new("g");
        g.state = GroupState::Stable;
        g.protocol_type = Some("consumer".to_string());
        g.leader_id = members.first().map(|m| m.id.clone());
        g.members = members;
        g
    }

    #[test]
    fn most_votes_wins_among_common_protocols() {
        let g = group(vec![
            member("a", &["range", "roundrobin"]),
            member("b", &["roundrobin", "range"]),
            member("c", &["roundrobin", "range", "sticky"]),
        ]);
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
    }

    #[test]
    fn ties_go_to_the_first_members_preference() {
        let g = group(vec![
            member("a", &["range", "roundrobin"]),
            member("b", &["roundrobin", "range"]),
        ]);
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
    }

    #[test]
    fn protocols_not_shared_by_all_are_not_candidates() {
        let g = group(vec![
            member("a", &["sticky", "range"]),
            member("b", &["range"]),
        ]);
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        assert!(g.supports_protocols("consumer", &[protocol("range")]));
        assert!(!g.supports_protocols("consumer", &[protocol("sticky")]));
        assert!(!g.supports_protocols("connect", &[protocol("range")]));
    }

    #[test]
    fn removing_the_leader_promotes_the_earliest_member() {
        let mut g = group(vec![member("a", &["range"]), member("b", &["range"])]);
        g.remove("a");
        assert_eq!(g.leader_id.as_deref(), Some("b"));
        g.remove("b");
        assert_eq!(g.leader_id, None);
    }

    #[test]
    fn parked_members_do_not_expire_unless_new() {
        let mut m = member("a", &["range"]);
        m.session_deadline = 5;
        assert_eq!(m.session_expiry(), Some(5));
        m.awaiting_sync = Some(1);
        assert_eq!(m.session_expiry(), None);
        m.awaiting_sync = None;
        m.awaiting_join = Some(1);
        m.is_new = true;
        assert_eq!(m.session_expiry(), Some(5));
    }
}
