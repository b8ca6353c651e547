//! FindCoordinator (key 10): this broker coordinates every group.

use protocol::find_coordinator_request::FindCoordinatorRequest;
use protocol::find_coordinator_response::{Coordinator, FindCoordinatorResponse};

use super::Call;
use crate::admin;
use crate::error_code;

const KEY_TYPE_GROUP: i8 = 0;

pub fn handle(call: &Call<'_>, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let config = &call.shard().cluster.config;
    let (host, port) = admin::split_host_port(&config.advertised_addr);
    let node_id = config.node_id;
    let answer = |key_type: i8| -> (i16, Option<String>) {
        if key_type == KEY_TYPE_GROUP {
            (error_code::NONE, None)
        } else {
            (
                error_code::COORDINATOR_NOT_AVAILABLE,
                Some("transactions are not supported".to_string()),
            )
        }
    };
    if call.version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (error_code, error_message) = answer(req.key_type);
                Coordinator {
                    key,
                    node_id,
                    host: host.clone(),
                    port,
                    error_code,
                    error_message,
                }
            })
            .collect();
        return FindCoordinatorResponse {
            coordinators,
            ..Default::default()
        };
    }
    let (error_code, error_message) = answer(req.key_type);
    FindCoordinatorResponse {
        error_code,
        error_message,
        node_id,
        host,
        port,
        ..Default::default()
    }
}
