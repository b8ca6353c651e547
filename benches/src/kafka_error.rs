//! Kafka error codes in broker answers, reported with their names.

use std::fmt;

pub const NONE: i16 = 0;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;

/// The Kafka name of an error code (the common ones).
pub fn name(code: i16) -> &'static str {
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        0 => "NONE",
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        17 => "INVALID_TOPIC_EXCEPTION",
        18 => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        21 => "INVALID_REQUIRED_ACKS",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        40 => "INVALID_CONFIG",
        42 => "INVALID_REQUEST",
        43 => "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        56 => "KAFKA_STORAGE_ERROR",
        87 => "INVALID_RECORD",
        _ => "unnamed",
    }
}

/// A broker answer carrying a non-zero error code.
#[derive(Debug)]
pub struct KafkaError {
    pub api: &'static str,
    pub topic: String,
    pub partition: Option<i32>,
    pub code: i16,
    pub message: Option<String>,
}

impl KafkaError {
    pub fn new(
        api: &'static str,
        topic: &str,
        partition: Option<i32>,
        code: i16,
        message: Option<String>,
    ) -> KafkaError {
        KafkaError {
            api,
            topic: topic.to_string(),
            partition,
            code,
            message,
        }
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.api, self.topic)?;
        if let Some(p) = self.partition {
            write!(f, "-{p}")?;
        }
        write!(f, " failed: error code {} ({})", self.code, name(self.code))?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KafkaError {}
