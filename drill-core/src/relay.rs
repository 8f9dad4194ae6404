//! The frame format of the shell relay (issue 14, docs/API.md "Shell relay").
//!
//! After `GET /v1/drills/{id}/hosts/{host}/shell` is upgraded (`Upgrade: drill-pty/1`,
//! 101), both directions carry frames: one type byte, a big-endian u32 payload length,
//! then the payload. Pure: encoding into a buffer and decoding from one, no I/O.
//!
//! | type | name | direction | payload |
//! |---|---|---|---|
//! | 0 | `Stdin` | client → daemon | bytes for the command's stdin (the pty's master) |
//! | 1 | `Stdout` | daemon → client | bytes the command wrote (stdout, and the pty's output) |
//! | 2 | `Stderr` | daemon → client | bytes the command wrote to stderr (pipes only, `tty=0`) |
//! | 3 | `Resize` | client → daemon | rows u16, cols u16 (big-endian) |
//! | 4 | `Exit` | daemon → client | exit code u8 (128+N for signal N; 137 when the drill stopped) |
//! | 5 | `StdinEof` | client → daemon | empty: the client's stdin ended |

/// The `Upgrade` token of the relay.
pub const PROTOCOL: &str = "drill-pty/1";
/// The largest payload either side sends or accepts.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Type byte and length.
pub const HEADER: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdin(Vec<u8>),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Resize { rows: u16, cols: u16 },
    Exit(u8),
    StdinEof,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("frame of {0} bytes is larger than {MAX_PAYLOAD}")]
    TooLarge(usize),
    #[error("frame type {kind} needs a payload of {want} bytes, got {got}")]
    BadLength { kind: u8, want: usize, got: usize },
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Stdin(_) => 0,
            Frame::Stdout(_) => 1,
            Frame::Stderr(_) => 2,
            Frame::Resize { .. } => 3,
            Frame::Exit(_) => 4,
            Frame::StdinEof => 5,
        }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let payload: std::borrow::Cow<'_, [u8]> = match self {
            Frame::Stdin(b) | Frame::Stdout(b) | Frame::Stderr(b) => b.as_slice().into(),
            Frame::Resize { rows, cols } => [rows.to_be_bytes(), cols.to_be_bytes()].concat().into(),
            Frame::Exit(c) => vec![*c].into(),
            Frame::StdinEof => Vec::new().into(),
        };
        out.push(self.kind());
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&payload);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decodes one frame from the front of `buf`: `Ok(None)` when more bytes are
    /// needed, else the frame and the number of bytes it took.
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        if buf.len() < HEADER {
            return Ok(None);
        }
        let kind = buf[0];
        if kind > 5 {
            return Err(FrameError::UnknownType(kind));
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        if buf.len() < HEADER + len {
            return Ok(None);
        }
        let p = &buf[HEADER..HEADER + len];
        let exact = |want: usize| if len == want { Ok(()) } else { Err(FrameError::BadLength { kind, want, got: len }) };
        let f = match kind {
            0 => Frame::Stdin(p.to_vec()),
            1 => Frame::Stdout(p.to_vec()),
            2 => Frame::Stderr(p.to_vec()),
            3 => {
                exact(4)?;
                Frame::Resize { rows: u16::from_be_bytes([p[0], p[1]]), cols: u16::from_be_bytes([p[2], p[3]]) }
            }
            4 => {
                exact(1)?;
                Frame::Exit(p[0])
            }
            _ => {
                exact(0)?;
                Frame::StdinEof
            }
        };
        Ok(Some((f, HEADER + len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_kind() {
        let all = [Frame::Stdin(b"ls\n".to_vec()), Frame::Stdout(vec![0, 255, 10]), Frame::Stderr(Vec::new()), Frame::Resize { rows: 40, cols: 132 }, Frame::Exit(137), Frame::StdinEof];
        let mut buf = Vec::new();
        for f in &all {
            f.encode(&mut buf);
        }
        let mut got = Vec::new();
        let mut at = 0;
        while let Some((f, n)) = Frame::decode(&buf[at..]).unwrap() {
            got.push(f);
            at += n;
        }
        assert_eq!(got, all);
        assert_eq!(at, buf.len());
    }

    #[test]
    fn partial_input_waits() {
        let b = Frame::Stdout(b"hello".to_vec()).to_bytes();
        for cut in 0..b.len() {
            assert_eq!(Frame::decode(&b[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(Frame::resize_bytes_for_test(), vec![3, 0, 0, 0, 4, 0, 24, 0, 80]);
    }

    #[test]
    fn bad_frames_are_refused() {
        assert_eq!(Frame::decode(&[9, 0, 0, 0, 0]), Err(FrameError::UnknownType(9)));
        assert_eq!(Frame::decode(&[1, 0xff, 0xff, 0xff, 0xff]), Err(FrameError::TooLarge(u32::MAX as usize)));
        assert_eq!(Frame::decode(&[3, 0, 0, 0, 1, 7]), Err(FrameError::BadLength { kind: 3, want: 4, got: 1 }));
        assert_eq!(Frame::decode(&[4, 0, 0, 0, 0]), Err(FrameError::BadLength { kind: 4, want: 1, got: 0 }));
    }

    impl Frame {
        fn resize_bytes_for_test() -> Vec<u8> {
            Frame::Resize { rows: 24, cols: 80 }.to_bytes()
        }
    }
}
