//! Kafka error codes, and the one place where Floe's errors become them.

pub const NONE: i16 = 0;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const INVALID_FETCH_SIZE: i16 = 4;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const RECORD_LIST_TOO_LARGE: i16 = 18;
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_GROUP_ID: i16 = 24;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
pub const INVALID_TIMESTAMP: i16 = 32;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_CONFIG: i16 = 40;
pub const NOT_CONTROLLER: i16 = 41;
pub const INVALID_REQUEST: i16 = 42;
pub const POLICY_VIOLATION: i16 = 44;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const INVALID_TXN_STATE: i16 = 48;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const UNKNOWN_PRODUCER_ID: i16 = 59;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub const OFFSET_NOT_AVAILABLE: i16 = 78;
pub const FENCED_INSTANCE_ID: i16 = 82;
pub const INVALID_RECORD: i16 = 87;
pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const INVALID_UPDATE_VERSION: i16 = 95;
pub const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;

/// The Kafka error for a log failure: the only place log errors become codes.
pub fn from_log_error(e: &crate::log::LogError) -> i16 {
    use crate::log::LogError as E;
    match e {
        E::UnknownCompression { .. } => UNSUPPORTED_COMPRESSION_TYPE,
        E::InvalidRecordCount { .. }
        | E::OffsetDeltaMismatch { .. }
        | E::NonSequentialOffsetDelta { .. }
        | E::ControlBatchFromClient
        | E::InvalidBaseSequence { .. } => INVALID_RECORD,
        E::BatchTooLarge { .. } => MESSAGE_TOO_LARGE,
        E::Io { .. } | E::Poisoned { .. } | E::CorruptSegment { .. } => KAFKA_STORAGE_ERROR,
        E::Closed { .. } => NOT_LEADER_OR_FOLLOWER,
        E::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        E::InvalidConfig { .. } => INVALID_CONFIG,
        _ if e.is_invalid_batch() => CORRUPT_MESSAGE,
        _ => UNKNOWN_SERVER_ERROR,
    }
}
