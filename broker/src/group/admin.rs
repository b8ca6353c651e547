//! The admin APIs on groups: DescribeGroups (api key 15, versions 0-5),
//! ListGroups (16, versions 0-4) and DeleteGroups (42, versions 0-2).

use bytes::Bytes;
use protocol::describe_groups_request::DescribeGroupsRequest;
use protocol::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use protocol::list_groups_request::ListGroupsRequest;
use protocol::list_groups_response::{ListGroupsResponse, ListedGroup};

use super::state::{Group, GroupState};
use super::{Coordinator, GroupError};

/// What DescribeGroups reports as `authorized_operations` when asked (v3+):
/// with no authorizer every group operation is allowed, as in Kafka —
/// READ (3), DELETE (6) and DESCRIBE (8) as a bit field.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// `authorized_operations` when the client did not ask for them.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

impl Coordinator {
    /// Handles DescribeGroups. A group this coordinator does not hold is
    /// reported as `Dead` with no error, as Kafka does before v6.
    pub fn describe_groups(
        &self,
        req: &DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let operations = if version >= 3 && req.include_authorized_operations {
            GROUP_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        };
        let groups = req
            .groups
            .iter()
            .map(|id| {
                let mut described = match self.groups.get(id) {
                    Some(group) => group.describe(),
                    None => DescribedGroup {
                        group_id: id.clone(),
                        group_state: GroupState::Dead.as_str().to_string(),
                        ..Default::default()
                    },
                };
                described.authorized_operations = operations;
                described
            })
            .collect();
        DescribeGroupsResponse {
            groups,
            ..Default::default()
        }
    }

    /// Handles ListGroups; v4 may filter by state names (case-insensitive).
    pub fn list_groups(&self, req: &ListGroupsRequest, version: i16) -> ListGroupsResponse {
        let filter: &[String] = if version >= 4 {
            &req.states_filter
        } else {
            &[]
        };
        let mut groups: Vec<ListedGroup> = self
            .groups
            .values()
            .filter(|g| {
                filter.is_empty()
                    || filter
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.as_str()))
            })
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state.as_str().to_string(),
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        ListGroupsResponse {
            groups,
            ..Default::default()
        }
    }

    /// Handles DeleteGroups: only Empty groups can be deleted
    /// (NON_EMPTY_GROUP otherwise, GROUP_ID_NOT_FOUND for groups this
    /// coordinator does not hold). Returns one `(group id, error code)` per
    /// distinct id, in request order; the caller deletes the committed
    /// offsets of every group answered with 0.
    pub fn delete_groups(&mut self, group_ids: &[String]) -> Vec<(String, i16)> {
        let mut results: Vec<(String, i16)> = Vec::new();
        for id in group_ids {
            if results.iter().any(|(done, _)| done == id) {
                continue;
            }
            let result = self.delete_group(id);
            results.push((id.clone(), GroupError::code_of(result)));
        }
        results
    }

    fn delete_group(&mut self, id: &str) -> Result<(), GroupError> {
        let group = self.groups.get(id).ok_or(GroupError::GroupIdNotFound)?;
        match group.state {
            GroupState::Empty => {
                self.unschedule(id);
                self.groups.remove(id);
                Ok(())
            }
            GroupState::Dead => Err(GroupError::GroupIdNotFound),
            GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => Err(GroupError::NonEmptyGroup),
        }
    }
}

impl Group {
    /// Kafka's group summary: member metadata and assignments are only
    /// shown once the group is Stable (before that they are in flux).
    fn describe(&self) -> DescribedGroup {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        DescribedGroup {
            error_code: 0,
            group_id: self.id.clone(),
            group_state: self.state.as_str().to_string(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: self
                .members
                .iter()
                .map(|m| DescribedGroupMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    member_assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
            authorized_operations: OPERATIONS_NOT_REQUESTED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn describe(c: &Coordinator, ids: &[&str], version: i16) -> DescribeGroupsResponse {
        let req = DescribeGroupsRequest {
            groups: ids.iter().map(|s| s.to_string()).collect(),
            include_authorized_operations: true,
        };
        c.describe_groups(&req, version)
    }

    fn list(c: &Coordinator, states: &[&str], version: i16) -> Vec<(String, String)> {
        let req = ListGroupsRequest {
            states_filter: states.iter().map(|s| s.to_string()).collect(),
        };
        let resp = c.list_groups(&req, version);
        assert_eq!(resp.error_code, 0);
        resp.groups
            .into_iter()
            .map(|g| (g.group_id, g.group_state))
            .collect()
    }

    fn delete(c: &mut Coordinator, ids: &[&str]) -> Vec<(String, i16)> {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        c.delete_groups(&ids)
    }

    #[test]
    fn describe_stable_group_and_unknown_group() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "g", &["a", "b"], 0);
        let resp = describe(&c, &["g", "nope"], 5);
        let g = &resp.groups[0];
        assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"));
        assert_eq!(
            (g.protocol_type.as_str(), g.protocol_data.as_str()),
            ("consumer", "range")
        );
        assert_eq!(g.authorized_operations, GROUP_OPERATIONS);
        assert_eq!(g.members.len(), 2);
        assert_eq!(g.members[1].member_id, ids[1]);
        assert_eq!(g.members[1].client_id, "b");
        assert_eq!(&g.members[1].member_metadata[..], b"range-meta");
        assert_eq!(&g.members[1].member_assignment[..], b"asg-1");
        let unknown = &resp.groups[1];
        assert_eq!(
            (unknown.error_code, unknown.group_state.as_str()),
            (0, "Dead")
        );
        assert!(unknown.members.is_empty());
        // Not requested (or before v3): the "null" marker.
        assert_eq!(
            describe(&c, &["g"], 2).groups[0].authorized_operations,
            i32::MIN
        );

        // While rebalancing, metadata and assignments are hidden.
        assert!(
            c.join_group(10, 9, "a", "/h", &join("g", &ids[0], RANGE), 3)
                .is_empty()
        );
        let resp = describe(&c, &["g"], 5);
        let g = &resp.groups[0];
        assert_eq!(
            (g.group_state.as_str(), g.protocol_data.as_str()),
            ("PreparingRebalance", "")
        );
        assert!(g.members[0].member_assignment.is_empty());
    }

    #[test]
    fn list_with_and_without_state_filter() {
        let mut c = coordinator(0);
        let _ = stable_group(&mut c, "b-stable", &["a"], 0);
        c.ensure_group("a-empty");
        let all = list(&c, &[], 3);
        assert_eq!(
            all,
            [
                ("a-empty".to_string(), "Empty".to_string()),
                ("b-stable".to_string(), "Stable".to_string())
            ]
        );
        assert_eq!(
            list(&c, &["stable"], 4),
            [("b-stable".to_string(), "Stable".to_string())]
        );
        assert_eq!(list(&c, &["Dead"], 4), []);
        // v3 has no filter field: a stray one is ignored.
        assert_eq!(list(&c, &["Dead"], 3).len(), 2);
    }

    #[test]
    fn delete_only_empty_groups() {
        let mut c = coordinator(0);
        let (ids, _) = stable_group(&mut c, "busy", &["a"], 0);
        c.ensure_group("idle");
        let results = delete(&mut c, &["busy", "idle", "nope", "idle"]);
        assert_eq!(
            results,
            [
                ("busy".to_string(), GroupError::NonEmptyGroup.code()),
                ("idle".to_string(), 0),
                ("nope".to_string(), GroupError::GroupIdNotFound.code()),
            ]
        );
        assert!(!c.group_exists("idle"));
        let _ = c.leave_group(10, &leave_v3("busy", &[&ids[0]]), 3);
        assert_eq!(delete(&mut c, &["busy"]), [("busy".to_string(), 0)]);
        assert!(!c.group_exists("busy"));
        assert_eq!(c.next_deadline(), None);
    }
}
