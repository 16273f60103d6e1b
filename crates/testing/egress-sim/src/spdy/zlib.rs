//! SPDY/3 header-block compression: one zlib stream per direction for the whole connection,
//! primed with the protocol's preset dictionary and sync-flushed after every header block
//! (SPDY/3 draft, "Compression"). Inflation is bounded, so a small compressed block cannot
//! expand into an unbounded allocation (a zlib bomb).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::SpdyError;

/// The header names of the SPDY/3 dictionary, each stored as a 4-byte big-endian length
/// and the name.
const WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail: status codes, reason phrases, dates and common values, raw.
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
    "501 Not Implemented503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 preset dictionary.
pub fn dictionary() -> Vec<u8> {
    let mut d = Vec::with_capacity(1500);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
}

/// Inflates the peer's header blocks.
#[derive(Debug)]
pub struct Inflater {
    z: Decompress,
    dict: Vec<u8>,
    /// The most a single block may expand to.
    limit: usize,
}

impl Inflater {
    /// An inflater refusing blocks that expand beyond `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            z: Decompress::new(true),
            dict: dictionary(),
            limit,
        }
    }

    /// Inflates one header block (the stream's state carries over to the next one).
    pub fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(self.limit + 1);
        let mut pos = 0;
        loop {
            let before = self.z.total_in();
            let res = self
                .z
                .decompress_vec(&block[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.z.total_in() - before) as usize;
            match res {
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z.set_dictionary(&self.dict).map_err(|e| {
                        SpdyError::Compression(format!(
                            "the header block's zlib dictionary is not SPDY/3's: {e}"
                        ))
                    })?;
                }
                Err(e) => {
                    return Err(SpdyError::Compression(format!(
                        "the header block is not valid zlib: {e}"
                    )));
                }
                Ok(Status::StreamEnd) => {
                    return Err(SpdyError::Compression(
                        "the header block ended the connection's zlib stream".into(),
                    ));
                }
                Ok(_) => {
                    if out.len() > self.limit {
                        return Err(SpdyError::TooLarge(format!(
                            "a header block inflates to more than {} bytes",
                            self.limit
                        )));
                    }
                    // Done when the input is used up and the output did not fill up (no
                    // pending bytes inside the inflater).
                    if pos == block.len() && out.len() < out.capacity() {
                        return Ok(out);
                    }
                }
            }
        }
    }
}

/// Deflates our header blocks.
#[derive(Debug)]
pub struct Deflater {
    z: Compress,
}

impl Deflater {
    /// A deflater primed with the dictionary.
    pub fn new() -> Result<Self, SpdyError> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(&dictionary())
            .map_err(|e| SpdyError::Compression(format!("priming the header deflater: {e}")))?;
        Ok(Self { z })
    }

    /// Deflates one block and sync-flushes it, so the peer can inflate it whole.
    pub fn deflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&block[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(format!("deflating a header block: {e}")))?;
            pos += (self.z.total_in() - before) as usize;
            // A sync flush is complete when it leaves room in the output.
            if pos == block.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_dictionary_is_spdy3s() {
        // The dictionary ID kubectl 1.32 puts in its first header block (78 F9 E3 C6 A7 C2).
        let d = dictionary();
        let mut z = Decompress::new(true);
        let err = z
            .decompress_vec(
                &[0x78, 0xF9, 0xE3, 0xC6, 0xA7, 0xC2],
                &mut Vec::with_capacity(8),
                FlushDecompress::Sync,
            )
            .unwrap_err();
        assert_eq!(err.needs_dictionary(), Some(0xE3C6_A7C2));
        assert_eq!(z.set_dictionary(&d).unwrap(), 0xE3C6_A7C2);
    }

    #[test]
    fn blocks_round_trip_sharing_one_context() {
        let (mut d, mut i) = (Deflater::new().unwrap(), Inflater::new(1024));
        for block in [&b"first block"[..], b"", b"first block again", &[7u8; 500]] {
            let z = d.deflate(block).unwrap();
            assert_eq!(i.inflate(&z).unwrap(), block);
        }
    }

    #[test]
    fn a_zlib_bomb_is_refused() {
        let mut d = Deflater::new().unwrap();
        let z = d.deflate(&vec![0u8; 1 << 20]).unwrap();
        assert!(z.len() < 4096, "{}", z.len());
        let err = Inflater::new(64 * 1024).inflate(&z).unwrap_err();
        assert!(
            matches!(&err, SpdyError::TooLarge(m) if m.contains("more than 65536 bytes")),
            "{err}"
        );
    }

    #[test]
    fn garbage_and_foreign_dictionaries_are_refused() {
        let err = Inflater::new(1024).inflate(b"not zlib at all").unwrap_err();
        assert!(err.to_string().contains("not valid zlib"), "{err}");
        let mut other = Compress::new(Compression::default(), true);
        other.set_dictionary(b"some other dictionary").unwrap();
        let mut z = Vec::with_capacity(256);
        other
            .compress_vec(b"x", &mut z, FlushCompress::Sync)
            .unwrap();
        let err = Inflater::new(1024).inflate(&z).unwrap_err();
        assert!(err.to_string().contains("dictionary"), "{err}");
    }
}
