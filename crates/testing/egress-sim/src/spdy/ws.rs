//! SPDY tunnelled in WebSocket (kubectl 1.31+'s port-forward, subprotocol
//! `SPDY/3.1+portforward.k8s.io`): the WebSocket's binary messages, concatenated, are the
//! SPDY byte stream in each direction (message boundaries mean nothing). This turns an
//! accepted WebSocket into a plain byte stream the SPDY session reads and writes; a normal
//! close is the end of the stream.

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The byte stream carried by `ws` (pumped by two tasks until either side ends).
pub fn bytes<S>(ws: WebSocketStream<S>) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut from_ws, mut to_ws) = tokio::io::split(theirs);
    let (mut sink, mut source) = ws.split();
    tokio::spawn(async move {
        while let Some(msg) = source.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    if to_ws.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                // Pings are answered by tungstenite; text has no meaning here.
                Ok(_) => {}
            }
        }
        let _ = to_ws.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = from_ws.read(&mut buf).await {
            if n == 0 || sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
        close_normally(&mut sink).await;
    });
    ours
}

/// Sends a normal closure and closes: gorilla's reader (kubectl) takes only that for the end
/// of the streams, a close without a status code is an error.
pub async fn close_normally<S>(sink: &mut S)
where
    S: futures::Sink<Message> + Unpin,
{
    let normal = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(normal))).await;
    let _ = sink.close().await;
}
