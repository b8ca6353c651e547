//! One request body of a chosen API and version: byte 0 is the api key
//! (mapped onto the implemented APIs when unknown), byte 1 the version (from
//! 0 to one above the highest supported, so unsupported versions are hit
//! too), the rest is the body.
//!
//! Invariants: see `floe_fuzz::requests::check_body` (round trip, memory
//! proportional to the body, `UnsupportedVersion` outside the range).

#![no_main]

use bytes::Bytes;
use floe_fuzz::requests::{check_api_list, check_body};
use libfuzzer_sys::fuzz_target;
use protocol::ApiKey;

fuzz_target!(
    init: {
        check_api_list();
    },
    |data: &[u8]| {
        let [key, version, body @ ..] = data else {
            return;
        };
        let api = ApiKey::from_i16(i16::from(*key))
            .unwrap_or(ApiKey::ALL[usize::from(*key) % ApiKey::ALL.len()]);
        let (_, max) = api.versions();
        let version = i16::from(*version) % (max + 2);
        check_body(api, version, Bytes::copy_from_slice(body));
    }
);
