//! Writes the seed corpora: `seeds <corpus dir>` creates
//! `<dir>/{frame,requests,record_batch,decompress}/seed-*`.
//!
//! Seeds are valid inputs made with the codec and the batch builder, so the
//! fuzzer starts from every API at every supported version, every codec, and
//! batches that pass validation; nothing binary is committed. Existing files
//! are overwritten (same name, same bytes), other files are left alone.

use std::path::{Path, PathBuf};

use broker::log::BatchBuilder;
use broker::log::batch::HEADER_LEN;
use broker::log::compression::{Compression, compress};
use bytes::Bytes;
use floe_fuzz::batches::Fixups;
use floe_fuzz::requests::{check_api_list, default_body};
use protocol::header::encode_request;
use protocol::metadata_request::{MetadataRequest, MetadataRequestTopic};
use protocol::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use protocol::{ApiKey, Message, RequestHeader};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

struct Corpus {
    dir: PathBuf,
    count: usize,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Corpus {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Corpus { dir, count: 0 }
    }

    fn write(&mut self, name: &str, bytes: &[u8]) {
        let path = self.dir.join(format!("seed-{name}"));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.count += 1;
    }
}

fn header(api: ApiKey, version: i16) -> RequestHeader {
    RequestHeader {
        api_key: api as i16,
        api_version: version,
        correlation_id: 7,
        client_id: Some("floe-seed".into()),
    }
}

/// A batch of three records with keys, values and headers.
fn batch(codec: Compression, idempotent: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new(codec);
    if idempotent {
        b = b.producer(1000, 0, 0);
    }
    b.push(1_750_000_000_000, Some(b"key-0"), Some(b"value zero"), &[]);
    b.push(
        1_750_000_000_001,
        None,
        Some(b"value one"),
        &[(b"h", Some(b"v"))],
    );
    b.push(1_750_000_000_002, Some(b"key-2"), None, &[(b"h", None)]);
    b.build().expect("seed batch builds")
}

fn produce(records: Vec<u8>) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "orders".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from(records)),
            }],
        }],
    }
}

fn metadata(version: i16) -> MetadataRequest {
    let topic = |name: &str| MetadataRequestTopic {
        name: Some(name.into()),
        ..Default::default()
    };
    MetadataRequest {
        topics: Some(vec![topic("orders"), topic("payments")]),
        allow_auto_topic_creation: version >= 4,
        ..Default::default()
    }
}

fn body_of<M: Message>(m: &M, version: i16) -> Vec<u8> {
    let mut w = Vec::new();
    m.encode(&mut w, version).expect("seed body encodes");
    w
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    check_api_list();

    // frame and requests: every API at every version, default bodies, plus
    // produce and metadata with content.
    let mut frame = Corpus::new(&root, "frame");
    let mut requests = Corpus::new(&root, "requests");
    for &api in ApiKey::ALL {
        let (min, max) = api.versions();
        for version in min..=max {
            let body = default_body(api, version).expect("default body encodes");
            let mut whole = Vec::new();
            let h = header(api, version);
            h.encode(&mut whole).expect("header encodes");
            whole.extend_from_slice(&body);
            let mut framed = (whole.len() as i32).to_be_bytes().to_vec();
            framed.extend_from_slice(&whole);
            frame.write(&format!("{}-v{version}", api.name()), &framed);
            let mut req = vec![api as i16 as u8, version as u8];
            req.extend_from_slice(&body);
            requests.write(&format!("{}-v{version}", api.name()), &req);
        }
    }
    let (pmin, pmax) = ApiKey::Produce.versions();
    for version in pmin..=pmax {
        let p = produce(batch(Compression::Lz4, true));
        let f = encode_request(&header(ApiKey::Produce, version), &p).expect("produce encodes");
        frame.write(&format!("Produce-v{version}-records"), &f);
        let mut req = vec![ApiKey::Produce as i16 as u8, version as u8];
        req.extend_from_slice(&body_of(&p, version));
        requests.write(&format!("Produce-v{version}-records"), &req);
    }
    let (mmin, mmax) = ApiKey::Metadata.versions();
    let mut pipelined = Vec::new();
    for version in mmin..=mmax {
        let m = metadata(version);
        let f = encode_request(&header(ApiKey::Metadata, version), &m).expect("metadata encodes");
        frame.write(&format!("Metadata-v{version}-topics"), &f);
        pipelined.extend_from_slice(&f);
        let mut req = vec![ApiKey::Metadata as i16 as u8, version as u8];
        req.extend_from_slice(&body_of(&m, version));
        requests.write(&format!("Metadata-v{version}-topics"), &req);
    }
    // Several frames on one connection, and ApiVersions above our range
    // (answered, the connection stays open) followed by a good request.
    frame.write("pipelined-metadata", &pipelined);
    let (_, avmax) = ApiKey::ApiVersions.versions();
    let mut unsupported = Vec::new();
    let h = header(ApiKey::ApiVersions, avmax + 1);
    h.encode(&mut unsupported).expect("header encodes");
    // client_software_name and _version as empty compact strings, no tags.
    unsupported.extend_from_slice(&[1, 1, 0]);
    let mut framed = (unsupported.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&unsupported);
    framed.extend_from_slice(&encode_request(&header(ApiKey::Metadata, 1), &metadata(1)).unwrap());
    frame.write("ApiVersions-unsupported-then-metadata", &framed);

    // record_batch: each codec as built (no fix-ups), idempotent or not;
    // and uncompressed records marked with a codec, for the compress fix-up.
    let mut batches = Corpus::new(&root, "record_batch");
    let all_fixups = Fixups {
        compress: true,
        length: true,
        crc: true,
        twice: false,
    };
    for codec in CODECS {
        for idempotent in [false, true] {
            let b = batch(codec, idempotent);
            let mut seed = vec![0u8];
            seed.extend_from_slice(&b);
            batches.write(&format!("{codec}-idempotent-{idempotent}"), &seed);
            let mut twice = vec![
                Fixups {
                    twice: true,
                    ..Fixups::from_byte(0)
                }
                .to_byte(),
            ];
            twice.extend_from_slice(&b);
            batches.write(&format!("{codec}-idempotent-{idempotent}-twice"), &twice);
        }
        let mut raw = batch(Compression::None, false);
        let attributes = codec.attribute_bits();
        raw[21..23].copy_from_slice(&attributes.to_be_bytes());
        let mut seed = vec![all_fixups.to_byte()];
        seed.extend_from_slice(&raw);
        batches.write(&format!("{codec}-fixups"), &seed);
    }

    // decompress: records, text and a run of zeros under each codec, with a
    // cap that fits and one that does not.
    let mut decompress = Corpus::new(&root, "decompress");
    let records = batch(Compression::None, false)[HEADER_LEN..].to_vec();
    let samples: [(&str, Vec<u8>); 3] = [
        ("records", records),
        ("text", b"floe fuzz seed text ".repeat(40)),
        ("zeros", vec![0u8; 64 << 10]),
    ];
    for (i, codec) in CODECS.iter().enumerate() {
        for (name, sample) in &samples {
            let packed = compress(*codec, sample).expect("seed compresses");
            for (cap_name, cap) in [("fits", sample.len()), ("small", sample.len() / 2)] {
                let steps = u16::try_from(cap.div_ceil(8)).unwrap_or(u16::MAX);
                let mut seed = vec![i as u8];
                seed.extend_from_slice(&steps.to_le_bytes());
                seed.extend_from_slice(&packed);
                decompress.write(&format!("{codec}-{name}-{cap_name}"), &seed);
            }
        }
    }

    for c in [&frame, &requests, &batches, &decompress] {
        println!("{}: {} seeds", c.dir.display(), c.count);
    }
}
