//! A SPDY/3.1 server session over any byte stream: a reader task decodes frames, answers
//! each SYN_STREAM with a SYN_REPLY and hands the stream to the caller, routes DATA to its
//! stream, echoes the peer's PINGs; a writer task serializes everything sent, in order (so a
//! stream's SYN_REPLY always precedes its data). The peers this serves (Go's spdystream, as
//! in kubectl) neither send WINDOW_UPDATE nor wait for one, so flow control is TCP's: a
//! stream's bounded queue that fills up stops the reader. Every amount a client can make
//! grow is bounded: frame and header sizes (`Limits`), open streams, queued chunks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::SpdyError;
use super::frame::{
    self, Decoder, Encoder, FLAG_FIN, Frame, Headers, INVALID_STREAM, Limits, PROTOCOL_ERROR,
    REFUSED_STREAM,
};

/// Streams open at once (a port-forward connection uses two).
pub const MAX_STREAMS: usize = 128;
/// Chunks queued for a stream before the reader waits for its consumer.
const QUEUE: usize = 4;
/// The largest DATA frame sent.
const MAX_OUT: usize = 32 * 1024;

/// A stream the client opened.
#[derive(Debug)]
pub struct Incoming {
    /// Its ID.
    pub id: u32,
    /// Its SYN_STREAM's headers.
    pub headers: Headers,
    /// What the client sends on it; closed by its FIN or RST_STREAM, or the connection's end.
    pub data: mpsc::Receiver<Bytes>,
}

impl Incoming {
    /// A header's (first) value.
    pub fn header(&self, name: &str) -> Option<&str> {
        frame::header(&self.headers, name)
    }
}

enum Out {
    Frame(Frame),
    /// GOAWAY with this status, flush, and end the connection.
    Close(u32),
}

/// The connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Sends on the session (cheap to clone).
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Out>,
}

impl Writer {
    async fn send(&self, f: Frame) -> Result<(), Gone> {
        self.tx.send(Out::Frame(f)).await.map_err(|_| Gone)
    }

    /// Sends `data` on stream `id` (in frames of at most 32 KiB).
    pub async fn data(&self, id: u32, data: &[u8]) -> Result<(), Gone> {
        for chunk in data.chunks(MAX_OUT) {
            self.send(Frame::Data {
                id,
                flags: 0,
                data: Bytes::copy_from_slice(chunk),
            })
            .await?;
        }
        Ok(())
    }

    /// Ends our side of stream `id`.
    pub async fn fin(&self, id: u32) -> Result<(), Gone> {
        self.send(Frame::Data {
            id,
            flags: FLAG_FIN,
            data: Bytes::new(),
        })
        .await
    }

    /// Aborts stream `id`.
    pub async fn reset(&self, id: u32, status: u32) -> Result<(), Gone> {
        self.send(Frame::RstStream { id, status }).await
    }

    /// Sends GOAWAY after everything queued and closes the connection.
    pub async fn close(&self) {
        let _ = self.tx.send(Out::Close(0)).await;
    }

    /// Resolves once the connection is gone.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// Starts serving `io`: the writer to send with, and the streams the client opens.
pub fn start<S>(io: S, limits: Limits) -> Result<(Writer, mpsc::Receiver<Incoming>), SpdyError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let encoder = Encoder::new()?;
    let (read, write) = tokio::io::split(io);
    let (tx, rx) = mpsc::channel::<Out>(64);
    let (accept_tx, accept_rx) = mpsc::channel(16);
    let (done_tx, done_rx) = oneshot::channel();
    let last_good = Arc::new(AtomicU32::new(0));
    let writer_task = tokio::spawn(write_loop(write, rx, encoder, last_good.clone(), done_tx));
    let reader = Reader {
        decoder: Decoder::new(limits),
        writer: Writer { tx: tx.clone() },
        streams: HashMap::new(),
        last_id: 0,
        going_away: false,
        accept: accept_tx,
        last_good,
    };
    tokio::spawn(async move {
        if let Err(e) = reader.run(read, done_rx).await {
            tracing::debug!("SPDY session ended: {e}");
        }
        // The client is gone (or broke the protocol): nothing more can be sent.
        writer_task.abort();
    });
    Ok((Writer { tx }, accept_rx))
}

async fn write_loop<W: AsyncWrite>(
    write: W,
    mut rx: mpsc::Receiver<Out>,
    mut encoder: Encoder,
    last_good: Arc<AtomicU32>,
    done: oneshot::Sender<()>,
) {
    let mut write = std::pin::pin!(write);
    let mut buf = BytesMut::with_capacity(MAX_OUT + 64);
    while let Some(out) = rx.recv().await {
        let closing = matches!(out, Out::Close(_));
        let frame = match out {
            Out::Frame(f) => f,
            Out::Close(status) => Frame::GoAway {
                last_good: last_good.load(Ordering::Relaxed),
                status,
            },
        };
        if let Err(e) = encoder.encode(&frame, &mut buf) {
            tracing::warn!("SPDY: cannot encode a frame: {e}");
            break;
        }
        if write.write_all(&buf).await.is_err() {
            break;
        }
        buf.clear();
        if (closing || rx.is_empty()) && write.flush().await.is_err() {
            break;
        }
        if closing {
            let _ = write.shutdown().await;
            break;
        }
    }
    let _ = done.send(());
}

struct Reader {
    decoder: Decoder,
    writer: Writer,
    streams: HashMap<u32, mpsc::Sender<Bytes>>,
    last_id: u32,
    going_away: bool,
    accept: mpsc::Sender<Incoming>,
    last_good: Arc<AtomicU32>,
}

impl Reader {
    async fn run<R: AsyncRead>(
        mut self,
        read: R,
        mut writer_done: oneshot::Receiver<()>,
    ) -> Result<(), SpdyError> {
        let mut read = std::pin::pin!(read);
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            loop {
                match self.decoder.decode(&mut buf) {
                    Ok(Some(f)) => self.handle(f).await,
                    Ok(None) => break,
                    Err(e) => {
                        // The header compression context may be lost: the session cannot go
                        // on. Tell the client why before closing.
                        tracing::warn!("SPDY: {e}");
                        let _ = self.writer.tx.send(Out::Close(PROTOCOL_ERROR)).await;
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), &mut writer_done).await;
                        return Err(e);
                    }
                }
            }
            tokio::select! {
                n = read.read_buf(&mut buf) => match n {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(SpdyError::Io(e.to_string())),
                },
                _ = &mut writer_done => return Ok(()),
            }
        }
    }

    async fn handle(&mut self, f: Frame) {
        match f {
            Frame::SynStream { id, flags, headers } => self.open(id, flags, headers).await,
            Frame::Data { id, .. } if id > self.last_id || id.is_multiple_of(2) => {
                // Data on a stream the client never opened.
                let _ = self.writer.reset(id, INVALID_STREAM).await;
            }
            Frame::Data { id, flags, data } => {
                if let Some(tx) = self.streams.get(&id)
                    && !data.is_empty()
                    && tx.send(data).await.is_err()
                {
                    self.streams.remove(&id);
                }
                if flags & FLAG_FIN != 0 {
                    self.streams.remove(&id);
                }
            }
            Frame::RstStream { id, .. } => {
                self.streams.remove(&id);
            }
            Frame::Ping { id } if id % 2 == 1 => {
                let _ = self.writer.send(Frame::Ping { id }).await;
            }
            Frame::GoAway { .. } => self.going_away = true,
            Frame::Headers { id, flags, .. } if flags & FLAG_FIN != 0 => {
                self.streams.remove(&id);
            }
            // Settings, window updates, replies (we open no streams), our own pings.
            _ => {}
        }
    }

    async fn open(&mut self, id: u32, flags: u8, headers: Headers) {
        if id.is_multiple_of(2) || id <= self.last_id {
            tracing::debug!("SPDY: refusing stream {id} (after {})", self.last_id);
            let _ = self.writer.reset(id, PROTOCOL_ERROR).await;
            return;
        }
        self.last_id = id;
        self.streams.retain(|_, tx| !tx.is_closed());
        if self.going_away || self.streams.len() >= MAX_STREAMS {
            let _ = self.writer.reset(id, REFUSED_STREAM).await;
            return;
        }
        self.last_good.store(id, Ordering::Relaxed);
        let _ = self
            .writer
            .send(Frame::SynReply {
                id,
                flags: 0,
                headers: Vec::new(),
            })
            .await;
        let (tx, rx) = mpsc::channel(QUEUE);
        if flags & FLAG_FIN == 0 {
            self.streams.insert(id, tx);
        }
        let incoming = Incoming {
            id,
            headers,
            data: rx,
        };
        if self.accept.send(incoming).await.is_err() {
            self.streams.remove(&id);
            let _ = self.writer.reset(id, REFUSED_STREAM).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::spdy::frame::CANCEL;
    use tokio::io::DuplexStream;

    /// The client end: kubectl's part.
    struct Client {
        enc: Encoder,
        dec: Decoder,
        io: DuplexStream,
        buf: BytesMut,
    }

    impl Client {
        fn new(io: DuplexStream) -> Self {
            Self {
                enc: Encoder::new().unwrap(),
                dec: Decoder::new(Limits::default()),
                io,
                buf: BytesMut::new(),
            }
        }

        async fn send(&mut self, f: Frame) {
            let mut out = BytesMut::new();
            self.enc.encode(&f, &mut out).unwrap();
            self.io.write_all(&out).await.unwrap();
        }

        /// The next frame, `None` at the end of the connection.
        async fn next(&mut self) -> Option<Frame> {
            loop {
                if let Some(f) = self.dec.decode(&mut self.buf).unwrap() {
                    return Some(f);
                }
                let read = self.io.read_buf(&mut self.buf);
                let n = tokio::time::timeout(Duration::from_secs(5), read)
                    .await
                    .expect("the session answers")
                    .unwrap();
                if n == 0 {
                    return None;
                }
            }
        }
    }

    fn syn(id: u32, flags: u8) -> Frame {
        Frame::SynStream {
            id,
            flags,
            headers: vec![("streamtype".into(), "data".into())],
        }
    }

    fn data(id: u32, flags: u8, d: &'static [u8]) -> Frame {
        Frame::Data {
            id,
            flags,
            data: Bytes::from_static(d),
        }
    }

    #[tokio::test]
    async fn streams_carry_data_both_ways() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (writer, mut streams) = start(a, Limits::default()).unwrap();
        let mut c = Client::new(b);
        c.send(syn(1, 0)).await;
        assert!(matches!(
            c.next().await,
            Some(Frame::SynReply { id: 1, .. })
        ));
        let mut s = streams.recv().await.unwrap();
        assert_eq!((s.id, s.header("streamtype")), (1, Some("data")));
        c.send(data(1, 0, b"hello")).await;
        c.send(data(1, FLAG_FIN, b"")).await;
        assert_eq!(s.data.recv().await.unwrap(), "hello");
        assert_eq!(s.data.recv().await, None, "FIN ends the stream");
        writer.data(1, &[b'x'; 40_000]).await.unwrap();
        writer.fin(1).await.unwrap();
        let mut sizes = Vec::new();
        while let Some(Frame::Data { id: 1, flags, data }) = c.next().await {
            sizes.push(data.len());
            if flags & FLAG_FIN != 0 {
                break;
            }
        }
        assert_eq!(sizes, [32 * 1024, 40_000 - 32 * 1024, 0]);
        // Pings are echoed; the session's own (even) ones would not be.
        c.send(Frame::Ping { id: 1 }).await;
        assert_eq!(c.next().await, Some(Frame::Ping { id: 1 }));
        // Even (server) IDs and reused IDs are refused.
        c.send(syn(2, 0)).await;
        assert_eq!(
            c.next().await,
            Some(Frame::RstStream {
                id: 2,
                status: PROTOCOL_ERROR
            })
        );
        c.send(syn(1, 0)).await;
        assert_eq!(
            c.next().await,
            Some(Frame::RstStream {
                id: 1,
                status: PROTOCOL_ERROR
            })
        );
        // Data on a stream never opened is refused.
        c.send(data(9, 0, b"x")).await;
        assert_eq!(
            c.next().await,
            Some(Frame::RstStream {
                id: 9,
                status: INVALID_STREAM
            })
        );
        // A reset ends the stream for its reader.
        c.send(syn(3, 0)).await;
        assert!(matches!(
            c.next().await,
            Some(Frame::SynReply { id: 3, .. })
        ));
        let mut s3 = streams.recv().await.unwrap();
        c.send(Frame::RstStream {
            id: 3,
            status: CANCEL,
        })
        .await;
        assert_eq!(s3.data.recv().await, None);
        writer.close().await;
        assert_eq!(
            c.next().await,
            Some(Frame::GoAway {
                last_good: 3,
                status: 0
            })
        );
        assert_eq!(c.next().await, None);
    }

    #[tokio::test]
    async fn a_header_bomb_ends_the_session_with_a_protocol_error() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (writer, _streams) = start(a, Limits::default()).unwrap();
        let mut c = Client::new(b);
        c.send(Frame::SynStream {
            id: 1,
            flags: 0,
            headers: vec![("x".into(), "a".repeat(1 << 20))],
        })
        .await;
        assert_eq!(
            c.next().await,
            Some(Frame::GoAway {
                last_good: 0,
                status: PROTOCOL_ERROR
            })
        );
        assert_eq!(c.next().await, None);
        tokio::time::timeout(Duration::from_secs(5), writer.closed())
            .await
            .expect("the writer is gone");
    }
}
