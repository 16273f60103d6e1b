//! The transports of the kubelet's remote-command endpoints (`exec`, `attach`), so a session
//! is written once against `Input`/`Output` channels:
//! - WebSocket (kubectl 1.30+'s default), `v5.channel.k8s.io` or `v4.channel.k8s.io`:
//!   binary messages whose first byte is the stream (0 stdin, 1 stdout, 2 stderr, 3 the
//!   final `Status`, 4 terminal resize; in v5, 255 followed by a stream closes it);
//! - SPDY/3.1 with `v4.channel.k8s.io` (kubectl's fallback, or its only transport with
//!   `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`): kubectl opens one stream per channel,
//!   named by its `streamtype` header (error, stdin, stdout, stderr, resize); stdin ends with
//!   its FIN, and the `Status` is written on the error stream before every stream ends.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::spdy::frame::PROTOCOL_ERROR;
use crate::spdy::session::{Incoming, Writer};

/// The WebSocket subprotocols served, preferred first.
pub const WS_PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// The SPDY protocol served.
pub const SPDY_PROTOCOL: &str = "v4.channel.k8s.io";

/// Channel numbers (WebSocket framing).
pub const STDIN: u8 = 0;
/// Standard output.
pub const STDOUT: u8 = 1;
/// Standard error.
pub const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// How long kubectl has to open the streams it asked for (the kubelet's default).
const STREAMS_TIMEOUT: Duration = Duration::from_secs(30);

/// What the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes for standard input.
    Stdin(Vec<u8>),
    /// Standard input is closed.
    StdinEnd,
    /// A terminal size (`{"Width": W, "Height": H}`).
    Resize(Vec<u8>),
}

/// What the session sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes on `STDOUT` or `STDERR`.
    Data(u8, Vec<u8>),
    /// The final `Status`.
    Status(Value),
}

/// The channels a session is run with; the input's end means the client is gone.
pub type Channels = (mpsc::Receiver<Input>, mpsc::Sender<Output>);

/// A framed WebSocket message on `stream`.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(stream);
    out.extend_from_slice(data);
    out
}

/// Runs `session` over an accepted WebSocket (`v5`: the v5 close signal is understood).
pub async fn over_websocket<S, F, Fut>(ws: WebSocketStream<S>, v5: bool, session: F)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(Channels) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (mut sink, mut source) = ws.split();
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(64);
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = source.next().await {
            let input = match msg {
                Message::Binary(d) if !d.is_empty() => match d[0] {
                    STDIN => Input::Stdin(d[1..].to_vec()),
                    RESIZE => Input::Resize(d[1..].to_vec()),
                    CLOSE if v5 && d.get(1) == Some(&STDIN) => Input::StdinEnd,
                    _ => continue,
                },
                Message::Close(_) => break,
                _ => continue,
            };
            if in_tx.send(input).await.is_err() {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            let bytes = match o {
                Output::Data(stream, data) => frame(stream, &data),
                Output::Status(v) => frame(ERROR, v.to_string().as_bytes()),
            };
            if sink.send(Message::binary(bytes)).await.is_err() {
                return;
            }
        }
        crate::spdy::ws::close_normally(&mut sink).await;
    });
    session((in_rx, out_tx)).await;
    let _ = writer.await;
    reader.abort();
}

/// Which streams a request asks kubectl to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// stdin.
    pub stdin: bool,
    /// stdout.
    pub stdout: bool,
    /// stderr.
    pub stderr: bool,
    /// resize (with a terminal).
    pub resize: bool,
}

/// The streams of one SPDY remote-command connection.
#[derive(Debug, Default)]
struct Opened {
    error: Option<Incoming>,
    stdin: Option<Incoming>,
    stdout: Option<Incoming>,
    stderr: Option<Incoming>,
    resize: Option<Incoming>,
}

impl Opened {
    fn complete(&self, w: Wanted) -> bool {
        self.error.is_some()
            && self.stdin.is_some() == w.stdin
            && self.stdout.is_some() == w.stdout
            && self.stderr.is_some() == w.stderr
            && self.resize.is_some() == w.resize
    }

    /// Files a stream by its type; an unexpected or repeated one is refused.
    fn add(&mut self, s: Incoming, w: Wanted) -> Result<(), (Incoming, String)> {
        let kind = s.header("streamtype").unwrap_or("").to_string();
        let slot = match kind.as_str() {
            "error" => &mut self.error,
            "stdin" if w.stdin => &mut self.stdin,
            "stdout" if w.stdout => &mut self.stdout,
            "stderr" if w.stderr => &mut self.stderr,
            "resize" if w.resize => &mut self.resize,
            _ => return Err((s, format!("unexpected stream type {kind:?}"))),
        };
        if slot.is_some() {
            return Err((s, format!("a second {kind} stream")));
        }
        *slot = Some(s);
        Ok(())
    }
}

/// Waits for the streams kubectl was asked to open.
async fn collect(
    writer: &Writer,
    streams: &mut mpsc::Receiver<Incoming>,
    wanted: Wanted,
) -> Result<Opened, String> {
    let mut opened = Opened::default();
    let deadline = tokio::time::Instant::now() + STREAMS_TIMEOUT;
    while !opened.complete(wanted) {
        let s = tokio::time::timeout_at(deadline, streams.recv())
            .await
            .map_err(|_| "timed out waiting for the client's streams".to_string())?
            .ok_or_else(|| "the client went away before opening its streams".to_string())?;
        if let Err((s, why)) = opened.add(s, wanted) {
            tracing::debug!("remote command: stream {} refused: {why}", s.id);
            let _ = writer.reset(s.id, PROTOCOL_ERROR).await;
        }
    }
    Ok(opened)
}

/// Runs `session` over an accepted SPDY connection.
pub async fn over_spdy<F, Fut>(
    writer: Writer,
    mut streams: mpsc::Receiver<Incoming>,
    wanted: Wanted,
    session: F,
) where
    F: FnOnce(Channels) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let opened = match collect(&writer, &mut streams, wanted).await {
        Ok(o) => o,
        Err(e) => {
            tracing::debug!("remote command over SPDY: {e}");
            writer.close().await;
            return;
        }
    };
    let Opened {
        error: Some(error),
        stdin,
        stdout,
        stderr,
        resize,
    } = opened
    else {
        return;
    };
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(64);
    let reader = tokio::spawn(pump_inputs(writer.clone(), stdin, resize, in_tx));
    let ids = (stdout.map(|s| s.id), stderr.map(|s| s.id), error.id);
    let w = writer.clone();
    let sender = tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            match o {
                Output::Data(stream, data) => {
                    let id = if stream == STDERR { ids.1 } else { ids.0 };
                    if let Some(id) = id
                        && w.data(id, &data).await.is_err()
                    {
                        return;
                    }
                }
                Output::Status(v) => {
                    for id in [ids.0, ids.1].into_iter().flatten() {
                        let _ = w.fin(id).await;
                    }
                    let _ = w.data(ids.2, v.to_string().as_bytes()).await;
                    let _ = w.fin(ids.2).await;
                }
            }
        }
        w.close().await;
    });
    session((in_rx, out_tx)).await;
    let _ = sender.await;
    reader.abort();
}

/// The next chunk of an optional stream (never, without one).
async fn recv(s: &mut Option<Incoming>) -> Option<bytes::Bytes> {
    match s {
        Some(s) => s.data.recv().await,
        None => std::future::pending().await,
    }
}

/// Turns the stdin and resize streams into inputs, until the connection goes.
async fn pump_inputs(
    writer: Writer,
    mut stdin: Option<Incoming>,
    mut resize: Option<Incoming>,
    tx: mpsc::Sender<Input>,
) {
    loop {
        let input = tokio::select! {
            d = recv(&mut stdin) => match d {
                Some(b) => Input::Stdin(b.to_vec()),
                None => {
                    stdin = None;
                    Input::StdinEnd
                }
            },
            d = recv(&mut resize) => match d {
                Some(b) => Input::Resize(b.to_vec()),
                None => {
                    resize = None;
                    continue;
                }
            },
            _ = writer.closed() => return,
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
}
