//! A kept-alive HTTP/1.1 connection to a gateway node (the probes', and the sessions
//! queries'), which fails as soon as the network reports the node unreachable.
//!
//! The socket has `IP_RECVERR`, so an ICMP host or network unreachable for a segment in
//! flight sets the socket's error instead of being retransmitted into until the timeout. But
//! tokio wakes a read only when its socket is readable or read-closed, and an error alone is
//! neither (epoll reports `EPOLLERR`, with `EPOLLOUT`): hyper, waiting for the answer, would
//! not see it before the probe's timeout. Traced in the simulator: a killed node's kept-alive
//! probe connection was seen down only at the 500 ms timeout, while a new connection's SYN
//! failed at once. So the connection keeps a second descriptor of its socket, registered for
//! errors alone, and every request races it ([`ErrorWatch::guard`]).

use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// A connection: its request half and the error watch of its socket.
pub(super) struct GatewayConn {
    /// Sends requests (hyper drives the connection on a task of its own).
    pub sender: SendRequest<Empty<Bytes>>,
    /// Resolves requests early when the socket fails.
    pub errors: ErrorWatch,
}

/// A second descriptor of a connection's socket that wakes on the socket's error alone.
pub(super) struct ErrorWatch(TcpStream);

impl ErrorWatch {
    /// Runs `work` until it completes, or `None` as soon as the socket reports an error.
    pub async fn guard<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            out = work => Some(out),
            _ = self.0.ready(Interest::ERROR) => None,
        }
    }
}

impl GatewayConn {
    /// Connects to `addr`; `None` when it fails.
    pub async fn connect(addr: SocketAddr) -> Option<Self> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4().ok()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6().ok()?,
        };
        let recverr = match addr {
            SocketAddr::V4(_) => {
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
            }
            SocketAddr::V6(_) => {
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6RecvErr, &true)
            }
        };
        if let Err(e) = recverr {
            tracing::debug!(error = %e, "failed to set IP_RECVERR on a probe socket");
        }
        let stream = socket.connect(addr).await.ok()?;
        let _ = stream.set_nodelay(true);
        // Both descriptors share the socket (and its non-blocking mode); each has its own
        // registration with the runtime.
        let std_stream = stream.into_std().ok()?;
        let watch = TcpStream::from_std(std_stream.try_clone().ok()?).ok()?;
        let stream = TcpStream::from_std(std_stream).ok()?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Some(Self {
            sender,
            errors: ErrorWatch(watch),
        })
    }
}
