//! A small blocking Kafka client for `floe topic ...`: it speaks the same
//! protocol as any client, through the same generated codec.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use protocol::{Message, RequestHeader};

/// Why an admin command could not talk to the broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot connect to broker {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("i/o error talking to the broker")]
    Io(#[from] std::io::Error),
    #[error("cannot encode request")]
    Encode(#[from] protocol::EncodeError),
    #[error("cannot decode the broker's response")]
    Decode(#[from] protocol::DecodeError),
    #[error("response frame of {size} bytes is too large")]
    FrameTooLarge { size: usize },
    #[error("response correlation id {got} does not match request {expected}")]
    Correlation { expected: i32, got: i32 },
}

/// One connection to a broker.
pub struct Client {
    stream: TcpStream,
    next_correlation: i32,
}

impl Client {
    pub fn connect(addr: &str) -> Result<Client, ClientError> {
        let err = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let sock = addr
            .to_socket_addrs()
            .map_err(err)?
            .next()
            .ok_or_else(|| err(std::io::Error::other("address resolves to nothing")))?;
        let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(10)).map_err(err)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            next_correlation: 1,
        })
    }

    /// Sends `req` at `version` and waits for its response.
    pub fn call<Req: Message, Resp: Message>(
        &mut self,
        req: &Req,
        version: i16,
    ) -> Result<Resp, ClientError> {
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader {
            api_key: Req::API_KEY,
            api_version: version,
            correlation_id,
            client_id: Some("floe-cli".into()),
        };
        let frame = protocol::header::encode_request(&header, req)?;
        self.stream.write_all(&frame)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size).max(0) as usize;
        if size > 256 << 20 {
            return Err(ClientError::FrameTooLarge { size });
        }
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body)?;
        let (got, resp) = protocol::header::decode_response::<Resp>(Bytes::from(body), version)?;
        if got != correlation_id {
            return Err(ClientError::Correlation {
                expected: correlation_id,
                got,
            });
        }
        Ok(resp)
    }
}
