//! Heartbeat (api key 12, versions 0-4).

use protocol::heartbeat_request::HeartbeatRequest;
use protocol::heartbeat_response::HeartbeatResponse;

use super::state::{Group, GroupState};
use super::{Coordinator, GroupError};

impl Coordinator {
    /// Handles a Heartbeat: refreshes the member's session and tells it
    /// whether to rejoin (REBALANCE_IN_PROGRESS). Never completes anything
    /// else, so it returns no outputs.
    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        req: &HeartbeatRequest,
        version: i16,
    ) -> HeartbeatResponse {
        let instance_id = if version >= 3 {
            req.group_instance_id.as_deref()
        } else {
            None
        };
        let result = if req.group_id.is_empty() {
            Err(GroupError::InvalidGroupId)
        } else {
            match self.groups.get_mut(&req.group_id) {
                None => Err(GroupError::UnknownMemberId),
                Some(group) => {
                    group.heartbeat(now_ms, &req.member_id, instance_id, req.generation_id)
                }
            }
        };
        self.reschedule(&req.group_id);
        HeartbeatResponse {
            error_code: GroupError::code_of(result),
            ..Default::default()
        }
    }
}

impl Group {
    fn heartbeat(
        &mut self,
        now_ms: i64,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        self.validate_member(member_id, instance_id)?;
        if generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        let state = self.state;
        let member = self
            .member_mut(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        match state {
            GroupState::Empty => Err(GroupError::UnknownMemberId),
            GroupState::Dead => Err(GroupError::CoordinatorNotAvailable),
            // Consumers may heartbeat between JoinGroup and SyncGroup.
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.touch(now_ms);
                Ok(())
            }
            GroupState::PreparingRebalance => {
                member.touch(now_ms);
                Err(GroupError::RebalanceInProgress)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn code(c: &mut Coordinator, now: i64, req: &HeartbeatRequest) -> i16 {
        c.heartbeat(now, req, 4).error_code
    }

    #[test]
    fn heartbeat_errors_in_each_state() {
        let mut c = coordinator(0);
        let unknown = GroupError::UnknownMemberId.code();
        assert_eq!(code(&mut c, 0, &heartbeat("nope", 1, "m")), unknown);
        assert_eq!(
            code(&mut c, 0, &heartbeat("", 1, "m")),
            GroupError::InvalidGroupId.code()
        );

        // Empty (a group known only through offsets).
        c.ensure_group("offsets-only");
        assert_eq!(code(&mut c, 0, &heartbeat("offsets-only", 0, "m")), unknown);

        // CompletingRebalance: heartbeats are fine between join and sync.
        let out = c.join_group(0, 1, "a", "/h", &join("g", "", RANGE), 3);
        let a = joined(&out, 1).member_id;
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
        assert_eq!(code(&mut c, 1, &heartbeat("g", 1, &a)), 0);
        assert_eq!(
            code(&mut c, 1, &heartbeat("g", 0, &a)),
            GroupError::IllegalGeneration.code()
        );
        assert_eq!(code(&mut c, 1, &heartbeat("g", 1, "someone")), unknown);

        // Stable.
        let _ = c.sync_group(2, 2, &sync("g", 1, &a, &[]), 3);
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        assert_eq!(code(&mut c, 3, &heartbeat("g", 1, &a)), 0);
        assert_eq!(
            code(&mut c, 3, &heartbeat("g", 2, &a)),
            GroupError::IllegalGeneration.code()
        );

        // PreparingRebalance: a second member is waiting for `a` to rejoin.
        assert!(
            c.join_group(4, 3, "b", "/h", &join("g", "", RANGE), 3)
                .is_empty()
        );
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        assert_eq!(
            code(&mut c, 5, &heartbeat("g", 1, &a)),
            GroupError::RebalanceInProgress.code()
        );

        // `a` leaves: the join phase completes with b alone (generation 2);
        // then b leaves too and the group is Empty (generation 3).
        let (_, out) = c.leave_group(6, &leave_v3("g", &[&a]), 3);
        let b = joined(&out, 3);
        assert_eq!(b.generation_id, 2);
        let _ = c.leave_group(7, &leave_v3("g", &[&b.member_id]), 3);
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        assert_eq!(code(&mut c, 8, &heartbeat("g", 3, &b.member_id)), unknown);
    }

    #[test]
    fn heartbeats_keep_the_session_alive() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a"], 0);
        for t in (5_000..50_000).step_by(5_000) {
            assert_eq!(code(&mut c, t, &heartbeat("g", 1, &ids[0])), 0);
            assert!(c.tick(t).is_empty());
        }
        assert_eq!(c.next_deadline(), Some(45_000 + SESSION));
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    }
}
