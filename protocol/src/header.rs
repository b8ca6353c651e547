//! Frames and headers.
//!
//! A Kafka frame is a big-endian `i32` size followed by that many bytes. A
//! request frame starts with the request header (v1, or v2 with tagged fields
//! for flexible versions); a response frame with the response header (v0, or
//! v1 with tagged fields; ApiVersions responses always use v0 so that a
//! client can read them whatever version it asked for).

use bytes::Bytes;

use crate::Message;
use crate::error::{DecodeError, EncodeError};
use crate::messages::ApiKey;
use crate::wire::{Frame, Put, Reader};

/// Why the bytes on a connection cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame size {size} is negative")]
    Negative { size: i32 },
    #[error("frame size {size} exceeds socket.request.max.bytes {max}")]
    TooLarge { size: usize, max: usize },
}

/// The size of the frame at the start of `buf`, if its 4-byte prefix has
/// arrived: `Ok(None)` means more bytes are needed (a normal state).
pub fn frame_size(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative { size });
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(Some(size))
}

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Whether the request body (and this header) use the flexible format.
    pub fn is_flexible(&self) -> bool {
        match ApiKey::from_i16(self.api_key) {
            // ApiVersions is flexible from v3 even above our supported range.
            Some(ApiKey::ApiVersions) => self.api_version >= 3,
            Some(api) => self.api_version >= api.flexible_from(),
            None => false,
        }
    }

    /// Decodes the header at the start of a frame body; `r` is left at the
    /// start of the request body.
    pub fn decode(r: &mut Reader) -> Result<RequestHeader, DecodeError> {
        let api_key = r.i16()?;
        let api_version = r.i16()?;
        let correlation_id = r.i32()?;
        // client_id is a classic nullable string even in header v2.
        let client_id = r.nullable_string(false)?;
        let header = RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        };
        if header.is_flexible() {
            let tags = r.uvarint()?;
            for _ in 0..tags {
                let _tag = r.uvarint()?;
                let size = r.uvarint()? as usize;
                r.skip(size)?;
            }
        }
        Ok(header)
    }

    /// Encodes the header (used by tests and the load tool).
    pub fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        w.put_i16(self.api_key);
        w.put_i16(self.api_version);
        w.put_i32(self.correlation_id);
        w.put_nullable_string(self.client_id.as_deref(), false)?;
        if self.is_flexible() {
            w.put_uvarint(0);
        }
        Ok(())
    }
}

/// A response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    pub correlation_id: i32,
}

/// Encodes a whole response frame: size, header, body.
pub fn encode_response<M: Message>(
    correlation_id: i32,
    version: i16,
    body: &M,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = Vec::with_capacity(64);
    encode_response_into(&mut w, correlation_id, version, body)?;
    let size = i32::try_from(w.len() - 4).map_err(|_| EncodeError::TooLong { length: w.len() })?;
    w[..4].copy_from_slice(&size.to_be_bytes());
    Ok(w)
}

/// Encodes a whole response frame as chunks to write in order, referring to
/// large record sets instead of copying them (see [`Frame`]).
pub fn encode_response_chunks<M: Message>(
    correlation_id: i32,
    version: i16,
    body: &M,
) -> Result<Vec<Bytes>, EncodeError> {
    let mut w = Frame::with_capacity(256);
    encode_response_into(&mut w, correlation_id, version, body)?;
    let len = w.written();
    let size = i32::try_from(len - 4).map_err(|_| EncodeError::TooLong { length: len })?;
    w.patch(0, &size.to_be_bytes());
    Ok(w.into_chunks())
}

fn encode_response_into<M: Message, W: Put>(
    w: &mut W,
    correlation_id: i32,
    version: i16,
    body: &M,
) -> Result<(), EncodeError> {
    w.put_i32(0); // size, patched by the caller
    w.put_i32(correlation_id);
    let flexible_header = M::API_KEY != ApiKey::ApiVersions as i16 && version >= M::FLEXIBLE_FROM;
    if flexible_header {
        w.put_uvarint(0);
    }
    body.encode(w, version)
}

/// Encodes a whole request frame (for tests, fuzz seeds and the load tool).
pub fn encode_request<M: Message>(
    header: &RequestHeader,
    body: &M,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = Vec::with_capacity(64);
    w.put_i32(0);
    header.encode(&mut w)?;
    body.encode(&mut w, header.api_version)?;
    let size = i32::try_from(w.len() - 4).map_err(|_| EncodeError::TooLong { length: w.len() })?;
    w[..4].copy_from_slice(&size.to_be_bytes());
    Ok(w)
}

/// Decodes a response frame body (after the size) for `M` at `version`:
/// returns the correlation id and the body. For tests and the load tool.
pub fn decode_response<M: Message>(frame: Bytes, version: i16) -> Result<(i32, M), DecodeError> {
    let mut r = Reader::new(frame);
    let correlation_id = r.i32()?;
    if M::API_KEY != ApiKey::ApiVersions as i16 && version >= M::FLEXIBLE_FROM {
        let tags = r.uvarint()?;
        for _ in 0..tags {
            let _tag = r.uvarint()?;
            let size = r.uvarint()? as usize;
            r.skip(size)?;
        }
    }
    Ok((correlation_id, M::decode(&mut r, version)?))
}
