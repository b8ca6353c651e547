//! Request bodies: decode any API at any version, and the round-trip
//! invariant that every decoded request must satisfy.

use bytes::Bytes;
use protocol::wire::Reader;
use protocol::{ApiKey, EncodeError, Message as _, Request, RequestHeader};

use crate::alloc;

/// Calls `$m!` with every API the codec implements, as
/// `Variant => module::Type`. [`check_api_list`] fails when `ApiKey::ALL`
/// grows and this list does not.
macro_rules! with_every_api {
    ($m:ident) => {
        $m! {
            Produce => produce_request::ProduceRequest,
            Fetch => fetch_request::FetchRequest,
            ListOffsets => list_offsets_request::ListOffsetsRequest,
            Metadata => metadata_request::MetadataRequest,
            OffsetCommit => offset_commit_request::OffsetCommitRequest,
            OffsetFetch => offset_fetch_request::OffsetFetchRequest,
            FindCoordinator => find_coordinator_request::FindCoordinatorRequest,
            JoinGroup => join_group_request::JoinGroupRequest,
            Heartbeat => heartbeat_request::HeartbeatRequest,
            LeaveGroup => leave_group_request::LeaveGroupRequest,
            SyncGroup => sync_group_request::SyncGroupRequest,
            DescribeGroups => describe_groups_request::DescribeGroupsRequest,
            ListGroups => list_groups_request::ListGroupsRequest,
            ApiVersions => api_versions_request::ApiVersionsRequest,
            CreateTopics => create_topics_request::CreateTopicsRequest,
            DeleteTopics => delete_topics_request::DeleteTopicsRequest,
            DeleteRecords => delete_records_request::DeleteRecordsRequest,
            InitProducerId => init_producer_id_request::InitProducerIdRequest,
            OffsetForLeaderEpoch => offset_for_leader_epoch_request::OffsetForLeaderEpochRequest,
            DescribeConfigs => describe_configs_request::DescribeConfigsRequest,
            AlterConfigs => alter_configs_request::AlterConfigsRequest,
            CreatePartitions => create_partitions_request::CreatePartitionsRequest,
            DeleteGroups => delete_groups_request::DeleteGroupsRequest,
            IncrementalAlterConfigs => incremental_alter_configs_request::IncrementalAlterConfigsRequest,
            DescribeCluster => describe_cluster_request::DescribeClusterRequest,
        }
    };
}

macro_rules! listed_apis {
    ($($variant:ident => $module:ident :: $ty:ident,)*) => {
        &[$(ApiKey::$variant,)*]
    };
}

/// Panics unless the list above names every API of the codec, so a new API
/// cannot silently escape the round-trip check.
pub fn check_api_list() {
    let listed: &[ApiKey] = with_every_api!(listed_apis);
    for api in ApiKey::ALL {
        assert!(
            listed.contains(api),
            "fuzz/src/requests.rs: add {} to with_every_api!",
            api.name()
        );
    }
}

macro_rules! encode_any {
    ($($variant:ident => $module:ident :: $ty:ident,)*) => {
        /// Encodes a decoded request body at `version` (the codec's `Request`
        /// enum only decodes).
        pub fn encode(request: &Request, version: i16) -> Result<Vec<u8>, EncodeError> {
            let mut w = Vec::new();
            match request {
                $(Request::$variant(m) => m.encode(&mut w, version)?,)*
                other => panic!("fuzz/src/requests.rs: add {other:?} to with_every_api!"),
            }
            Ok(w)
        }
    };
}
with_every_api!(encode_any);

macro_rules! default_any {
    ($($variant:ident => $module:ident :: $ty:ident,)*) => {
        /// The body of a default (empty) request of `api` at `version`, for seeds.
        pub fn default_body(api: ApiKey, version: i16) -> Result<Vec<u8>, EncodeError> {
            let mut w = Vec::new();
            match api {
                $(ApiKey::$variant => protocol::$module::$ty::default().encode(&mut w, version)?,)*
                other => panic!("fuzz/src/requests.rs: add {other:?} to with_every_api!"),
            }
            Ok(w)
        }
    };
}
with_every_api!(default_any);

/// Decoding may allocate at most this many bytes per input byte (plus
/// [`DECODE_ALLOC_BASE`]): Rust structs are larger than their wire form (a
/// one-byte flexible struct becomes a ~100-byte struct, nested arrays
/// multiply that), but the ratio is a constant. A count used before it is
/// checked shows up as an allocation unrelated to the input size.
pub const DECODE_ALLOC_PER_BYTE: usize = 512;
pub const DECODE_ALLOC_BASE: usize = 256 << 10;

/// Decodes `body` as a request of `api` at `version` and checks the
/// invariants. Returns whether it decoded.
///
/// - Outside the supported versions, decoding fails with
///   `UnsupportedVersion` (the broker answers ApiVersions from that).
/// - Memory: see [`DECODE_ALLOC_PER_BYTE`].
/// - A decoded request encodes; its encoding is no longer than the bytes it
///   was decoded from (unknown tags are dropped, varints become minimal);
///   it decodes to the same value, using every byte; and encodes to the same
///   bytes again.
pub fn check_body(api: ApiKey, version: i16, body: Bytes) -> bool {
    let len = body.len();
    let mut r = Reader::new(body);
    let baseline = alloc::start();
    let decoded = Request::decode(api, version, &mut r);
    let peak = alloc::peak_since(baseline);
    assert!(
        peak <= DECODE_ALLOC_BASE + DECODE_ALLOC_PER_BYTE * len,
        "decoding a {len}-byte {} v{version} body allocated {peak} bytes",
        api.name()
    );
    let (min, max) = api.versions();
    if !(min..=max).contains(&version) {
        match decoded {
            Err(e) => assert!(
                e.is_unsupported_version(),
                "{} v{version} (supported {min}-{max}) failed with {e:?}, not UnsupportedVersion",
                api.name()
            ),
            Ok(req) => panic!(
                "{} v{version} (supported {min}-{max}) decoded: {req:?}",
                api.name()
            ),
        }
        return false;
    }
    let Ok(request) = decoded else {
        return false;
    };
    let consumed = r.position();
    let encoded = encode(&request, version)
        .unwrap_or_else(|e| panic!("decoded {request:?} does not encode at v{version}: {e}"));
    assert!(
        encoded.len() <= consumed,
        "{} v{version}: re-encoding {consumed} bytes gave {} bytes",
        api.name(),
        encoded.len()
    );
    let mut r2 = Reader::new(Bytes::from(encoded.clone()));
    let again = Request::decode(api, version, &mut r2).unwrap_or_else(|e| {
        panic!(
            "{} v{version}: re-encoded request does not decode: {e}\nrequest: {request:?}\nbytes: {encoded:02x?}",
            api.name()
        )
    });
    assert_eq!(
        r2.remaining(),
        0,
        "{} v{version}: decoding the re-encoded request left bytes",
        api.name()
    );
    assert_eq!(
        again,
        request,
        "{} v{version}: round trip changed the request",
        api.name()
    );
    let encoded_again = encode(&again, version).expect("encodes once, encodes twice");
    assert_eq!(
        encoded_again,
        encoded,
        "{} v{version}: encoding is not stable",
        api.name()
    );
    true
}

/// Checks a decoded request header: it re-encodes to a header that decodes
/// to the same value (tagged fields are dropped, so bytes may differ).
pub fn check_header(header: &RequestHeader) {
    let mut w = Vec::new();
    header
        .encode(&mut w)
        .unwrap_or_else(|e| panic!("decoded header {header:?} does not encode: {e}"));
    let mut r = Reader::new(Bytes::from(w));
    let again = RequestHeader::decode(&mut r).expect("re-encoded header decodes");
    assert_eq!(&again, header, "header round trip");
    assert_eq!(r.remaining(), 0, "header round trip left bytes");
}
