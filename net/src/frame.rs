//! Kafka framing: a 4-byte big-endian signed size, then that many bytes.
//!
//! The size is checked against `socket.request.max.bytes` before any buffer for the body
//! exists, and the body buffer is only touched as bytes arrive, so a peer that declares a huge
//! frame and sends nothing costs us a reservation, not resident memory.

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncReadExt};
use std::io;
use thiserror::Error;

/// Bytes in the size prefix of every Kafka frame.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// How much of the body buffer is made readable (and zeroed) per read, so memory is committed
/// in step with what the peer actually sends.
const BODY_READ_CHUNK_BYTES: usize = 256 * 1024;

/// A frame that cannot be read.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The size prefix is negative or above the configured limit.
    #[error("frame size {size} is outside 0..={limit} (socket.request.max.bytes)")]
    SizeOutOfRange {
        /// The declared size.
        size: i32,
        /// The configured `socket.request.max.bytes`.
        limit: usize,
    },
    /// The peer closed the connection inside a frame.
    #[error("connection closed mid-frame: got {received} of {expected} bytes")]
    Truncated {
        /// Bytes the frame (or its size prefix) needed.
        expected: usize,
        /// Bytes that arrived before end of stream.
        received: usize,
    },
    /// The socket failed.
    #[error("i/o error reading frame: {0}")]
    Io(#[from] io::Error),
}

/// Checks a declared frame size against the limit; the only place a size becomes trusted.
pub fn check_frame_size(size: i32, limit: usize) -> Result<usize, FrameError> {
    match usize::try_from(size) {
        Ok(len) if len <= limit => Ok(len),
        _ => Err(FrameError::SizeOutOfRange { size, limit }),
    }
}

/// Reads the size prefix of the next frame. `Ok(None)` means the peer closed the connection
/// cleanly between frames.
pub async fn read_frame_len<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Option<usize>, FrameError> {
    let mut prefix = [0u8; FRAME_PREFIX_BYTES];
    let mut filled = 0;
    while filled < FRAME_PREFIX_BYTES {
        let n = read_retrying(reader, &mut prefix[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                expected: FRAME_PREFIX_BYTES,
                received: filled,
            });
        }
        filled += n;
    }
    check_frame_size(i32::from_be_bytes(prefix), limit).map(Some)
}

/// Reads a frame body of `len` bytes, already checked by [`read_frame_len`].
pub async fn read_frame_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
) -> Result<Bytes, FrameError> {
    let mut body: Vec<u8> = Vec::with_capacity(len);
    while body.len() < len {
        let filled = body.len();
        body.resize(len.min(filled + BODY_READ_CHUNK_BYTES), 0);
        let n = read_retrying(reader, &mut body[filled..]).await?;
        body.truncate(filled + n);
        if n == 0 {
            return Err(FrameError::Truncated {
                expected: len,
                received: filled,
            });
        }
    }
    Ok(Bytes::from(body))
}

/// Reads one whole frame body. `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Option<Bytes>, FrameError> {
    match read_frame_len(reader, limit).await? {
        Some(len) => read_frame_body(reader, len).await.map(Some),
        None => Ok(None),
    }
}

/// Prepends the size prefix to `body`; for callers that build small frames in memory.
pub fn encode_frame(body: &[u8]) -> Result<Bytes, FrameTooLarge> {
    let size = i32::try_from(body.len()).map_err(|_| FrameTooLarge { len: body.len() })?;
    let mut out = Vec::with_capacity(FRAME_PREFIX_BYTES + body.len());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(body);
    Ok(Bytes::from(out))
}

/// A frame body longer than the 32-bit signed size prefix can state.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("frame body of {len} bytes does not fit a 32-bit size prefix")]
pub struct FrameTooLarge {
    /// The body length.
    pub len: usize,
}

async fn read_retrying<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf).await {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alloc::allocated_during;
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;

    fn framed(body: &[u8]) -> Vec<u8> {
        encode_frame(body).expect("small frame").to_vec()
    }

    #[test]
    fn reads_consecutive_frames_then_clean_eof() {
        let mut wire = framed(b"hello");
        wire.extend(framed(b""));
        wire.extend(framed(&[7u8; 1000]));
        let mut r = Cursor::new(wire);
        block_on(async {
            assert_eq!(
                read_frame(&mut r, 1 << 20).await.unwrap().unwrap(),
                &b"hello"[..]
            );
            assert!(read_frame(&mut r, 1 << 20)
                .await
                .unwrap()
                .unwrap()
                .is_empty());
            assert_eq!(
                read_frame(&mut r, 1 << 20).await.unwrap().unwrap(),
                vec![7u8; 1000]
            );
            assert!(read_frame(&mut r, 1 << 20).await.unwrap().is_none());
        });
    }

    #[test]
    fn frame_at_exact_limit_is_accepted_one_over_is_not() {
        let mut r = Cursor::new(framed(&[1u8; 64]));
        let got = block_on(read_frame(&mut r, 64)).unwrap().unwrap();
        assert_eq!(got.len(), 64);
        let mut r = Cursor::new(framed(&[1u8; 65]));
        match block_on(read_frame(&mut r, 64)) {
            Err(FrameError::SizeOutOfRange {
                size: 65,
                limit: 64,
            }) => {}
            other => panic!("expected SizeOutOfRange, got {other:?}"),
        }
    }

    #[test]
    fn huge_and_negative_sizes_are_refused_without_allocating_them() {
        for size in [i32::MAX, 0x7fff_0000, -1, i32::MIN] {
            let mut r = Cursor::new(size.to_be_bytes().to_vec());
            let (result, bytes) =
                allocated_during(|| block_on(read_frame(&mut r, DEFAULT_LIMIT_FOR_TEST)));
            match result {
                Err(FrameError::SizeOutOfRange { size: s, limit }) => {
                    assert_eq!(s, size);
                    assert_eq!(limit, DEFAULT_LIMIT_FOR_TEST);
                }
                other => panic!("expected SizeOutOfRange for {size}, got {other:?}"),
            }
            assert!(bytes < 4096, "refusing size {size} allocated {bytes} bytes");
        }
    }

    const DEFAULT_LIMIT_FOR_TEST: usize = crate::config::DEFAULT_SOCKET_REQUEST_MAX_BYTES;

    #[test]
    fn eof_inside_prefix_or_body_is_truncation() {
        let mut r = Cursor::new(vec![0u8, 0]);
        match block_on(read_frame(&mut r, 1024)) {
            Err(FrameError::Truncated {
                expected: 4,
                received: 2,
            }) => {}
            other => panic!("expected truncated prefix, got {other:?}"),
        }
        let mut wire = 10i32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"abc");
        let mut r = Cursor::new(wire);
        match block_on(read_frame(&mut r, 1024)) {
            Err(FrameError::Truncated {
                expected: 10,
                received: 3,
            }) => {}
            other => panic!("expected truncated body, got {other:?}"),
        }
    }

    #[test]
    fn truncated_large_frame_reports_declared_and_received_lengths() {
        let mut wire = (50i32 << 20).to_be_bytes().to_vec();
        wire.extend_from_slice(&[9u8; 10]);
        let mut r = Cursor::new(wire);
        match block_on(read_frame(&mut r, 100 << 20)) {
            Err(FrameError::Truncated {
                expected,
                received: 10,
            }) => assert_eq!(expected, 50 << 20),
            other => panic!("expected truncated body, got {other:?}"),
        }
    }

    #[test]
    fn encode_frame_prefixes_big_endian_size() {
        let f = encode_frame(&[1, 2, 3]).unwrap();
        assert_eq!(&f[..], &[0, 0, 0, 3, 1, 2, 3]);
    }
}
