//! A connection's byte stream, handled as `broker::net` and
//! `broker::handler::dispatch` handle it: frame size, request header, body
//! of whatever API and version the header names, frame after frame, until
//! the broker would close the connection.
//!
//! Invariants: `frame_size` agrees with the 4-byte prefix and never exceeds
//! its maximum; headers and bodies round-trip (see `floe_fuzz::requests`);
//! decoding allocates in proportion to the frame.

#![no_main]

use bytes::Bytes;
use floe_fuzz::requests::{check_api_list, check_body, check_header};
use libfuzzer_sys::fuzz_target;
use protocol::header::{FrameError, frame_size};
use protocol::wire::Reader;
use protocol::{ApiKey, RequestHeader};

/// A small socket.request.max.bytes, so that oversized frames are reachable.
const MAX_FRAME: usize = 1 << 20;

fuzz_target!(
    init: {
        check_api_list();
    },
    |data: &[u8]| {
        let mut buf = data;
        loop {
            let size = match frame_size(buf, MAX_FRAME) {
                Ok(None) => {
                    assert!(buf.len() < 4, "a 4-byte prefix is a frame size");
                    return;
                }
                Err(e) => {
                    let prefix = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    match e {
                        FrameError::Negative { size } => assert!(size < 0 && size == prefix),
                        FrameError::TooLarge { size, max } => {
                            assert!(max == MAX_FRAME && size > max && size == prefix as usize)
                        }
                        other => panic!("unexpected frame error {other:?}"),
                    }
                    return; // the broker closes the connection
                }
                Ok(Some(size)) => size,
            };
            let prefix = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            assert!(prefix >= 0 && prefix as usize == size && size <= MAX_FRAME);
            if buf.len() < 4 + size {
                return; // a partial frame: the broker waits for more bytes
            }
            let frame = Bytes::copy_from_slice(&buf[4..4 + size]);
            buf = &buf[4 + size..];

            let mut r = Reader::new(frame);
            let Ok(header) = RequestHeader::decode(&mut r) else {
                return; // malformed header: closed
            };
            check_header(&header);
            let Some(api) = ApiKey::from_i16(header.api_key) else {
                return; // unknown api: closed
            };
            let (min, max) = api.versions();
            let supported = (min..=max).contains(&header.api_version);
            let decoded = check_body(api, header.api_version, r.rest());
            if !supported {
                if api == ApiKey::ApiVersions {
                    continue; // answered with UNSUPPORTED_VERSION in the v0 format
                }
                return;
            }
            if !decoded {
                return; // malformed body: closed
            }
        }
    }
);
