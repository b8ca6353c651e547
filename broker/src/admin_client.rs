//! A minimal client of the broker's admin HTTP API, for the CLI
//! (`floe tier status`, `floe topic recover`): HTTP/1.0 over a plain TCP
//! socket, so a streamed answer arrives line by line until the server
//! closes the connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error(
        "cannot reach the admin API at {addr} (is `floe serve` running with --admin-addr {addr}?)"
    )]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("admin API at {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("admin API at {addr} answered an unreadable status line {line:?}")]
    BadStatus { addr: String, line: String },
}

/// A response whose body is still being read.
pub struct Response {
    pub status: u16,
    pub body: BufReader<TcpStream>,
}

impl Response {
    /// The rest of the body as text.
    pub fn text(mut self) -> std::io::Result<String> {
        let mut out = String::new();
        self.body.read_to_string(&mut out)?;
        Ok(out)
    }
}

/// Sends `method path` to the admin API at `addr` and reads the status line
/// and headers; the body is left to read.
pub fn call(addr: &str, method: &str, path: &str) -> Result<Response, AdminClientError> {
    let stream = TcpStream::connect(addr).map_err(|source| AdminClientError::Connect {
        addr: addr.to_string(),
        source,
    })?;
    let io = |source| AdminClientError::Io {
        addr: addr.to_string(),
        source,
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .map_err(io)?;
    let mut writer = stream.try_clone().map_err(io)?;
    write!(
        writer,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(io)?;
    let mut body = BufReader::new(stream);
    let mut line = String::new();
    body.read_line(&mut line).map_err(io)?;
    let status = line
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| AdminClientError::BadStatus {
            addr: addr.to_string(),
            line: line.trim_end().to_string(),
        })?;
    loop {
        line.clear();
        if body.read_line(&mut line).map_err(io)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    Ok(Response { status, body })
}
