//! One blocking Kafka connection, split into a writing and a reading half so
//! that several requests can be in flight (Kafka answers a connection's
//! requests in order).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::{Bytes, BytesMut};
use protocol::{Message, RequestHeader};

const CLIENT_ID: &str = "floe-load";
/// Largest response frame accepted (a Fetch is bounded by its `max_bytes`).
const MAX_RESPONSE: usize = 256 << 20;

/// Resolves `HOST:PORT` to one socket address.
pub fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("cannot resolve broker address {addr}"))?
        .next()
        .with_context(|| format!("broker address {addr} resolves to nothing"))
}

/// A connection used one request at a time (setup calls).
pub struct Connection {
    writer: RequestWriter,
    reader: ResponseReader,
}

impl Connection {
    pub fn connect(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .with_context(|| format!("cannot connect to broker {addr}"))?;
        stream.set_nodelay(true)?;
        let read_half = stream.try_clone()?;
        Ok(Connection {
            writer: RequestWriter {
                stream,
                next_correlation: 1,
            },
            reader: ResponseReader {
                stream: read_half,
                buf: BytesMut::new(),
            },
        })
    }

    /// Sends `req` at `version` and waits for its response.
    pub fn call<Req: Message, Resp: Message>(
        &mut self,
        req: &Req,
        version: i16,
    ) -> anyhow::Result<Resp> {
        let correlation_id = self.writer.send(req, version)?;
        self.reader.receive(correlation_id, version)
    }

    /// The two halves, for a writer thread and a reader thread.
    pub fn split(self) -> (RequestWriter, ResponseReader) {
        (self.writer, self.reader)
    }
}

/// The sending half: frames requests and writes them.
pub struct RequestWriter {
    stream: TcpStream,
    next_correlation: i32,
}

impl RequestWriter {
    /// The correlation id the next request will carry.
    pub fn next_correlation(&self) -> i32 {
        self.next_correlation
    }

    /// Encodes and writes one request; returns its correlation id.
    pub fn send<M: Message>(&mut self, req: &M, version: i16) -> anyhow::Result<i32> {
        let correlation_id = self.next_correlation;
        let frame = encode(req, version, correlation_id)?;
        self.write_frame(&frame)?;
        Ok(correlation_id)
    }

    /// Writes a frame encoded by [`encode`] whose correlation id is
    /// [`next_correlation`](Self::next_correlation).
    pub fn write_frame(&mut self, frame: &[u8]) -> anyhow::Result<()> {
        self.stream
            .write_all(frame)
            .context("cannot write request to the broker")?;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        Ok(())
    }
}

/// Encodes a whole request frame.
pub fn encode<M: Message>(req: &M, version: i16, correlation_id: i32) -> anyhow::Result<Vec<u8>> {
    let header = RequestHeader {
        api_key: M::API_KEY,
        api_version: version,
        correlation_id,
        client_id: Some(CLIENT_ID.into()),
    };
    protocol::header::encode_request(&header, req)
        .with_context(|| format!("cannot encode api {} v{version}", M::API_KEY))
}

/// Where the correlation id sits in a frame from [`encode`]: after the size,
/// the api key and the version.
pub const CORRELATION_AT: usize = 8;

/// The receiving half: reads response frames, reusing one buffer.
pub struct ResponseReader {
    stream: TcpStream,
    buf: BytesMut,
}

impl ResponseReader {
    /// Reads the next response, which must answer `correlation_id`.
    pub fn receive<M: Message>(&mut self, correlation_id: i32, version: i16) -> anyhow::Result<M> {
        let frame = self.read_frame()?;
        let (got, resp) = protocol::header::decode_response::<M>(frame, version)
            .with_context(|| format!("cannot decode response to api {} v{version}", M::API_KEY))?;
        if got != correlation_id {
            bail!("response correlation id {got} does not answer request {correlation_id}");
        }
        Ok(resp)
    }

    fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .context("connection to the broker closed while waiting for a response")?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_RESPONSE)
            .with_context(|| format!("bad response frame size {size}"))?;
        // Reclaims the previous frame's allocation once its `Bytes` are gone.
        self.buf.clear();
        self.buf.resize(size, 0);
        self.stream
            .read_exact(&mut self.buf)
            .context("connection to the broker closed in the middle of a response")?;
        Ok(self.buf.split().freeze())
    }
}
