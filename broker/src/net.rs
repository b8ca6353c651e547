//! Sockets: the Kafka listener of one shard and its connections.
//!
//! Every shard binds the same address (glommio sets SO_REUSEPORT), so the
//! kernel spreads connections across shards. A connection's requests are
//! handled one at a time, in order, as Kafka does; a partial frame is a
//! normal state that waits for more bytes.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use crate::handler::{self, Context, Outcome};
use crate::shard::Shard;

const READ_CHUNK: usize = 64 * 1024;

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

async fn handle_connection(shard: Rc<Shard>, mut stream: TcpStream) -> std::io::Result<()> {
    let peer: SocketAddr = stream.peer_addr()?;
    stream.set_nodelay(true)?;
    let max = shard.cluster.config.socket_request_max_bytes;
    let ctx = Context {
        shard: shard.clone(),
        peer,
    };
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let metrics = &shard.cluster.metrics;
    metrics.connections.inc();
    let result = serve_frames(&shard, &ctx, &mut stream, &mut buf, peer, max).await;
    metrics.connections.dec();
    result
}

async fn serve_frames(
    shard: &Shard,
    ctx: &Context,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    peer: SocketAddr,
    max: usize,
) -> std::io::Result<()> {
    let metrics = &shard.cluster.metrics;
    loop {
        match protocol::header::frame_size(buf, max) {
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                return Ok(());
            }
            Ok(Some(size)) if buf.len() >= 4 + size => {
                let mut frame = buf.split_to(4 + size);
                let body = frame.split_off(4).freeze();
                metrics.request_bytes.inc_by(4 + size as u64);
                match handler::dispatch(ctx, body).await {
                    Outcome::Respond(bytes) => {
                        metrics.response_bytes.inc_by(bytes.len() as u64);
                        stream.write_all(&bytes).await?
                    }
                    Outcome::NoResponse => {}
                    Outcome::Close(reason) => {
                        tracing::warn!(%peer, %reason, "closing connection");
                        return Ok(());
                    }
                }
                if shard.cluster.is_shutting_down() {
                    return Ok(());
                }
                continue;
            }
            Ok(Some(size)) => {
                // Grow toward the announced size as bytes arrive, never ahead
                // of them by more than 1 MiB: an announced 100 MiB frame that
                // never comes costs nothing.
                buf.reserve((4 + size - buf.len()).min(1 << 20));
            }
            Ok(None) => {}
        }
        let len = buf.len();
        let room = (buf.capacity() - len).max(READ_CHUNK);
        buf.resize(len + room, 0);
        let n = stream.read(&mut buf[len..]).await?;
        buf.truncate(len + n);
        if n == 0 {
            return Ok(());
        }
    }
}
