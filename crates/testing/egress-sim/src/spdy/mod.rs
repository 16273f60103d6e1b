//! A minimal SPDY/3.1 server, enough for the kubelet's streaming endpoints (`kubectl
//! port-forward`, and `kubectl exec`/`attach` when WebSocket is off): kubectl opens streams
//! (SYN_STREAM with `streamtype` headers), the server accepts them and both sides send DATA,
//! ending with FIN. It runs over an HTTP/1.1 `Upgrade: SPDY/3.1` connection or inside
//! WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+'s port-forward).
//! No maintained, permissively licensed Rust crate serves SPDY (docs/decisions.md).

pub mod frame;
pub mod session;
pub mod ws;
pub mod zlib;

/// Why a SPDY connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpdyError {
    /// A frame breaks the protocol.
    #[error("SPDY protocol error: {0}")]
    Protocol(String),
    /// Something exceeds a limit.
    #[error("SPDY limit exceeded: {0}")]
    TooLarge(String),
    /// Header compression failed.
    #[error("SPDY header compression: {0}")]
    Compression(String),
    /// The transport failed.
    #[error("SPDY connection: {0}")]
    Io(String),
}
