//! LeaveGroup (api key 13, versions 0-5).

use protocol::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use protocol::leave_group_response::{LeaveGroupResponse, MemberResponse};

use super::rebalance::Ctx;
use super::state::Group;
use super::{Coordinator, GroupError, Output};

impl Coordinator {
    /// Handles a LeaveGroup: v0-2 name one member, v3+ a batch (a member
    /// may be named by `group_instance_id` alone, as admin tools do). The
    /// group rebalances; the outputs are JoinGroup answers of the remaining
    /// members when their join phase completes because of the departure.
    pub fn leave_group(
        &mut self,
        now_ms: i64,
        req: &LeaveGroupRequest,
        version: i16,
    ) -> (LeaveGroupResponse, Vec<Output>) {
        let leaving: Vec<MemberIdentity> = if version >= 3 {
            req.members.clone()
        } else {
            vec![MemberIdentity {
                member_id: req.member_id.clone(),
                ..Default::default()
            }]
        };
        let mut out = Vec::new();
        let (top, results) = if req.group_id.is_empty() {
            (Err(GroupError::InvalidGroupId), Vec::new())
        } else if let Some(group) = self.groups.get_mut(&req.group_id) {
            let mut ctx = Ctx {
                now: now_ms,
                initial_delay_ms: self.config.initial_rebalance_delay_ms,
                out: &mut out,
            };
            let results = leaving
                .iter()
                .map(|m| (m, group.leave(&mut ctx, m)))
                .collect();
            (Ok(()), results)
        } else {
            let results = leaving
                .iter()
                .map(|m| (m, Err(GroupError::UnknownMemberId)))
                .collect();
            (Ok(()), results)
        };
        self.settle(&req.group_id, now_ms, &mut out);

        let response = if version >= 3 {
            LeaveGroupResponse {
                error_code: GroupError::code_of(top),
                members: results
                    .into_iter()
                    .map(|(m, result)| MemberResponse {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        error_code: GroupError::code_of(result),
                    })
                    .collect(),
                ..Default::default()
            }
        } else {
            // Before v3 the only error slot is the top-level one.
            let first_error = results.iter().find_map(|(_, r)| r.err());
            LeaveGroupResponse {
                error_code: GroupError::code_of(top.and(first_error.map_or(Ok(()), Err))),
                ..Default::default()
            }
        };
        (response, out)
    }
}

impl Group {
    fn leave(&mut self, ctx: &mut Ctx<'_>, leaving: &MemberIdentity) -> Result<(), GroupError> {
        let instance_id = leaving.group_instance_id.as_deref();
        if leaving.member_id.is_empty() {
            // Removal by static instance id (e.g. kafka-consumer-groups).
            let id = instance_id
                .and_then(|i| self.static_member_id(i))
                .map(str::to_string)
                .ok_or(GroupError::UnknownMemberId)?;
            self.remove_member_and_update(ctx, &id);
            return Ok(());
        }
        if self.is_pending(&leaving.member_id) {
            self.remove_pending_and_update(ctx, &leaving.member_id);
            return Ok(());
        }
        self.validate_member(&leaving.member_id, instance_id)?;
        self.remove_member_and_update(ctx, &leaving.member_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::GroupState;
    use super::super::testing::*;
    use super::*;

    #[test]
    fn leaving_member_triggers_a_rebalance_of_the_rest() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b", "c"], 0);
        let (resp, out) = c.leave_group(100, &leave_v3("g", &[&ids[1]]), 3);
        assert!(out.is_empty());
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.members.len(), 1);
        assert_eq!(resp.members[0].error_code, 0);
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        for id in [&ids[0], &ids[2]] {
            let hb = c.heartbeat(110, &heartbeat("g", 1, id), 3);
            assert_eq!(hb.error_code, GroupError::RebalanceInProgress.code());
        }
        assert!(
            c.join_group(120, 20, "c", "/h", &join("g", &ids[2], RANGE), 3)
                .is_empty()
        );
        let out = c.join_group(130, 21, "a", "/h", &join("g", &ids[0], RANGE), 3);
        assert_eq!(out.len(), 2);
        let leader = joined(&out, 21);
        let follower = joined(&out, 20);
        assert_eq!(leader.generation_id, 2);
        assert_eq!(leader.leader, ids[0]);
        let members: Vec<&str> = leader
            .members
            .iter()
            .map(|m| m.member_id.as_str())
            .collect();
        assert_eq!(members, [ids[0].as_str(), ids[2].as_str()]);
        assert_eq!((follower.generation_id, follower.members.len()), (2, 0));
    }

    #[test]
    fn leave_completes_a_join_phase_waiting_for_the_leaver() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        // The leader rejoins; the group now waits for b, which leaves instead.
        assert!(
            c.join_group(100, 20, "a", "/h", &join("g", &ids[0], RANGE), 3)
                .is_empty()
        );
        let (resp, out) = c.leave_group(110, &leave_v0("g", &ids[1]), 0);
        assert_eq!(resp.error_code, 0);
        let r = joined(&out, 20);
        assert_eq!((r.generation_id, r.members.len()), (2, 1));
    }

    #[test]
    fn leave_errors_by_version() {
        let mut c = coordinator(0);
        let (resp, _) = c.leave_group(0, &leave_v0("nope", "m"), 1);
        assert_eq!(resp.error_code, GroupError::UnknownMemberId.code());
        let (resp, _) = c.leave_group(0, &leave_v3("nope", &["m"]), 3);
        assert_eq!(resp.error_code, 0);
        assert_eq!(
            resp.members[0].error_code,
            GroupError::UnknownMemberId.code()
        );
        let (resp, _) = c.leave_group(0, &leave_v0("", "m"), 1);
        assert_eq!(resp.error_code, GroupError::InvalidGroupId.code());

        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        let (resp, _) = c.leave_group(10, &leave_v3("g", &[&ids[0], "ghost"]), 4);
        let codes: Vec<i16> = resp.members.iter().map(|m| m.error_code).collect();
        assert_eq!(codes, [0, GroupError::UnknownMemberId.code()]);
        assert_eq!(resp.error_code, 0);
        let (resp, _) = c.leave_group(10, &leave_v0("g", "ghost"), 2);
        assert_eq!(resp.error_code, GroupError::UnknownMemberId.code());
    }

    #[test]
    fn last_member_leaving_empties_the_group_with_a_new_generation() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a"], 0);
        let (_, out) = c.leave_group(10, &leave_v3("g", &[&ids[0]]), 3);
        assert!(out.is_empty());
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        assert_eq!(c.groups["g"].generation_id, 2);
        assert_eq!(c.next_deadline(), None);
    }
}
