//! Sockets: the Kafka listener of one shard and its connections.
//!
//! Every shard binds the same address (glommio sets SO_REUSEPORT), so the
//! kernel spreads connections across shards. A connection's requests are
//! dispatched in order; the slow tail of a request (the fdatasync of an
//! acks=all produce, a long-polling fetch) finishes while the next requests
//! are read, and responses are written in request order. A partial frame is
//! a normal state that waits for more bytes.

use std::net::SocketAddr;
use std::rc::Rc;

use futures_lite::AsyncWriteExt;
use futures_lite::io::{ReadHalf, WriteHalf};
use glommio::net::{TcpListener, TcpStream};

use crate::frame_reader::{FrameReadError, FrameReader};
use crate::handler::{self, Context, Outcome};
use crate::shard::Shard;

/// Requests of one connection in flight at once (read but not answered).
const MAX_IN_FLIGHT: usize = 32;

/// Accepts connections until shutdown.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        if shard.cluster.is_shutting_down() {
            break;
        }
        match listener.accept().await {
            Ok(stream) => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let peer = stream.peer_addr().ok();
                    if let Err(e) = handle_connection(shard, stream).await {
                        tracing::debug!(?peer, error = %e, "connection ended");
                    }
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn handle_connection(shard: Rc<Shard>, stream: TcpStream) -> std::io::Result<()> {
    let peer: SocketAddr = stream.peer_addr()?;
    stream.set_nodelay(true)?;
    let ctx = Context {
        shard: shard.clone(),
        peer,
    };
    let metrics = &shard.cluster.metrics;
    metrics.connections.inc();
    let (reader, writer) = futures_lite::io::split(stream);
    // Responses in request order; a bounded queue so a client that never
    // reads its responses stops being read from.
    let (queue, pending) = async_channel::bounded::<Outcome>(MAX_IN_FLIGHT);
    let writing = glommio::spawn_local(write_responses(shard.clone(), writer, pending, peer));
    let result = read_requests(&shard, &ctx, reader, &queue, peer).await;
    queue.close();
    let written = writing.await;
    metrics.connections.dec();
    result.and(written)
}

/// Reads frames and dispatches them in order; what is not answered at once
/// (an acks=all fdatasync, a long poll) is queued and finishes meanwhile.
async fn read_requests(
    shard: &Shard,
    ctx: &Context,
    mut reader: ReadHalf<TcpStream>,
    queue: &async_channel::Sender<Outcome>,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let metrics = &shard.cluster.metrics;
    let max = shard.cluster.config.socket_request_max_bytes;
    let mut frames = FrameReader::new(&mut reader, max);
    loop {
        let body = match frames.next_frame().await {
            Ok(Some(body)) => body,
            Ok(None) => return Ok(()),
            Err(FrameReadError::Io(e)) => return Err(e),
            Err(FrameReadError::Frame(e)) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                let _ = queue.send(Outcome::Close(e.to_string())).await;
                return Ok(());
            }
        };
        metrics.request_bytes.inc_by(4 + body.len() as u64);
        let outcome = match handler::dispatch(ctx, body).await {
            // Start the rest now, so consecutive requests' syncs and waits
            // overlap; the writer awaits them in order.
            Outcome::Deferred(rest) => Outcome::Deferred(Box::pin(glommio::spawn_local(rest))),
            other => other,
        };
        let closing = matches!(outcome, Outcome::Close(_));
        if queue.send(outcome).await.is_err() || closing {
            return Ok(());
        }
        if shard.cluster.is_shutting_down() {
            return Ok(());
        }
    }
}

/// Writes responses in request order, finishing deferred ones first.
async fn write_responses(
    shard: Rc<Shard>,
    mut writer: WriteHalf<TcpStream>,
    pending: async_channel::Receiver<Outcome>,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let metrics = &shard.cluster.metrics;
    while let Ok(mut outcome) = pending.recv().await {
        if let Outcome::Deferred(rest) = outcome {
            outcome = rest.await;
        }
        match outcome {
            Outcome::Respond(chunks) => {
                for chunk in chunks {
                    metrics.response_bytes.inc_by(chunk.len() as u64);
                    writer.write_all(&chunk).await?;
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                pending.close();
                break;
            }
            Outcome::Deferred(_) => unreachable!("a deferred outcome resolves to a final one"),
        }
    }
    writer.close().await
}
