//! The HTTP upgrades of the kubelet's streaming endpoints: what a request asks for
//! (WebSocket with its subprotocols, or SPDY/3.1 with its `X-Stream-Protocol-Version`s), the
//! `101` answers accepting one, and starting a SPDY session on the upgraded connection.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::kubelet_api::{Body, full};
use crate::spdy;
use crate::spdy::frame::Limits;

/// kubectl 1.31+'s port-forward: SPDY inside WebSocket.
pub const PF_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// How a streaming request asks to be upgraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// WebSocket with these subprotocols.
    WebSocket {
        /// `Sec-WebSocket-Key`.
        key: String,
        /// `Sec-WebSocket-Protocol`, in the client's order.
        protocols: Vec<String>,
    },
    /// `Upgrade: SPDY/3.1`, with the `X-Stream-Protocol-Version`s offered.
    Spdy(Vec<String>),
    /// Neither.
    None,
}

/// The values of a header that may repeat or hold a comma-separated list.
fn list(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Reads the upgrade a request asks for.
pub fn upgrade_of(headers: &http::HeaderMap) -> Upgrade {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if upgrade.eq_ignore_ascii_case("websocket") {
        if let Some(key) = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .and_then(|v| v.to_str().ok())
        {
            return Upgrade::WebSocket {
                key: key.to_string(),
                protocols: list(headers, "sec-websocket-protocol"),
            };
        }
    } else if upgrade.eq_ignore_ascii_case("SPDY/3.1") {
        return Upgrade::Spdy(list(headers, "x-stream-protocol-version"));
    }
    Upgrade::None
}

/// The `101` accepting a WebSocket with `protocol`.
pub fn ws_accepted(key: &str, protocol: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol),
    );
    resp
}

/// The `101` accepting SPDY/3.1 with `protocol`.
pub fn spdy_accepted(protocol: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        "x-stream-protocol-version",
        HeaderValue::from_static(protocol),
    );
    resp
}

/// Starts a SPDY session on the upgraded connection (tunnelled in WebSocket or not) and
/// hands its streams to `serve`.
pub fn spawn_spdy<F, Fut>(mut req: Request<Incoming>, websocket: bool, serve: F)
where
    F: FnOnce(spdy::session::Writer, tokio::sync::mpsc::Receiver<spdy::session::Incoming>) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let io = TokioIo::new(upgraded);
        let started = if websocket {
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            spdy::session::start(spdy::ws::bytes(ws), Limits::default())
        } else {
            spdy::session::start(io, Limits::default())
        };
        match started {
            Ok((writer, streams)) => serve(writer, streams).await,
            Err(e) => tracing::warn!("cannot start a SPDY session: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn upgrades_are_read_from_the_headers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(upgrade_of(&h), Upgrade::None);
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        h.append(
            "x-stream-protocol-version",
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        h.append(
            "x-stream-protocol-version",
            HeaderValue::from_static("v3.channel.k8s.io, v2.channel.k8s.io"),
        );
        assert_eq!(
            upgrade_of(&h),
            Upgrade::Spdy(vec![
                "v4.channel.k8s.io".into(),
                "v3.channel.k8s.io".into(),
                "v2.channel.k8s.io".into()
            ])
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(upgrade_of(&h), Upgrade::None, "a WebSocket needs its key");
        h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("k"));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("SPDY/3.1+portforward.k8s.io"),
        );
        assert_eq!(
            upgrade_of(&h),
            Upgrade::WebSocket {
                key: "k".into(),
                protocols: vec![PF_TUNNEL.into()]
            }
        );
    }
}
