//! The records the projector hands to the sink.

/// One Kafka record, borrowed from a decoded record batch.
#[derive(Debug, Clone, Copy)]
pub struct SinkRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// 0 = CreateTime, 1 = LogAppendTime (the batch's timestamp type).
    pub timestamp_type: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [SinkHeader<'a>],
}

/// One record header. Kafka header keys are strings on the wire but are not
/// checked for UTF-8; the converter replaces invalid sequences.
#[derive(Debug, Clone, Copy)]
pub struct SinkHeader<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}
