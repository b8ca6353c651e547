//! Request builders and a few scenario steps shared by the tests.

use bytes::Bytes;
use protocol::heartbeat_request::HeartbeatRequest;
use protocol::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use protocol::join_group_response::JoinGroupResponse;
use protocol::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use protocol::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use protocol::sync_group_response::SyncGroupResponse;

use super::{Coordinator, CoordinatorConfig, Output, Responder};

pub(super) const SESSION_MS: i32 = 10_000;
pub(super) const SESSION: i64 = SESSION_MS as i64;
pub(super) const REBALANCE_MS: i32 = 30_000;
pub(super) const REBALANCE: i64 = REBALANCE_MS as i64;
pub(super) const RANGE: &[(&str, &[u8])] = &[("range", b"range-meta")];

pub(super) fn coordinator(initial_delay_ms: i64) -> Coordinator {
    Coordinator::new(CoordinatorConfig {
        initial_rebalance_delay_ms: initial_delay_ms,
        min_session_timeout_ms: 1_000,
        member_id_seed: 42,
        ..CoordinatorConfig::default()
    })
}

pub(super) fn join(group: &str, member_id: &str, protocols: &[(&str, &[u8])]) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.to_string(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.to_string(),
        protocol_type: "consumer".to_string(),
        protocols: protocols
            .iter()
            .map(|(name, metadata)| JoinGroupRequestProtocol {
                name: name.to_string(),
                metadata: Bytes::copy_from_slice(metadata),
            })
            .collect(),
        ..Default::default()
    }
}

pub(super) fn static_join(group: &str, member_id: &str, instance: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_instance_id: Some(instance.to_string()),
        ..join(group, member_id, RANGE)
    }
}

pub(super) fn sync(
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, &str)],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.to_string(),
        generation_id: generation,
        member_id: member_id.to_string(),
        assignments: assignments
            .iter()
            .map(|(member, assignment)| SyncGroupRequestAssignment {
                member_id: member.to_string(),
                assignment: Bytes::copy_from_slice(assignment.as_bytes()),
            })
            .collect(),
        ..Default::default()
    }
}

pub(super) fn heartbeat(group: &str, generation: i32, member_id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: group.to_string(),
        generation_id: generation,
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

pub(super) fn leave_v0(group: &str, member_id: &str) -> LeaveGroupRequest {
    LeaveGroupRequest {
        group_id: group.to_string(),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

pub(super) fn leave_v3(group: &str, member_ids: &[&str]) -> LeaveGroupRequest {
    LeaveGroupRequest {
        group_id: group.to_string(),
        members: member_ids
            .iter()
            .map(|id| MemberIdentity {
                member_id: id.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The JoinGroup answer to `responder` among `out`.
pub(super) fn joined(out: &[Output], responder: Responder) -> JoinGroupResponse {
    out.iter()
        .find_map(|o| match o {
            Output::Join(r, resp) if *r == responder => Some(resp.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no JoinGroup answer for {responder} in {out:?}"))
}

/// The SyncGroup answer to `responder` among `out`.
pub(super) fn synced(out: &[Output], responder: Responder) -> SyncGroupResponse {
    out.iter()
        .find_map(|o| match o {
            Output::Sync(r, resp) if *r == responder => Some(resp.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SyncGroup answer for {responder} in {out:?}"))
}

/// Forms a Stable generation-1 group of `clients` (v3 joins at `now`, the
/// first is the leader; member `i` is assigned `asg-<i>`) and returns the
/// member ids in join order with the generation. The clock is at `now + 2`
/// afterwards.
pub(super) fn stable_group(
    c: &mut Coordinator,
    group: &str,
    clients: &[&str],
    now: i64,
) -> (Vec<String>, i32) {
    form_group(c, group, clients, now, 3, |client| {
        let _ = client;
        join(group, "", RANGE)
    })
}

/// Like [`stable_group`] with static members (v5 joins); client `x` has
/// `group.instance.id` `x-instance`.
pub(super) fn static_group(
    c: &mut Coordinator,
    group: &str,
    clients: &[&str],
    now: i64,
) -> (Vec<String>, i32) {
    form_group(c, group, clients, now, 5, |client| {
        static_join(group, "", &format!("{client}-instance"))
    })
}

fn form_group(
    c: &mut Coordinator,
    group: &str,
    clients: &[&str],
    now: i64,
    version: i16,
    request: impl Fn(&str) -> JoinGroupRequest,
) -> (Vec<String>, i32) {
    let saved_delay = c.config.initial_rebalance_delay_ms;
    c.config.initial_rebalance_delay_ms = 1;
    let mut out = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        out.extend(c.join_group(
            now,
            1000 + i as u64,
            client,
            "/h",
            &request(client),
            version,
        ));
    }
    out.extend(c.tick(now + 1));
    out.extend(c.tick(now + 2));
    c.config.initial_rebalance_delay_ms = saved_delay;
    let responses: Vec<JoinGroupResponse> = (0..clients.len())
        .map(|i| joined(&out, 1000 + i as u64))
        .collect();
    let ids: Vec<String> = responses.iter().map(|r| r.member_id.clone()).collect();
    let generation = responses[0].generation_id;
    assert!(
        responses
            .iter()
            .all(|r| r.error_code == 0 && r.generation_id == generation)
    );
    assert_eq!(responses[0].leader, ids[0]);
    let assignments: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("asg-{i}")))
        .collect();
    let pairs: Vec<(&str, &str)> = assignments
        .iter()
        .map(|(m, a)| (m.as_str(), a.as_str()))
        .collect();
    let out = c.sync_group(now + 2, 2000, &sync(group, generation, &ids[0], &pairs), 3);
    assert_eq!(synced(&out, 2000).error_code, 0);
    for (i, id) in ids.iter().enumerate().skip(1) {
        let responder = 2000 + i as u64;
        let out = c.sync_group(now + 2, responder, &sync(group, generation, id, &[]), 3);
        assert_eq!(synced(&out, responder).error_code, 0);
    }
    (ids, generation)
}
