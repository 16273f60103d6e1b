//! SPDY/3.1 frames on the wire: an 8-byte header (control bit, version 3 and type, or the
//! stream ID for data; then 8 bits of flags and a 24-bit length) and the payload. Header
//! blocks (SYN_STREAM, SYN_REPLY, HEADERS) are a count and length-prefixed name/value pairs,
//! compressed (see `zlib`). Decoding checks every length against the limits before it
//! allocates, and every malformed frame gets an error naming what is wrong.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::SpdyError;
use super::zlib::{Deflater, Inflater};

const VERSION: u16 = 3;
const CONTROL: u32 = 0x8000_0000;
/// FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS.
pub const FLAG_FIN: u8 = 0x01;
/// UNIDIRECTIONAL on SYN_STREAM.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes used here.
pub const PROTOCOL_ERROR: u32 = 1;
/// The stream ID is not open.
pub const INVALID_STREAM: u32 = 2;
/// The stream was refused before any processing.
pub const REFUSED_STREAM: u32 = 3;
/// The stream is no longer needed.
pub const CANCEL: u32 = 5;

/// A header block's name/value pairs (names lower case; several values of one name are
/// NUL-separated in one value, as on the wire).
pub type Headers = Vec<(String, String)>;

/// The first value of `name` in `headers`.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.split('\0').next().unwrap_or(v))
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Opens a stream.
    SynStream {
        /// Its ID (odd: the client's).
        id: u32,
        /// FIN and UNIDIRECTIONAL.
        flags: u8,
        /// Its headers.
        headers: Headers,
    },
    /// Accepts a stream.
    SynReply {
        /// The stream.
        id: u32,
        /// FIN.
        flags: u8,
        /// Headers.
        headers: Headers,
    },
    /// Aborts a stream.
    RstStream {
        /// The stream.
        id: u32,
        /// Why.
        status: u32,
    },
    /// Settings (only counted: nothing here depends on them).
    Settings {
        /// How many entries.
        entries: u32,
    },
    /// A ping (answered by echoing the peer's).
    Ping {
        /// Its ID (odd from the client).
        id: u32,
    },
    /// The peer accepts no more streams.
    GoAway {
        /// The last stream it accepted.
        last_good: u32,
        /// Why.
        status: u32,
    },
    /// More headers on a stream.
    Headers {
        /// The stream.
        id: u32,
        /// FIN.
        flags: u8,
        /// Headers.
        headers: Headers,
    },
    /// Flow control credit.
    WindowUpdate {
        /// The stream (0: the session).
        id: u32,
        /// Bytes granted.
        delta: u32,
    },
    /// Payload.
    Data {
        /// The stream.
        id: u32,
        /// FIN.
        flags: u8,
        /// The bytes.
        data: Bytes,
    },
    /// A control frame of a type this implementation ignores (the spec says to).
    Unknown {
        /// Its type.
        kind: u16,
    },
}

/// What a decoder accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest frame payload (data or control).
    pub max_frame: usize,
    /// Most bytes a header block may inflate to.
    pub max_header_block: usize,
    /// Most name/value pairs in a block.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: 256 * 1024,
            max_header_block: 64 * 1024,
            max_headers: 64,
        }
    }
}

/// Reads frames from bytes, keeping the header inflater's state.
#[derive(Debug)]
pub struct Decoder {
    inflater: Inflater,
    limits: Limits,
}

impl Decoder {
    /// A decoder for one connection.
    pub fn new(limits: Limits) -> Self {
        Self {
            inflater: Inflater::new(limits.max_header_block),
            limits,
        }
    }

    /// Takes one whole frame off the front of `buf`, or `None` until one has arrived.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let flags = buf[4];
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if len > self.limits.max_frame {
            return Err(SpdyError::TooLarge(format!(
                "a frame of {len} bytes (at most {} are accepted)",
                self.limits.max_frame
            )));
        }
        if buf.len() < 8 + len {
            buf.reserve(8 + len - buf.len());
            return Ok(None);
        }
        buf.advance(8);
        let mut payload = buf.split_to(len).freeze();
        if word & CONTROL == 0 {
            let id = word & 0x7fff_ffff;
            if id == 0 {
                return Err(SpdyError::Protocol("a DATA frame on stream 0".into()));
            }
            return Ok(Some(Frame::Data {
                id,
                flags,
                data: payload,
            }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(SpdyError::Protocol(format!(
                "a control frame of SPDY version {version} (only 3 is spoken)"
            )));
        }
        self.control((word & 0xffff) as u16, flags, &mut payload)
            .map(Some)
    }

    fn control(&mut self, kind: u16, flags: u8, p: &mut Bytes) -> Result<Frame, SpdyError> {
        let need = |p: &Bytes, n: usize, what: &str| {
            if p.len() < n {
                Err(SpdyError::Protocol(format!(
                    "a {what} frame of {} bytes (it needs {n})",
                    p.len()
                )))
            } else {
                Ok(())
            }
        };
        Ok(match kind {
            SYN_STREAM => {
                need(p, 10, "SYN_STREAM")?;
                let id = stream_id(p.get_u32(), "SYN_STREAM")?;
                p.advance(6); // associated stream, priority, slot: unused here
                let headers = self.headers(p)?;
                Frame::SynStream { id, flags, headers }
            }
            SYN_REPLY | HEADERS => {
                need(p, 4, "SYN_REPLY/HEADERS")?;
                let id = stream_id(p.get_u32(), "SYN_REPLY/HEADERS")?;
                let headers = self.headers(p)?;
                if kind == SYN_REPLY {
                    Frame::SynReply { id, flags, headers }
                } else {
                    Frame::Headers { id, flags, headers }
                }
            }
            RST_STREAM => {
                need(p, 8, "RST_STREAM")?;
                let id = stream_id(p.get_u32(), "RST_STREAM")?;
                Frame::RstStream {
                    id,
                    status: p.get_u32(),
                }
            }
            SETTINGS => {
                need(p, 4, "SETTINGS")?;
                let entries = p.get_u32();
                if entries as usize > p.len() / 8 {
                    return Err(SpdyError::Protocol(format!(
                        "a SETTINGS frame announcing {entries} entries in {} bytes",
                        p.len()
                    )));
                }
                Frame::Settings { entries }
            }
            PING => {
                need(p, 4, "PING")?;
                Frame::Ping { id: p.get_u32() }
            }
            GOAWAY => {
                need(p, 8, "GOAWAY")?;
                Frame::GoAway {
                    last_good: p.get_u32() & 0x7fff_ffff,
                    status: p.get_u32(),
                }
            }
            WINDOW_UPDATE => {
                need(p, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    id: p.get_u32() & 0x7fff_ffff,
                    delta: p.get_u32() & 0x7fff_ffff,
                }
            }
            kind => Frame::Unknown { kind },
        })
    }

    /// Inflates and parses a header block (always, so the inflater stays in step with the
    /// peer's deflater even for frames that are then ignored).
    fn headers(&mut self, p: &Bytes) -> Result<Headers, SpdyError> {
        let block = self.inflater.inflate(p)?;
        parse_block(&block, self.limits.max_headers)
    }
}

fn stream_id(word: u32, what: &str) -> Result<u32, SpdyError> {
    match word & 0x7fff_ffff {
        0 => Err(SpdyError::Protocol(format!("a {what} frame for stream 0"))),
        id => Ok(id),
    }
}

/// Parses an inflated header block.
pub fn parse_block(mut b: &[u8], max_headers: usize) -> Result<Headers, SpdyError> {
    let bad = |what: &str| SpdyError::Protocol(format!("a header block {what}"));
    let take = |b: &mut &[u8]| -> Result<String, SpdyError> {
        if b.len() < 4 {
            return Err(bad("is truncated"));
        }
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if b.len() - 4 < n {
            return Err(bad(&format!("has a {n}-byte string past its end")));
        }
        let s = String::from_utf8(b[4..4 + n].to_vec()).map_err(|_| bad("has non-UTF-8 text"))?;
        *b = &b[4 + n..];
        Ok(s)
    };
    if b.len() < 4 {
        return Err(bad("is truncated"));
    }
    let count = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    b = &b[4..];
    if count > max_headers {
        return Err(SpdyError::TooLarge(format!(
            "a header block of {count} headers (at most {max_headers} are accepted)"
        )));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take(&mut b)?;
        let value = take(&mut b)?;
        if name.is_empty() || name.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(bad(&format!(
                "has the header name {name:?} (names are non-empty lower case)"
            )));
        }
        if out.iter().any(|(k, _)| *k == name) {
            return Err(bad(&format!("names {name:?} twice")));
        }
        out.push((name, value));
    }
    if !b.is_empty() {
        return Err(bad(&format!("has {} bytes after its last header", b.len())));
    }
    Ok(out)
}

/// Serializes a header block (uncompressed).
pub fn write_block(headers: &Headers) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (k, v) in headers {
        for s in [k.to_ascii_lowercase(), v.clone()] {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// Writes frames, keeping the header deflater's state.
#[derive(Debug)]
pub struct Encoder {
    deflater: Deflater,
}

impl Encoder {
    /// An encoder for one connection.
    pub fn new() -> Result<Self, SpdyError> {
        Ok(Self {
            deflater: Deflater::new()?,
        })
    }

    /// Appends `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
        let control = |out: &mut BytesMut, kind: u16, flags: u8, len: usize| {
            out.put_u32(CONTROL | (u32::from(VERSION) << 16) | u32::from(kind));
            out.put_u32((u32::from(flags) << 24) | (len as u32 & 0x00ff_ffff));
        };
        match frame {
            Frame::Data { id, flags, data } => {
                if data.len() > 0x00ff_ffff {
                    return Err(SpdyError::TooLarge(format!(
                        "a DATA frame of {} bytes",
                        data.len()
                    )));
                }
                out.put_u32(id & 0x7fff_ffff);
                out.put_u32((u32::from(*flags) << 24) | data.len() as u32);
                out.extend_from_slice(data);
            }
            Frame::SynStream { id, flags, headers } => {
                let block = self.deflater.deflate(&write_block(headers))?;
                control(out, SYN_STREAM, *flags, 10 + block.len());
                out.put_u32(*id);
                out.put_u32(0);
                out.put_u16(0);
                out.extend_from_slice(&block);
            }
            Frame::SynReply { id, flags, headers } | Frame::Headers { id, flags, headers } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                let block = self.deflater.deflate(&write_block(headers))?;
                control(out, kind, *flags, 4 + block.len());
                out.put_u32(*id);
                out.extend_from_slice(&block);
            }
            Frame::RstStream { id, status } => {
                control(out, RST_STREAM, 0, 8);
                out.put_u32(*id);
                out.put_u32(*status);
            }
            Frame::Settings { .. } => {
                control(out, SETTINGS, 0, 4);
                out.put_u32(0);
            }
            Frame::Ping { id } => {
                control(out, PING, 0, 4);
                out.put_u32(*id);
            }
            Frame::GoAway { last_good, status } => {
                control(out, GOAWAY, 0, 8);
                out.put_u32(*last_good);
                out.put_u32(*status);
            }
            Frame::WindowUpdate { id, delta } => {
                control(out, WINDOW_UPDATE, 0, 8);
                out.put_u32(*id);
                out.put_u32(*delta);
            }
            Frame::Unknown { kind } => {
                return Err(SpdyError::Protocol(format!(
                    "cannot send a frame of unknown type {kind}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn decode_all(d: &mut Decoder, bytes: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut buf).unwrap() {
            out.push(f);
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn kubectls_streams_decode() {
        // The first two SYN_STREAMs kubectl 1.32's port-forward sent (the error streams of
        // two concurrent connections), one zlib context across both.
        let wire = hex("80 03 00 01 00 00 00 40 00 00 00 01 00 00 00 00 00 00 \
             78 F9 E3 C6 A7 C2 02 25 3A 48 F9 5B 04 4A AB AC C6 66 06 96 C6 0C 0C 0C 9C 45 90 08 \
             CB 04 25 64 46 03 70 52 2C 29 4A 4D CC 85 96 36 AC A9 A0 B8 00 00 00 00 FF FF \
             80 03 00 01 00 00 00 1A 00 00 00 03 00 00 00 00 00 00 \
             82 EA 46 55 6C 88 5B 31 AA 35 00 00 00 00 FF FF");
        let frames = decode_all(&mut Decoder::new(Limits::default()), &wire);
        let [
            Frame::SynStream {
                id: 1,
                headers: first,
                ..
            },
            Frame::SynStream {
                id: 3,
                headers: second,
                ..
            },
        ] = frames.as_slice()
        else {
            panic!("{frames:?}");
        };
        for (hs, request) in [(first, "0"), (second, "1")] {
            assert_eq!(header(hs, "streamtype"), Some("error"));
            assert_eq!(header(hs, "requestid"), Some(request));
            assert!(header(hs, "port").unwrap().parse::<u16>().is_ok(), "{hs:?}");
        }
    }

    #[test]
    fn every_frame_round_trips_also_byte_by_byte() {
        let frames = vec![
            Frame::SynStream {
                id: 1,
                flags: FLAG_FIN,
                headers: h(&[("streamtype", "error"), ("port", "80")]),
            },
            Frame::SynReply {
                id: 1,
                flags: 0,
                headers: Vec::new(),
            },
            Frame::Headers {
                id: 3,
                flags: FLAG_FIN,
                headers: h(&[("a", "b\0c")]),
            },
            Frame::Data {
                id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"payload"),
            },
            Frame::RstStream {
                id: 5,
                status: CANCEL,
            },
            Frame::Settings { entries: 0 },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_good: 5,
                status: 0,
            },
            Frame::WindowUpdate { id: 3, delta: 4096 },
        ];
        let mut enc = Encoder::new().unwrap();
        let mut wire = BytesMut::new();
        for f in &frames {
            enc.encode(f, &mut wire).unwrap();
        }
        assert_eq!(
            decode_all(&mut Decoder::new(Limits::default()), &wire),
            frames
        );
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.extend_from_slice(&[*b]);
            if let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
        assert_eq!(header(&h(&[("a", "b\0c")]), "a"), Some("b"));
    }

    fn err(bytes: &[u8]) -> SpdyError {
        let mut buf = BytesMut::from(bytes);
        Decoder::new(Limits::default())
            .decode(&mut buf)
            .expect_err("a bad frame")
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let e = err(&hex("80 02 00 06 00 00 00 04 00 00 00 01"));
        assert!(e.to_string().contains("SPDY version 2"), "{e}");
        let e = err(&hex("00 00 00 00 00 00 00 01 41"));
        assert!(e.to_string().contains("DATA frame on stream 0"), "{e}");
        // The length is checked before anything is buffered.
        let e = err(&hex("00 00 00 01 00 ff ff ff"));
        assert!(
            matches!(&e, SpdyError::TooLarge(m) if m.contains("16777215 bytes")),
            "{e}"
        );
        let e = err(&hex("80 03 00 01 00 00 00 04 00 00 00 01"));
        assert!(e.to_string().contains("SYN_STREAM frame of 4 bytes"), "{e}");
        let e = err(&hex("80 03 00 03 00 00 00 08 00 00 00 00 00 00 00 01"));
        assert!(
            e.to_string().contains("RST_STREAM frame for stream 0"),
            "{e}"
        );
        let e = err(&hex("80 03 00 04 00 00 00 04 00 00 10 00"));
        assert!(e.to_string().contains("4096 entries"), "{e}");
        // Unknown control frames are skipped, as the spec says.
        let mut buf = BytesMut::from(&hex("80 03 00 0a 00 00 00 02 ab cd")[..]);
        assert_eq!(
            Decoder::new(Limits::default()).decode(&mut buf).unwrap(),
            Some(Frame::Unknown { kind: 10 })
        );
    }

    #[test]
    fn bad_header_blocks_say_what_is_wrong() {
        let block = |pairs: &[(&str, &str)]| write_block(&h(pairs));
        let e = parse_block(&block(&[("a", "1"), ("b", "2")]), 1).unwrap_err();
        assert!(e.to_string().contains("2 headers (at most 1"), "{e}");
        let mut upper = block(&[("ab", "1")]);
        upper[8] = b'A';
        let e = parse_block(&upper, 8).unwrap_err();
        assert!(e.to_string().contains("\"Ab\""), "{e}");
        let e = parse_block(&block(&[("a", "1"), ("a", "2")]), 8).unwrap_err();
        assert!(e.to_string().contains("names \"a\" twice"), "{e}");
        let mut long = block(&[("a", "1")]);
        long.push(0);
        assert!(
            parse_block(&long, 8)
                .unwrap_err()
                .to_string()
                .contains("1 bytes after")
        );
        let short = block(&[("a", "12345")]);
        let e = parse_block(&short[..short.len() - 2], 8).unwrap_err();
        assert!(e.to_string().contains("past its end"), "{e}");
        assert!(
            parse_block(&[0, 0], 8)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut valid = BytesMut::new();
        let mut enc = Encoder::new().unwrap();
        for id in [1, 3, 5] {
            let syn = Frame::SynStream {
                id,
                flags: 0,
                headers: h(&[("streamtype", "data"), ("port", "80")]),
            };
            enc.encode(&syn, &mut valid).unwrap();
            let data = Frame::Data {
                id,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"abc"),
            };
            enc.encode(&data, &mut valid).unwrap();
        }
        let mut rng = fastrand::Rng::with_seed(19);
        for round in 0..3000 {
            let input: Vec<u8> = if round % 2 == 0 {
                (0..rng.usize(0..200)).map(|_| rng.u8(..)).collect()
            } else {
                let mut v = valid.to_vec();
                for _ in 0..rng.usize(1..4) {
                    let i = rng.usize(..v.len());
                    v[i] = rng.u8(..);
                }
                v
            };
            let mut d = Decoder::new(Limits::default());
            let mut buf = BytesMut::from(&input[..]);
            // Errors are fine; a panic or an endless loop is not.
            for _ in 0..64 {
                match d.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
