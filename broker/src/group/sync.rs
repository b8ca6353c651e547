//! SyncGroup (api key 14, versions 0-5).

use protocol::sync_group_request::SyncGroupRequest;
use protocol::sync_group_response::SyncGroupResponse;

use super::rebalance::{Ctx, sync_error};
use super::state::{Group, GroupState};
use super::{Coordinator, GroupError, Output, Responder};

impl Coordinator {
    /// Handles a SyncGroup. The leader's request carries the assignment of
    /// every member and answers every member parked in SyncGroup (its own
    /// answer included); a follower that syncs before the leader waits, one
    /// that syncs after gets its assignment at once.
    pub fn sync_group(
        &mut self,
        now_ms: i64,
        responder: Responder,
        req: &SyncGroupRequest,
        version: i16,
    ) -> Vec<Output> {
        let reject = |error| vec![Output::Sync(responder, sync_error(error))];
        if req.group_id.is_empty() {
            return reject(GroupError::InvalidGroupId);
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return reject(GroupError::UnknownMemberId);
        };
        let instance_id = if version >= 3 {
            req.group_instance_id.as_deref()
        } else {
            None
        };
        let mut out = Vec::new();
        let mut ctx = Ctx {
            now: now_ms,
            initial_delay_ms: self.config.initial_rebalance_delay_ms,
            out: &mut out,
        };
        group.sync(&mut ctx, responder, req, instance_id);
        self.settle(&req.group_id, now_ms, &mut out);
        out
    }
}

impl Group {
    fn validate_sync(
        &self,
        req: &SyncGroupRequest,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        self.validate_member(&req.member_id, instance_id)?;
        if req.generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        // v5 clients send what they were told in JoinGroup; older ones send
        // nothing and are not checked.
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| self.protocol_type.as_ref() != Some(t))
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if req
            .protocol_name
            .as_ref()
            .is_some_and(|n| self.protocol_name.as_ref() != Some(n))
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn sync(
        &mut self,
        ctx: &mut Ctx<'_>,
        responder: Responder,
        req: &SyncGroupRequest,
        instance_id: Option<&str>,
    ) {
        let reject = |ctx: &mut Ctx<'_>, error| {
            ctx.out.push(Output::Sync(responder, sync_error(error)));
        };
        if let Err(error) = self.validate_sync(req, instance_id) {
            return reject(ctx, error);
        }
        match self.state {
            GroupState::Empty => reject(ctx, GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => reject(ctx, GroupError::RebalanceInProgress),
            GroupState::Dead => reject(ctx, GroupError::CoordinatorNotAvailable),
            GroupState::CompletingRebalance => {
                let Some(member) = self.member_mut(&req.member_id) else {
                    return reject(ctx, GroupError::UnknownMemberId);
                };
                if let Some(old) = member.awaiting_sync.replace(responder) {
                    // A repeated SyncGroup supersedes the first; release it.
                    ctx.out.push(Output::Sync(
                        old,
                        sync_error(GroupError::RebalanceInProgress),
                    ));
                }
                self.received_sync(&req.member_id);
                if self.is_leader(&req.member_id) {
                    // Members the leader left out get an empty assignment;
                    // ids that are not members are ignored; the last entry
                    // for a member wins.
                    for member in &mut self.members {
                        member.assignment = req
                            .assignments
                            .iter()
                            .rev()
                            .find(|a| a.member_id == member.id)
                            .map(|a| a.assignment.clone())
                            .unwrap_or_default();
                    }
                    self.propagate_assignment(ctx, None);
                    self.state = GroupState::Stable;
                }
            }
            GroupState::Stable => {
                self.received_sync(&req.member_id);
                let protocol_type = self.protocol_type.clone();
                let protocol_name = self.protocol_name.clone();
                let Some(member) = self.member_mut(&req.member_id) else {
                    return reject(ctx, GroupError::UnknownMemberId);
                };
                member.touch(ctx.now);
                let response = SyncGroupResponse {
                    error_code: 0,
                    protocol_type,
                    protocol_name,
                    assignment: member.assignment.clone(),
                    ..Default::default()
                };
                ctx.out.push(Output::Sync(responder, response));
            }
        }
    }

    /// The member has sent its SyncGroup for this generation; once all have,
    /// the sync timeout is moot.
    fn received_sync(&mut self, member_id: &str) {
        self.pending_sync.retain(|p| p != member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn sync_errors() {
        let mut c = coordinator(0);
        let out = c.sync_group(0, 1, &sync("nope", 1, "m", &[]), 3);
        assert_eq!(
            synced(&out, 1).error_code,
            GroupError::UnknownMemberId.code()
        );
        let out = c.sync_group(0, 1, &sync("", 1, "m", &[]), 3);
        assert_eq!(
            synced(&out, 1).error_code,
            GroupError::InvalidGroupId.code()
        );

        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        let out = c.sync_group(10, 2, &sync("g", 7, &ids[0], &[]), 3);
        assert_eq!(
            synced(&out, 2).error_code,
            GroupError::IllegalGeneration.code()
        );
        let out = c.sync_group(10, 3, &sync("g", 1, "stranger", &[]), 3);
        assert_eq!(
            synced(&out, 3).error_code,
            GroupError::UnknownMemberId.code()
        );

        let mut wrong = sync("g", 1, &ids[1], &[]);
        wrong.protocol_name = Some("roundrobin".to_string());
        let out = c.sync_group(10, 4, &wrong, 5);
        assert_eq!(
            synced(&out, 4).error_code,
            GroupError::InconsistentGroupProtocol.code()
        );
        let mut right = sync("g", 1, &ids[1], &[]);
        right.protocol_type = Some("consumer".to_string());
        right.protocol_name = Some("range".to_string());
        let out = c.sync_group(10, 5, &right, 5);
        let s = synced(&out, 5);
        assert_eq!((s.error_code, &s.assignment[..]), (0, &b"asg-1"[..]));

        // Leader rejoin: the group is preparing, SyncGroup must wait for it.
        assert!(
            c.join_group(20, 6, "a", "/h", &join("g", &ids[0], RANGE), 3)
                .is_empty()
        );
        let out = c.sync_group(30, 7, &sync("g", 1, &ids[1], &[]), 3);
        assert_eq!(
            synced(&out, 7).error_code,
            GroupError::RebalanceInProgress.code()
        );
    }

    #[test]
    fn leader_that_never_syncs_is_removed_after_the_rebalance_timeout() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        // b changes metadata, both rejoin: generation 2.
        let changed = &[("range", &b"v2"[..])];
        assert!(
            c.join_group(100, 20, "b", "/h", &join("g", &ids[1], changed), 3)
                .is_empty()
        );
        let out = c.join_group(100, 21, "a", "/h", &join("g", &ids[0], RANGE), 3);
        assert_eq!(out.len(), 2);
        // b syncs and waits; the leader never does.
        assert!(
            c.sync_group(110, 22, &sync("g", 2, &ids[1], &[]), 3)
                .is_empty()
        );
        // The leader stays alive through heartbeats but never syncs.
        for t in (5_000..100 + REBALANCE).step_by(5_000) {
            assert_eq!(c.heartbeat(t, &heartbeat("g", 2, &ids[0]), 3).error_code, 0);
        }
        assert_eq!(c.next_deadline(), Some(100 + REBALANCE));
        let out = c.tick(100 + REBALANCE);
        assert_eq!(
            synced(&out, 22).error_code,
            GroupError::RebalanceInProgress.code()
        );
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let members = &c.groups["g"].members;
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].id, ids[1]);
        // b rejoins alone and becomes the leader of generation 3.
        let out = c.join_group(
            100 + REBALANCE + 1,
            23,
            "b",
            "/h",
            &join("g", &ids[1], changed),
            3,
        );
        let r = joined(&out, 23);
        assert_eq!((r.generation_id, r.leader.as_str()), (3, ids[1].as_str()));
    }

    #[test]
    fn missing_assignments_are_empty_and_unknown_ids_ignored() {
        let mut c = coordinator(0);
        let out = c.join_group(0, 1, "a", "/h", &join("g", "", RANGE), 3);
        let a = joined(&out, 1);
        let out = c.sync_group(1, 2, &sync("g", 1, &a.member_id, &[("ghost", "x")]), 3);
        let s = synced(&out, 2);
        assert_eq!(s.error_code, 0);
        assert!(s.assignment.is_empty());
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    }
}
