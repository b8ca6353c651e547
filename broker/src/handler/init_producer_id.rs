//! InitProducerId (key 22): a producer id and epoch for idempotent producers.
//!
//! A producer that asks again with its id and epoch (v3+, after an
//! UNKNOWN_PRODUCER_ID or OUT_OF_ORDER_SEQUENCE_NUMBER) gets the same id with
//! the epoch bumped, so its sequences restart at 0.

use protocol::init_producer_id_request::InitProducerIdRequest;
use protocol::init_producer_id_response::InitProducerIdResponse;

use super::Call;
use crate::error_code;

pub fn handle(call: &Call<'_>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    if req
        .transactional_id
        .as_deref()
        .is_some_and(|t| !t.is_empty())
    {
        return InitProducerIdResponse {
            error_code: error_code::COORDINATOR_NOT_AVAILABLE,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
    }
    if req.producer_id >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return InitProducerIdResponse {
            error_code: error_code::NONE,
            producer_id: req.producer_id,
            producer_epoch: req.producer_epoch + 1,
            ..Default::default()
        };
    }
    match call.shard().cluster.producer_ids.allocate() {
        Ok(id) => InitProducerIdResponse {
            error_code: error_code::NONE,
            producer_id: id,
            producer_epoch: 0,
            ..Default::default()
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            InitProducerIdResponse {
                error_code: error_code::KAFKA_STORAGE_ERROR,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            }
        }
    }
}
