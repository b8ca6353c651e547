//! DescribeCluster (key 60): the cluster id and its one broker.

use protocol::describe_cluster_request::DescribeClusterRequest;
use protocol::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};

use super::Call;
use crate::admin;
use crate::error_code;

pub fn handle(call: &Call<'_>, _req: DescribeClusterRequest) -> DescribeClusterResponse {
    let config = &call.shard().cluster.config;
    let (host, port) = admin::split_host_port(&config.advertised_addr);
    DescribeClusterResponse {
        error_code: error_code::NONE,
        cluster_id: config.cluster_id.clone(),
        controller_id: config.node_id,
        brokers: vec![DescribeClusterBroker {
            broker_id: config.node_id,
            host,
            port,
            rack: None,
        }],
        ..Default::default()
    }
}
