//! Reads length-prefixed Kafka frames from a socket with few copies and no
//! memory spent ahead of the bytes that arrived.
//!
//! Small frames are read through one reusable buffer (initialized once) and
//! copied out; a frame larger than that is read into a second buffer, filled
//! straight from the socket and handed on without a copy, grown as its
//! bytes arrive (at most [`GROW_STEP`] ahead), so an announced 100 MiB frame
//! that never comes costs nothing. Every buffer byte is zeroed at most once.

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt};
use protocol::header::{FrameError, frame_size};

/// The reusable buffer: frames up to this size (with their prefix) are
/// copied out of it.
pub const SMALL_BUFFER: usize = 64 * 1024;
/// How far a large frame's buffer grows ahead of the bytes that arrived.
pub const GROW_STEP: usize = 1 << 20;

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameReadError {
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct FrameReader<R> {
    reader: R,
    max: usize,
    /// Always initialized to its full length.
    data: Vec<u8>,
    /// Unconsumed bytes are `data[start..end]`.
    start: usize,
    end: usize,
    /// Frames that do not fit `data`.
    large: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames larger than `max` bytes are refused.
    pub fn new(reader: R, max: usize) -> FrameReader<R> {
        FrameReader {
            reader,
            max,
            data: vec![0; SMALL_BUFFER],
            start: 0,
            end: 0,
            large: BytesMut::new(),
        }
    }

    /// The next frame's body (without its size prefix); `None` when the peer
    /// closed the connection (a frame cut short is dropped).
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, FrameReadError> {
        loop {
            let available = &self.data[self.start..self.end];
            if let Some(size) = frame_size(available, self.max)? {
                if available.len() >= 4 + size {
                    let body = Bytes::copy_from_slice(&available[4..4 + size]);
                    self.start += 4 + size;
                    return Ok(Some(body));
                }
                if 4 + size > self.data.len() {
                    return self.read_large(size).await;
                }
            }
            if self.start > 0 {
                // Move what remains to the front for the rest of the frame.
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = self.reader.read(&mut self.data[self.end..]).await?;
            if n == 0 {
                return Ok(None);
            }
            self.end += n;
        }
    }

    /// A frame of `size` bytes that does not fit the reusable buffer, whose
    /// prefix (and maybe more) is at `data[start..end]`. It is read into
    /// `large`, whose allocation is reused once the previous large frame
    /// handed on has been dropped (a fresh allocation per frame costs a page
    /// fault per 4 KiB).
    async fn read_large(&mut self, size: usize) -> Result<Option<Bytes>, FrameReadError> {
        let already = &self.data[self.start + 4..self.end];
        self.large.clear();
        self.large.reserve(size.min(GROW_STEP));
        self.large.extend_from_slice(already);
        let mut filled = already.len();
        self.start = 0;
        self.end = 0;
        while filled < size {
            if self.large.len() == filled {
                self.large.resize(size.min(filled + GROW_STEP), 0);
            }
            let n = self.reader.read(&mut self.large[filled..]).await?;
            if n == 0 {
                return Ok(None);
            }
            filled += n;
        }
        Ok(Some(self.large.split_to(size).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// Serves its bytes a few at a time, as a socket might.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step).min(self.bytes.len() - self.at);
            let at = self.at;
            buf[..n].copy_from_slice(&self.bytes[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    fn read_all(bytes: Vec<u8>, step: usize, max: usize) -> Result<Vec<Bytes>, FrameReadError> {
        let mut reader = FrameReader::new(Trickle { bytes, at: 0, step }, max);
        futures_lite::future::block_on(async {
            let mut frames = Vec::new();
            while let Some(f) = reader.next_frame().await? {
                frames.push(f);
            }
            Ok(frames)
        })
    }

    #[test]
    fn frames_of_every_size_survive_any_split() {
        let bodies: Vec<Vec<u8>> = [
            0,
            1,
            100,
            SMALL_BUFFER - 4,
            SMALL_BUFFER - 3,
            3 * GROW_STEP + 7,
            5,
        ]
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
        .collect();
        let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        for step in [1, 3, 4096, SMALL_BUFFER + 1, usize::MAX] {
            if step == 1 {
                // Byte by byte only over the small frames (the large one
                // would take minutes).
                let small: Vec<u8> = bodies[..3].iter().flat_map(|b| frame(b)).collect();
                let got = read_all(small, step, usize::MAX).unwrap();
                assert_eq!(got, bodies[..3].to_vec(), "step {step}");
                continue;
            }
            let got = read_all(stream.clone(), step, usize::MAX).unwrap();
            assert_eq!(got, bodies, "step {step}");
        }
    }

    #[test]
    fn a_frame_cut_short_is_dropped() {
        let mut stream = frame(b"whole");
        stream.extend_from_slice(&frame(&[7; 200_000])[..100_000]);
        let got = read_all(stream, 4096, usize::MAX).unwrap();
        assert_eq!(got, vec![Bytes::from_static(b"whole")]);
    }

    #[test]
    fn oversized_and_negative_sizes_are_refused() {
        let err = read_all(frame(&[0; 2000]), 4096, 1000).unwrap_err();
        assert!(matches!(
            err,
            FrameReadError::Frame(FrameError::TooLarge { .. })
        ));
        let err = read_all((-5i32).to_be_bytes().to_vec(), 4096, 1000).unwrap_err();
        assert!(matches!(
            err,
            FrameReadError::Frame(FrameError::Negative { .. })
        ));
    }

    #[test]
    fn an_announced_frame_that_never_comes_ends_cleanly() {
        let max = 100 << 20;
        let mut stream = (max as i32).to_be_bytes().to_vec();
        stream.extend_from_slice(&[1; 10]);
        let got = read_all(stream, 4096, max).unwrap();
        assert!(got.is_empty());
    }
}
