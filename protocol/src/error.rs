//! The codec's errors.

/// Why a request or response could not be decoded.
///
/// Every variant records the byte position (`at`) within the frame where the
/// problem was found, so a log line can point at the offending bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame ended before a value was complete.
    #[error("frame truncated at byte {at}: needed {needed} bytes, {available} available")]
    Truncated {
        at: usize,
        needed: usize,
        available: usize,
    },
    /// An array count that cannot fit in the bytes that remain.
    #[error(
        "array count {count} at byte {at} exceeds what the {remaining} remaining bytes can hold"
    )]
    CountTooLarge {
        at: usize,
        count: u64,
        remaining: usize,
    },
    /// A length prefix that is negative (other than the -1 of a null value).
    #[error("invalid length {length} at byte {at}")]
    InvalidLength { at: usize, length: i64 },
    /// A null where the schema does not allow one in this version.
    #[error("unexpected null at byte {at} in a non-nullable field")]
    UnexpectedNull { at: usize },
    /// A string that is not UTF-8.
    #[error("string at byte {at} is not valid utf-8")]
    InvalidUtf8 { at: usize },
    /// A varint longer than its type allows.
    #[error("malformed varint at byte {at}")]
    MalformedVarint { at: usize },
    /// A nullable-struct marker other than -1 or 1.
    #[error("invalid struct presence marker {marker} at byte {at}")]
    InvalidMarker { at: usize, marker: i8 },
    /// An API this codec does not know.
    #[error("unknown api key {api_key}")]
    UnknownApi { api_key: i16 },
    /// A version of a known API outside the supported range.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
}

impl DecodeError {
    /// Whether the request that failed was for a known API at an unsupported
    /// version, which Kafka answers with `UNSUPPORTED_VERSION` rather than by
    /// closing the connection.
    pub fn is_unsupported_version(&self) -> bool {
        matches!(self, DecodeError::UnsupportedVersion { .. })
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string, byte array or array longer than the wire format can express.
    #[error("value of {length} items is too long to encode")]
    TooLong { length: usize },
    /// A version of a known API outside the supported range.
    #[error("cannot encode version {version} of api key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
}
