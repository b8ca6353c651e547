//! Request handlers: one file per Kafka API, dispatched from [`dispatch`].
//!
//! A handler takes the decoded request and returns the response struct; it
//! never sees bytes or sockets.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use protocol::wire::Reader;
use protocol::{ApiKey, Message, Request, RequestHeader};

use crate::shard::Shard;

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

/// What a handler needs to know about the request's origin.
#[derive(Clone)]
pub struct Context {
    pub shard: Rc<Shard>,
    pub peer: SocketAddr,
}

/// The request being served.
pub struct Call<'a> {
    pub ctx: &'a Context,
    pub header: &'a RequestHeader,
    pub version: i16,
}

impl Call<'_> {
    pub fn shard(&self) -> &Shard {
        &self.ctx.shard
    }
    pub fn client_id(&self) -> &str {
        self.header.client_id.as_deref().unwrap_or("")
    }
}

/// What the connection does after a request.
pub enum Outcome {
    /// Write this response frame: its chunks in order (large record sets
    /// are chunks of their own, sent without a copy).
    Respond(Vec<Bytes>),
    /// acks=0 produce: nothing to send.
    NoResponse,
    /// Close the connection (malformed request), with the reason to log.
    Close(String),
    /// The rest of the request runs while the connection reads the next
    /// ones (the fdatasync of an acks=all produce, a long-polling fetch);
    /// responses are still written in request order.
    Deferred(std::pin::Pin<Box<dyn std::future::Future<Output = Outcome>>>),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Respond(chunks) => write!(
                f,
                "Respond({} bytes)",
                chunks.iter().map(Bytes::len).sum::<usize>()
            ),
            Outcome::NoResponse => write!(f, "NoResponse"),
            Outcome::Close(r) => write!(f, "Close({r})"),
            Outcome::Deferred(_) => write!(f, "Deferred"),
        }
    }
}

fn respond<M: Message>(header: &RequestHeader, body: &M) -> Outcome {
    match protocol::header::encode_response_chunks(header.correlation_id, header.api_version, body)
    {
        Ok(chunks) => Outcome::Respond(chunks),
        Err(e) => Outcome::Close(format!(
            "cannot encode response to api {} v{}: {e}",
            header.api_key, header.api_version
        )),
    }
}

/// Decodes one request frame, runs its handler and encodes the response.
pub async fn dispatch(ctx: &Context, frame: Bytes) -> Outcome {
    let mut r = Reader::new(frame);
    let header = match RequestHeader::decode(&mut r) {
        Ok(h) => h,
        Err(e) => {
            ctx.shard.cluster.metrics.closed_bad_requests.inc();
            return Outcome::Close(format!("malformed request header: {e}"));
        }
    };
    let Some(api) = ApiKey::from_i16(header.api_key) else {
        return Outcome::Close(format!("unknown api key {}", header.api_key));
    };
    let (min, max) = api.versions();
    if header.api_version < min || header.api_version > max {
        if api == ApiKey::ApiVersions {
            // Answer in the v0 format so any client can read it and retry lower.
            return api_versions::unsupported(&header);
        }
        return Outcome::Close(format!(
            "unsupported version {} of {} (supported {min}-{max})",
            header.api_version,
            api.name()
        ));
    }
    let request = match Request::decode(api, header.api_version, &mut r) {
        Ok(req) => req,
        Err(e) => {
            ctx.shard.cluster.metrics.closed_bad_requests.inc();
            return Outcome::Close(format!(
                "malformed {} v{} request: {e}",
                api.name(),
                header.api_version
            ));
        }
    };
    ctx.shard
        .cluster
        .metrics
        .requests
        .get_or_create(&crate::metrics::ApiLabels { api: api.name() })
        .inc();
    let call = Call {
        ctx,
        header: &header,
        version: header.api_version,
    };
    match request {
        Request::ApiVersions(req) => respond(&header, &api_versions::handle(&call, req)),
        Request::Metadata(req) => respond(&header, &metadata::handle(&call, req).await),
        Request::Produce(req) => {
            let acks = req.acks;
            let (resp, to_sync) = produce::append(&call, req).await;
            match acks {
                0 => Outcome::NoResponse,
                -1 if !to_sync.is_empty() => {
                    let shard = ctx.shard.clone();
                    Outcome::Deferred(Box::pin(async move {
                        let resp = produce::sync(&shard, resp, to_sync).await;
                        respond(&header, &resp)
                    }))
                }
                _ => respond(&header, &resp),
            }
        }
        Request::Fetch(req) => {
            let ctx = ctx.clone();
            Outcome::Deferred(Box::pin(async move {
                let call = Call {
                    ctx: &ctx,
                    header: &header,
                    version: header.api_version,
                };
                let resp = fetch::handle(&call, req).await;
                respond(&header, &resp)
            }))
        }
        Request::ListOffsets(req) => respond(&header, &list_offsets::handle(&call, req).await),
        Request::CreateTopics(req) => respond(&header, &create_topics::handle(&call, req).await),
        Request::DeleteTopics(req) => respond(&header, &delete_topics::handle(&call, req).await),
        Request::CreatePartitions(req) => {
            respond(&header, &create_partitions::handle(&call, req).await)
        }
        Request::DescribeConfigs(req) => respond(&header, &describe_configs::handle(&call, req)),
        Request::AlterConfigs(req) => respond(&header, &alter_configs::handle(&call, req).await),
        Request::IncrementalAlterConfigs(req) => respond(
            &header,
            &incremental_alter_configs::handle(&call, req).await,
        ),
        Request::DeleteRecords(req) => respond(&header, &delete_records::handle(&call, req).await),
        Request::OffsetForLeaderEpoch(req) => {
            respond(&header, &offset_for_leader_epoch::handle(&call, req).await)
        }
        Request::FindCoordinator(req) => respond(&header, &find_coordinator::handle(&call, req)),
        Request::JoinGroup(req) => respond(&header, &join_group::handle(&call, req).await),
        Request::SyncGroup(req) => respond(&header, &sync_group::handle(&call, req).await),
        Request::Heartbeat(req) => respond(&header, &heartbeat::handle(&call, req).await),
        Request::LeaveGroup(req) => respond(&header, &leave_group::handle(&call, req).await),
        Request::OffsetCommit(req) => respond(&header, &offset_commit::handle(&call, req).await),
        Request::OffsetFetch(req) => respond(&header, &offset_fetch::handle(&call, req).await),
        Request::ListGroups(req) => respond(&header, &list_groups::handle(&call, req).await),
        Request::DescribeGroups(req) => {
            respond(&header, &describe_groups::handle(&call, req).await)
        }
        Request::DeleteGroups(req) => respond(&header, &delete_groups::handle(&call, req).await),
        Request::InitProducerId(req) => respond(&header, &init_producer_id::handle(&call, req)),
        Request::DescribeCluster(req) => respond(&header, &describe_cluster::handle(&call, req)),
        other => Outcome::Close(format!("no handler for {other:?}")),
    }
}
