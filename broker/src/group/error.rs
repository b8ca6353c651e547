//! The coordinator's outcomes that are not success, and their Kafka error
//! codes (the numbers live in `crate::error_code`; this is the only file in
//! `group` that maps to them).

use crate::error_code;

/// Why the coordinator refused a group request.
///
/// Each variant is one Kafka error code ([`GroupError::code`]); the variants
/// are answers sent to clients, not failures of the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The group is being unloaded; the client should find the coordinator again.
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    /// This broker no longer coordinates the group.
    #[error("this broker is not the coordinator of the group")]
    NotCoordinator,
    /// The request carries a generation other than the group's current one.
    #[error("the generation id is not the group's current generation")]
    IllegalGeneration,
    /// The member's protocol type or protocols do not match the group's.
    #[error("the member shares no protocol with the group")]
    InconsistentGroupProtocol,
    /// An empty group id where the API needs one.
    #[error("the group id is invalid")]
    InvalidGroupId,
    /// The member id is not a member of the group.
    #[error("the member id is not known to the group")]
    UnknownMemberId,
    /// The session timeout is outside the broker's configured range.
    #[error("the session timeout is outside the allowed range")]
    InvalidSessionTimeout,
    /// The group is rebalancing; the member must rejoin.
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// DeleteGroups on a group that still has members.
    #[error("the group still has members")]
    NonEmptyGroup,
    /// DeleteGroups on a group that does not exist.
    #[error("the group does not exist")]
    GroupIdNotFound,
    /// JoinGroup v4+ without a member id: rejoin with the id in the response.
    #[error("a member id is required; rejoin with the assigned one")]
    MemberIdRequired,
    /// The group already has `group.max.size` members.
    #[error("the group has reached its maximum size")]
    GroupMaxSizeReached,
    /// Another member now holds this static `group.instance.id`.
    #[error("the group instance id is held by another member")]
    FencedInstanceId,
}

impl GroupError {
    /// The Kafka error code sent on the wire.
    pub fn code(self) -> i16 {
        match self {
            GroupError::CoordinatorNotAvailable => error_code::COORDINATOR_NOT_AVAILABLE,
            GroupError::NotCoordinator => error_code::NOT_COORDINATOR,
            GroupError::IllegalGeneration => error_code::ILLEGAL_GENERATION,
            GroupError::InconsistentGroupProtocol => error_code::INCONSISTENT_GROUP_PROTOCOL,
            GroupError::InvalidGroupId => error_code::INVALID_GROUP_ID,
            GroupError::UnknownMemberId => error_code::UNKNOWN_MEMBER_ID,
            GroupError::InvalidSessionTimeout => error_code::INVALID_SESSION_TIMEOUT,
            GroupError::RebalanceInProgress => error_code::REBALANCE_IN_PROGRESS,
            GroupError::NonEmptyGroup => error_code::NON_EMPTY_GROUP,
            GroupError::GroupIdNotFound => error_code::GROUP_ID_NOT_FOUND,
            GroupError::MemberIdRequired => error_code::MEMBER_ID_REQUIRED,
            GroupError::GroupMaxSizeReached => error_code::GROUP_MAX_SIZE_REACHED,
            GroupError::FencedInstanceId => error_code::FENCED_INSTANCE_ID,
        }
    }

    /// The wire code of an outcome: 0 (`NONE`) for success.
    pub fn code_of(result: Result<(), GroupError>) -> i16 {
        result.err().map_or(error_code::NONE, GroupError::code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        assert_eq!(GroupError::UnknownMemberId.code(), 25);
        assert_eq!(GroupError::RebalanceInProgress.code(), 27);
        assert_eq!(GroupError::MemberIdRequired.code(), 79);
        assert_eq!(GroupError::FencedInstanceId.code(), 82);
        assert_eq!(GroupError::code_of(Ok(())), 0);
        assert_eq!(GroupError::code_of(Err(GroupError::NonEmptyGroup)), 68);
    }
}
