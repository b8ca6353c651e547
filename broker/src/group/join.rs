//! JoinGroup (api key 11, versions 0-9).

use bytes::Bytes;
use protocol::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use protocol::join_group_response::JoinGroupResponse;

use super::member_id::MemberIds;
use super::rebalance::{Ctx, join_error, sync_error};
use super::state::{Group, GroupState, Member};
use super::{Coordinator, GroupError, NEW_MEMBER_JOIN_TIMEOUT_MS, Output, Responder};

/// A JoinGroup request with its version rules already applied.
struct Join<'a> {
    responder: Responder,
    member_id: &'a str,
    instance_id: Option<&'a str>,
    client_id: &'a str,
    client_host: &'a str,
    session_timeout_ms: i64,
    rebalance_timeout_ms: i64,
    protocol_type: &'a str,
    protocols: &'a [JoinGroupRequestProtocol],
    /// v4+ dynamic members must first fetch a member id (MEMBER_ID_REQUIRED).
    require_known_member_id: bool,
    /// v9+ understands `skip_assignment`.
    supports_skip_assignment: bool,
}

impl Coordinator {
    /// Handles a JoinGroup. The answer to `responder` is among the outputs,
    /// either at once (errors, MEMBER_ID_REQUIRED, rejoins that need no
    /// rebalance) or later from another call or `tick` when the join phase
    /// completes; completing it also answers every other parked member.
    pub fn join_group(
        &mut self,
        now_ms: i64,
        responder: Responder,
        client_id: &str,
        client_host: &str,
        req: &JoinGroupRequest,
        version: i16,
    ) -> Vec<Output> {
        let reject = |error| vec![Output::Join(responder, join_error(&req.member_id, error))];
        if req.group_id.is_empty() {
            return reject(GroupError::InvalidGroupId);
        }
        let session = req.session_timeout_ms;
        if session < self.config.min_session_timeout_ms
            || session > self.config.max_session_timeout_ms
        {
            return reject(GroupError::InvalidSessionTimeout);
        }
        let instance_id = if version >= 5 {
            req.group_instance_id.as_deref()
        } else {
            None
        };
        let rebalance_timeout_ms = if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            session
        };
        let join = Join {
            responder,
            member_id: &req.member_id,
            instance_id,
            client_id,
            client_host,
            session_timeout_ms: i64::from(session),
            rebalance_timeout_ms: i64::from(rebalance_timeout_ms.max(0)),
            protocol_type: &req.protocol_type,
            protocols: &req.protocols,
            require_known_member_id: version >= 4 && instance_id.is_none(),
            supports_skip_assignment: version >= 9,
        };

        let created = !self.groups.contains_key(&req.group_id);
        if created {
            // Only a member without an id may create a group.
            if !req.member_id.is_empty() {
                return reject(GroupError::UnknownMemberId);
            }
            self.groups
                .insert(req.group_id.clone(), Group::new(&req.group_id));
        }
        let mut out = Vec::new();
        let mut ctx = Ctx {
            now: now_ms,
            initial_delay_ms: self.config.initial_rebalance_delay_ms,
            out: &mut out,
        };
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return reject(GroupError::UnknownMemberId);
        };
        group.join(&mut ctx, &mut self.ids, self.config.max_group_size, &join);
        let phantom = group.state == GroupState::Empty
            && group.members.is_empty()
            && group.pending_members.is_empty();
        if created && phantom {
            // The join that created the group failed: do not keep it.
            self.groups.remove(&req.group_id);
        } else {
            self.settle(&req.group_id, now_ms, &mut out);
        }
        out
    }
}

impl Group {
    fn join(&mut self, ctx: &mut Ctx<'_>, ids: &mut MemberIds, max_size: usize, join: &Join<'_>) {
        if !self.accepts_joining_member(join.member_id, max_size) {
            self.remove_answering(ctx, join.member_id);
            ctx.out.push(Output::Join(
                join.responder,
                join_error("", GroupError::GroupMaxSizeReached),
            ));
        } else if join.member_id.is_empty() {
            self.join_new_member(ctx, ids, join);
        } else {
            self.join_current_member(ctx, join);
        }
        self.try_complete_join(ctx);
    }

    /// Kafka's `acceptJoiningMember`: while preparing, the count of members
    /// already rejoined is what is capped (so the last members to rejoin an
    /// over-full group are the ones turned away).
    fn accepts_joining_member(&self, member_id: &str, max_size: usize) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.member(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || self.num_awaiting_join() < max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.has(member_id) || self.members.len() < max_size
            }
        }
    }

    fn join_new_member(&mut self, ctx: &mut Ctx<'_>, ids: &mut MemberIds, join: &Join<'_>) {
        if !self.supports_protocols(join.protocol_type, join.protocols) {
            ctx.out.push(Output::Join(
                join.responder,
                join_error("", GroupError::InconsistentGroupProtocol),
            ));
            return;
        }
        let new_id = ids.next(join.instance_id.unwrap_or(join.client_id), ctx.now);
        match join.instance_id {
            Some(instance) => match self.static_member_id(instance).map(str::to_string) {
                Some(old_id) => self.replace_static_member(ctx, &old_id, &new_id, join),
                None => self.add_member(ctx, &new_id, join),
            },
            None if join.require_known_member_id => {
                let expires = ctx.now.saturating_add(join.session_timeout_ms);
                self.pending_members.push((new_id.clone(), expires));
                ctx.out.push(Output::Join(
                    join.responder,
                    join_error(&new_id, GroupError::MemberIdRequired),
                ));
            }
            None => self.add_member(ctx, &new_id, join),
        }
    }

    fn join_current_member(&mut self, ctx: &mut Ctx<'_>, join: &Join<'_>) {
        let reject = |ctx: &mut Ctx<'_>, error| {
            ctx.out.push(Output::Join(
                join.responder,
                join_error(join.member_id, error),
            ));
        };
        if !self.supports_protocols(join.protocol_type, join.protocols) {
            return reject(ctx, GroupError::InconsistentGroupProtocol);
        }
        if self.is_pending(join.member_id) {
            // Pending ids are only handed to dynamic members.
            if join.instance_id.is_some() {
                return reject(ctx, GroupError::UnknownMemberId);
            }
            return self.add_member(ctx, join.member_id, join);
        }
        if let Err(error) = self.validate_member(join.member_id, join.instance_id) {
            return reject(ctx, error);
        }
        let Some(member) = self.member(join.member_id) else {
            return reject(ctx, GroupError::UnknownMemberId);
        };
        let unchanged = member.matches(join.protocols);
        let is_leader = self.is_leader(join.member_id);
        match self.state {
            GroupState::PreparingRebalance => self.update_member(ctx, join),
            // Same metadata: the member most likely lost the JoinGroup
            // response, so give it the current generation again.
            GroupState::CompletingRebalance if unchanged => {
                self.answer_current_generation(ctx, join, is_leader)
            }
            // A follower rejoining with the same metadata needs no rebalance;
            // a leader rejoining always forces one (it does so when topic
            // metadata changed in ways member metadata does not show).
            GroupState::Stable if unchanged && !is_leader => {
                self.answer_current_generation(ctx, join, false)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(ctx, join);
                self.prepare_rebalance(ctx);
            }
            GroupState::Empty | GroupState::Dead => reject(ctx, GroupError::UnknownMemberId),
        }
    }

    fn answer_current_generation(
        &mut self,
        ctx: &mut Ctx<'_>,
        join: &Join<'_>,
        with_members: bool,
    ) {
        let response = self.join_response(join.member_id, with_members);
        if let Some(member) = self.member_mut(join.member_id) {
            member.touch(ctx.now);
        }
        ctx.out.push(Output::Join(join.responder, response));
    }

    fn add_member(&mut self, ctx: &mut Ctx<'_>, id: &str, join: &Join<'_>) {
        if self.state == GroupState::PreparingRebalance && self.generation_id == 0 {
            self.new_member_added = true;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(join.protocol_type.to_string());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(id.to_string());
        }
        self.members.push(Member {
            id: id.to_string(),
            instance_id: join.instance_id.map(str::to_string),
            client_id: join.client_id.to_string(),
            client_host: join.client_host.to_string(),
            rebalance_timeout_ms: join.rebalance_timeout_ms,
            session_timeout_ms: join.session_timeout_ms,
            protocols: join.protocols.to_vec(),
            assignment: Bytes::new(),
            awaiting_join: Some(join.responder),
            awaiting_sync: None,
            is_new: true,
            // A new member cannot heartbeat while parked in JoinGroup (it has
            // no generation yet); bound its wait separately.
            session_deadline: ctx.now.saturating_add(NEW_MEMBER_JOIN_TIMEOUT_MS),
        });
        self.pending_members.retain(|(p, _)| p != id);
        self.maybe_prepare_rebalance(ctx);
    }

    /// Parks the member's JoinGroup with its new protocols and timeouts.
    fn update_member(&mut self, ctx: &mut Ctx<'_>, join: &Join<'_>) {
        let Some(member) = self.member_mut(join.member_id) else {
            return;
        };
        member.protocols = join.protocols.to_vec();
        member.rebalance_timeout_ms = join.rebalance_timeout_ms;
        member.session_timeout_ms = join.session_timeout_ms;
        // A second JoinGroup from the same member replaces the first, whose
        // client has given up on it; answer it so the responder is released.
        if let Some(old) = member.awaiting_join.replace(join.responder) {
            ctx.out.push(Output::Join(
                old,
                join_error(join.member_id, GroupError::RebalanceInProgress),
            ));
        }
    }

    /// A known static instance joined without a member id (typically after a
    /// restart): it takes over the old member under a new id, fencing the
    /// old one. In a Stable group whose protocol choice does not change,
    /// this is done without a rebalance.
    fn replace_static_member(
        &mut self,
        ctx: &mut Ctx<'_>,
        old_id: &str,
        new_id: &str,
        join: &Join<'_>,
    ) {
        let previous_leader = self.leader_id.clone().unwrap_or_default();
        let Some(member) = self.member_mut(old_id) else {
            return;
        };
        if let Some(responder) = member.awaiting_join.take() {
            ctx.out.push(Output::Join(
                responder,
                join_error(old_id, GroupError::FencedInstanceId),
            ));
        }
        if let Some(responder) = member.awaiting_sync.take() {
            ctx.out.push(Output::Sync(
                responder,
                sync_error(GroupError::FencedInstanceId),
            ));
        }
        member.id = new_id.to_string();
        member.client_id = join.client_id.to_string();
        member.client_host = join.client_host.to_string();
        member.session_timeout_ms = join.session_timeout_ms;
        member.rebalance_timeout_ms = join.rebalance_timeout_ms;
        member.protocols = join.protocols.to_vec();
        member.awaiting_join = Some(join.responder);
        member.touch(ctx.now);
        if self.is_leader(old_id) {
            self.leader_id = Some(new_id.to_string());
        }
        for pending in &mut self.pending_sync {
            if pending == old_id {
                *pending = new_id.to_string();
            }
        }

        match self.state {
            GroupState::Stable if self.select_protocol() == self.protocol_name => {
                let response = self.static_rejoin_response(new_id, &previous_leader, join);
                if let Some(member) = self.member_mut(new_id) {
                    member.awaiting_join = None;
                }
                ctx.out.push(Output::Join(join.responder, response));
            }
            // The leader may already have computed an assignment for the old
            // member id, which the new id would never receive: rebalance.
            GroupState::CompletingRebalance => self.prepare_rebalance(ctx),
            GroupState::PreparingRebalance => {}
            _ => self.maybe_prepare_rebalance(ctx),
        }
    }

    /// The answer to a static member that rejoined a Stable group without a
    /// rebalance. From v9 the leader is told it leads but must skip the
    /// assignment; before v9 it is given the old leader id so that it does
    /// not think it leads (its assignment would be ignored by a Stable group).
    fn static_rejoin_response(
        &self,
        new_id: &str,
        previous_leader: &str,
        join: &Join<'_>,
    ) -> JoinGroupResponse {
        let is_leader = self.is_leader(new_id);
        if join.supports_skip_assignment {
            let mut response = self.join_response(new_id, is_leader);
            response.skip_assignment = is_leader;
            response
        } else {
            let mut response = self.join_response(new_id, false);
            response.leader = previous_leader.to_string();
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn three_members_join_and_sync_with_initial_delay() {
        let mut c = coordinator(100);
        assert!(
            c.join_group(0, 1, "c1", "/h1", &join("g", "", RANGE), 3)
                .is_empty()
        );
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        assert!(
            c.join_group(10, 2, "c2", "/h2", &join("g", "", RANGE), 3)
                .is_empty()
        );
        assert!(
            c.join_group(20, 3, "c3", "/h3", &join("g", "", RANGE), 3)
                .is_empty()
        );
        // New members arrived during the delay: it is extended once.
        assert_eq!(c.next_deadline(), Some(100));
        assert!(c.tick(100).is_empty());
        assert_eq!(c.next_deadline(), Some(200));
        let out = c.tick(200);
        assert_eq!(out.len(), 3);
        let leader = joined(&out, 1);
        let f2 = joined(&out, 2);
        let f3 = joined(&out, 3);
        assert_eq!(leader.generation_id, 1);
        assert_eq!(leader.protocol_name.as_deref(), Some("range"));
        assert_eq!(leader.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(leader.leader, leader.member_id);
        assert!(leader.member_id.starts_with("c1-"));
        assert_eq!(leader.members.len(), 3);
        assert_eq!(&leader.members[1].metadata[..], b"range-meta");
        for follower in [&f2, &f3] {
            assert_eq!(follower.leader, leader.member_id);
            assert!(follower.members.is_empty());
            assert_eq!(follower.generation_id, 1);
        }
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));

        // A follower syncing before the leader waits.
        assert!(
            c.sync_group(210, 12, &sync("g", 1, &f2.member_id, &[]), 3)
                .is_empty()
        );
        let assignments = [
            (leader.member_id.as_str(), "a1"),
            (f2.member_id.as_str(), "a2"),
            (f3.member_id.as_str(), "a3"),
        ];
        let out = c.sync_group(220, 11, &sync("g", 1, &leader.member_id, &assignments), 3);
        assert_eq!(out.len(), 2);
        assert_eq!(&synced(&out, 11).assignment[..], b"a1");
        assert_eq!(&synced(&out, 12).assignment[..], b"a2");
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        // A follower syncing after the leader gets its assignment at once.
        let out = c.sync_group(230, 13, &sync("g", 1, &f3.member_id, &[]), 3);
        let s3 = synced(&out, 13);
        assert_eq!((s3.error_code, &s3.assignment[..]), (0, &b"a3"[..]));
        assert_eq!(s3.protocol_name.as_deref(), Some("range"));
    }

    #[test]
    fn member_id_required_from_v4() {
        let mut c = coordinator(0);
        let out = c.join_group(0, 1, "rdkafka", "/h", &join("g", "", RANGE), 4);
        let first = joined(&out, 1);
        assert_eq!(first.error_code, GroupError::MemberIdRequired.code());
        assert!(first.member_id.starts_with("rdkafka-"));
        assert_eq!(first.generation_id, -1);
        // A pending member holds the group back until it rejoins.
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        let out = c.join_group(
            5,
            2,
            "rdkafka",
            "/h",
            &join("g", &first.member_id, RANGE),
            4,
        );
        let second = joined(&out, 2);
        assert_eq!(second.error_code, 0);
        assert_eq!(second.member_id, first.member_id);
        assert_eq!(second.generation_id, 1);
        assert_eq!(second.leader, first.member_id);
    }

    #[test]
    fn pending_member_that_never_rejoins_expires() {
        let mut c = coordinator(0);
        let (a, _) = stable_group(&mut c, "g", &["a"], 0);
        // A second consumer gets an id, then vanishes.
        let out = c.join_group(100, 9, "b", "/h", &join("g", "", RANGE), 4);
        let pending = joined(&out, 9).member_id;
        // The leader rejoins; the group waits for the pending member.
        assert!(
            c.join_group(200, 10, "a", "/h", &join("g", &a[0], RANGE), 4)
                .is_empty()
        );
        assert_eq!(c.next_deadline(), Some(100 + SESSION));
        let out = c.tick(100 + SESSION);
        let rejoined = joined(&out, 10);
        assert_eq!((rejoined.error_code, rejoined.generation_id), (0, 2));
        assert_eq!(rejoined.members.len(), 1);
        assert_ne!(rejoined.members[0].member_id, pending);
    }

    #[test]
    fn v3_join_gets_an_id_at_once_and_v0_uses_session_as_rebalance_timeout() {
        let mut c = coordinator(0);
        let out = c.join_group(0, 1, "old", "/h", &join("g", "", RANGE), 0);
        let r = joined(&out, 1);
        assert_eq!((r.error_code, r.generation_id), (0, 1));
        let group = &c.groups["g"];
        assert_eq!(group.members[0].rebalance_timeout_ms, i64::from(SESSION_MS));
    }

    #[test]
    fn inconsistent_protocol_and_invalid_requests() {
        let mut c = coordinator(0);
        let _ = stable_group(&mut c, "g", &["a"], 0);
        let out = c.join_group(10, 5, "x", "/h", &join("g", "", &[("sticky", b"s")]), 3);
        assert_eq!(
            joined(&out, 5).error_code,
            GroupError::InconsistentGroupProtocol.code()
        );
        let mut other_type = join("g", "", RANGE);
        other_type.protocol_type = "connect".to_string();
        let out = c.join_group(10, 6, "x", "/h", &other_type, 3);
        assert_eq!(
            joined(&out, 6).error_code,
            GroupError::InconsistentGroupProtocol.code()
        );
        let out = c.join_group(10, 7, "x", "/h", &join("", "", RANGE), 3);
        assert_eq!(
            joined(&out, 7).error_code,
            GroupError::InvalidGroupId.code()
        );
        let mut short = join("g", "", RANGE);
        short.session_timeout_ms = 10;
        let out = c.join_group(10, 8, "x", "/h", &short, 3);
        assert_eq!(
            joined(&out, 8).error_code,
            GroupError::InvalidSessionTimeout.code()
        );
        let out = c.join_group(10, 9, "x", "/h", &join("nope", "someone", RANGE), 3);
        assert_eq!(
            joined(&out, 9).error_code,
            GroupError::UnknownMemberId.code()
        );
        assert!(!c.group_exists("nope"));
        // A failed join does not leave a group behind.
        let out = c.join_group(10, 10, "x", "/h", &join("fresh", "", &[]), 3);
        assert_eq!(
            joined(&out, 10).error_code,
            GroupError::InconsistentGroupProtocol.code()
        );
        assert!(!c.group_exists("fresh"));
    }

    #[test]
    fn stable_follower_rejoin_with_same_metadata_keeps_the_generation() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        let out = c.join_group(100, 20, "b", "/h", &join("g", &ids[1], RANGE), 5);
        let r = joined(&out, 20);
        assert_eq!((r.error_code, r.generation_id), (0, 1));
        assert!(r.members.is_empty());
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        // Changed metadata starts a rebalance.
        let changed = &[("range", &b"new-topics"[..])];
        assert!(
            c.join_group(110, 21, "b", "/h", &join("g", &ids[1], changed), 5)
                .is_empty()
        );
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let hb = c.heartbeat(120, &heartbeat("g", 1, &ids[0]), 3);
        assert_eq!(hb.error_code, GroupError::RebalanceInProgress.code());
        let out = c.join_group(130, 22, "a", "/h", &join("g", &ids[0], RANGE), 5);
        assert_eq!(joined(&out, 21).generation_id, 2);
        assert_eq!(joined(&out, 22).members.len(), 2);
    }

    #[test]
    fn stable_leader_rejoin_forces_a_rebalance() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        assert!(
            c.join_group(100, 20, "a", "/h", &join("g", &ids[0], RANGE), 5)
                .is_empty()
        );
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
    }

    #[test]
    fn new_member_during_completing_rebalance_cancels_parked_syncs() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        let changed = &[("range", &b"v2"[..])];
        assert!(
            c.join_group(100, 20, "b", "/h", &join("g", &ids[1], changed), 5)
                .is_empty()
        );
        let out = c.join_group(110, 21, "a", "/h", &join("g", &ids[0], RANGE), 5);
        assert_eq!(out.len(), 2);
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
        // The follower's SyncGroup is parked waiting for the leader ...
        assert!(
            c.sync_group(120, 22, &sync("g", 2, &ids[1], &[]), 3)
                .is_empty()
        );
        // ... when a new member arrives: the follower must rejoin.
        let out = c.join_group(130, 23, "c", "/h", &join("g", "", RANGE), 3);
        assert_eq!(
            synced(&out, 22).error_code,
            GroupError::RebalanceInProgress.code()
        );
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        // The leader's late SyncGroup is refused too.
        let out = c.sync_group(140, 24, &sync("g", 2, &ids[0], &[]), 3);
        assert_eq!(
            synced(&out, 24).error_code,
            GroupError::RebalanceInProgress.code()
        );
    }

    #[test]
    fn group_max_size_turns_new_members_away() {
        let mut c = coordinator(0);
        c.config.max_group_size = 1;
        let _ = stable_group(&mut c, "g", &["a"], 0);
        let out = c.join_group(10, 5, "b", "/h", &join("g", "", RANGE), 3);
        assert_eq!(
            joined(&out, 5).error_code,
            GroupError::GroupMaxSizeReached.code()
        );
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    }

    fn static_heartbeat(
        generation: i32,
        member_id: &str,
        instance: &str,
    ) -> protocol::heartbeat_request::HeartbeatRequest {
        protocol::heartbeat_request::HeartbeatRequest {
            group_instance_id: Some(instance.to_string()),
            ..heartbeat("g", generation, member_id)
        }
    }

    #[test]
    fn static_member_restart_keeps_the_generation_and_fences_the_old_id() {
        let mut c = coordinator(0);
        let (ids, _) = static_group(&mut c, "g", &["a", "b"], 0);
        // b restarts: it knows only its instance id.
        let out = c.join_group(100, 30, "b", "/h2", &static_join("g", "", "b-instance"), 5);
        let r = joined(&out, 30);
        assert_eq!((r.error_code, r.generation_id), (0, 1));
        assert!(r.member_id.starts_with("b-instance-"));
        assert_ne!(r.member_id, ids[1]);
        assert_eq!(r.leader, ids[0]);
        assert!(r.members.is_empty());
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        // The old incarnation is fenced; the new one keeps the assignment.
        let old = c.heartbeat(110, &static_heartbeat(1, &ids[1], "b-instance"), 3);
        assert_eq!(old.error_code, GroupError::FencedInstanceId.code());
        let old = c.heartbeat(110, &heartbeat("g", 1, &ids[1]), 3);
        assert_eq!(old.error_code, GroupError::UnknownMemberId.code());
        let new = c.heartbeat(110, &static_heartbeat(1, &r.member_id, "b-instance"), 3);
        assert_eq!(new.error_code, 0);
        let out = c.sync_group(120, 31, &sync("g", 1, &r.member_id, &[]), 3);
        assert_eq!(&synced(&out, 31).assignment[..], b"asg-1");
    }

    #[test]
    fn static_leader_restart_skips_assignment_from_v9() {
        let mut c = coordinator(0);
        let (ids, _) = static_group(&mut c, "g", &["a", "b"], 0);
        let out = c.join_group(100, 30, "a", "/h", &static_join("g", "", "a-instance"), 9);
        let r = joined(&out, 30);
        assert_eq!((r.error_code, r.generation_id), (0, 1));
        assert_eq!(r.leader, r.member_id);
        assert!(r.skip_assignment);
        assert_eq!(r.members.len(), 2);
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));

        // Before v9 the leader is given its old id as leader, so it does not
        // run an assignment that a Stable group would ignore.
        let out = c.join_group(200, 31, "a", "/h", &static_join("g", "", "a-instance"), 5);
        let again = joined(&out, 31);
        assert_eq!(again.leader, r.member_id);
        assert_ne!(again.member_id, again.leader);
        assert!(again.members.is_empty() && !again.skip_assignment);
        assert_eq!(
            c.groups["g"].leader_id.as_deref(),
            Some(again.member_id.as_str())
        );
        assert_ne!(ids[0], again.member_id);
    }

    #[test]
    fn static_member_that_does_not_rejoin_is_kept_through_the_rebalance() {
        let mut c = coordinator(0);
        let (ids, _) = static_group(&mut c, "g", &["a", "b"], 0);
        // The leader rejoins with its id; b is offline but within its session.
        let leader_join = static_join("g", &ids[0], "a-instance");
        assert!(c.join_group(100, 30, "a", "/h", &leader_join, 5).is_empty());
        assert_eq!(c.next_deadline(), Some(2 + SESSION));
        for t in (5_000..=30_000).step_by(5_000) {
            let hb = c.heartbeat(t, &static_heartbeat(1, &ids[1], "b-instance"), 3);
            assert_eq!(hb.error_code, GroupError::RebalanceInProgress.code());
        }
        let out = c.tick(100 + REBALANCE);
        let r = joined(&out, 30);
        assert_eq!(r.generation_id, 2);
        let members: Vec<&str> = r.members.iter().map(|m| m.member_id.as_str()).collect();
        assert_eq!(members, [ids[0].as_str(), ids[1].as_str()]);
        assert_eq!(
            r.members[1].group_instance_id.as_deref(),
            Some("b-instance")
        );
        // b learns of the new generation through its next heartbeat.
        let hb = c.heartbeat(
            100 + REBALANCE + 1,
            &static_heartbeat(1, &ids[1], "b-instance"),
            3,
        );
        assert_eq!(hb.error_code, GroupError::IllegalGeneration.code());
    }
}
