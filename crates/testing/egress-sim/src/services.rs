//! Small servers the simulator runs itself, each listening inside a namespace but served by
//! the simulator's runtime: the API-server forwarder (127.0.0.1:PORT inside a node → the API
//! server on the host loopback), IMDS at 169.254.169.254 inside a node (forwarded to the
//! emulator with the node named in `x-emulator-vm`), the internet echo server (also a line
//! echo for numbered streams; `ifconfig.me` and the like answer the address alone, as the real
//! services do) and the raw echo on the peered-network host.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::netns::{self, NetnsError};

/// Binds a TCP listener inside a namespace, with the kernel's largest accept queue: std's
/// 128 overflows when hundreds of pods connect in the same moment while the simulator's
/// runtime is busy, and a dropped SYN costs its client TCP's 1 s retransmission, which
/// measures the simulated internet server instead of the egress path.
pub fn bind_in(ns: &str, addr: SocketAddr) -> Result<TcpListener, NetnsError> {
    let result = netns::in_netns(ns, move || {
        let l = std::net::TcpListener::bind(addr)?;
        nix::sys::socket::listen(&l, nix::sys::socket::Backlog::MAXCONN)?;
        l.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(l)
    })?;
    let std_listener = result.map_err(|e| NetnsError::Failed {
        what: format!("listen on {addr} in {ns}"),
        stderr: e.to_string(),
    })?;
    TcpListener::from_std(std_listener).map_err(|e| NetnsError::Failed {
        what: format!("listen on {addr} in {ns}"),
        stderr: e.to_string(),
    })
}

/// Forwards every connection on `listener` to `target` (in the simulator's namespace).
pub fn spawn_forwarder(tasks: &mut JoinSet<()>, listener: TcpListener, target: SocketAddr) {
    tasks.spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

/// Serves IMDS on `listener` for the VM `computer_name` by asking the emulator at `emulator`.
pub fn spawn_imds(
    tasks: &mut JoinSet<()>,
    listener: TcpListener,
    emulator: SocketAddr,
    computer_name: String,
) {
    tasks.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let vm = computer_name.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let vm = vm.clone();
                    async move { Ok::<_, Infallible>(imds_forward(req, emulator, &vm).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

fn text(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r
}

async fn imds_forward(
    req: Request<Incoming>,
    emulator: SocketAddr,
    vm: &str,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return text(400, "failed to read request body".into());
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut builder = Request::builder().method(parts.method).uri(&path);
    for (k, v) in &parts.headers {
        builder = builder.header(k, v);
    }
    let Ok(out) = builder
        .header("host", emulator.to_string())
        .header("x-emulator-vm", vm)
        .body(Full::new(body))
    else {
        return text(400, "bad request".into());
    };
    match send(emulator, out).await {
        Ok(r) => r,
        Err(e) => text(502, format!("failed to reach the Azure emulator: {e}")),
    }
}

/// Sends one HTTP/1 request over a new connection.
pub async fn send(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// GET `url_path` from `addr`; returns status and body.
pub async fn get(addr: SocketAddr, path: &str) -> Result<(u16, Bytes), String> {
    let req = Request::builder()
        .uri(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let r = send(addr, req).await?;
    let status = r.status().as_u16();
    let body = r
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// Port of the raw echo (any TCP port but 80 is redirected here).
pub const RAW_ECHO_PORT: u16 = 7;

/// Port of the line echo on the internet server: every byte received is sent back (numbered
/// streams measure loss and stalls with it).
pub const STREAM_ECHO_PORT: u16 = 7000;

/// UDP port of the source echo on the internet server: each datagram is answered with its
/// own text, the address it came from and when it arrived (failover measurements).
pub const UDP_ECHO_PORT: u16 = 7001;

/// Binds a UDP socket inside a namespace.
pub fn bind_udp_in(ns: &str, addr: SocketAddr) -> Result<tokio::net::UdpSocket, NetnsError> {
    let failed = |e: std::io::Error| NetnsError::Failed {
        what: format!("bind UDP {addr} in {ns}"),
        stderr: e.to_string(),
    };
    let socket = netns::in_netns(ns, move || {
        let s = std::net::UdpSocket::bind(addr)?;
        s.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(s)
    })?
    .map_err(failed)?;
    tokio::net::UdpSocket::from_std(socket).map_err(failed)
}

/// Answers every datagram on `socket` with `<its text> <source ip:port> <arrival, ns since
/// the Unix epoch>`: the sender learns which address the internet saw and when.
pub fn spawn_udp_source_echo(tasks: &mut JoinSet<()>, socket: tokio::net::UdpSocket) {
    tasks.spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let text = String::from_utf8_lossy(&buf[..n]);
            let _ = socket
                .send_to(format!("{} {peer} {at}", text.trim()).as_bytes(), peer)
                .await;
        }
    });
}

/// The echo server's nftables redirect: every TCP port but 80, the raw echo's and the line
/// echo's lands on the raw echo.
pub fn echo_redirect_ruleset() -> String {
    format!(
        "table ip sim_echo {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    tcp dport != {{ 80, {RAW_ECHO_PORT}, {STREAM_ECHO_PORT} }} redirect to :{RAW_ECHO_PORT}\n  }}\n}}\n"
    )
}

/// The names of "what is my IP" services the internet server answers for (pods' `/etc/hosts`
/// resolve them to it), as those services do: the address alone.
pub const WHAT_IS_MY_IP: &[&str] = &[
    "ifconfig.me",
    "ifconfig.co",
    "icanhazip.com",
    "api.ipify.org",
];

/// The echo's HTTP answer: `<ip>\n` for a "what is my IP" host name, `<ip>:<port>\n` otherwise.
fn echo_body<B>(req: &Request<B>, peer: SocketAddr) -> String {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase())
        .unwrap_or_default();
    if WHAT_IS_MY_IP.contains(&host.as_str()) {
        format!("{}\n", peer.ip())
    } else {
        format!("{peer}\n")
    }
}

/// Serves the echo: HTTP on `http` (body `<client ip>:<port>\n`) and the same line, written at
/// once, on every connection to `raw`.
pub fn spawn_echo(tasks: &mut JoinSet<()>, http: TcpListener, raw: TcpListener) {
    tasks.spawn(async move {
        loop {
            let Ok((stream, peer)) = http.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(text(200, echo_body(&req, peer)))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    spawn_raw_echo(tasks, raw);
}

/// Writes `<client ip>:<port>\n` on every connection to `raw`, then closes it.
pub fn spawn_raw_echo(tasks: &mut JoinSet<()>, raw: TcpListener) {
    tasks.spawn(async move {
        loop {
            let Ok((mut stream, peer)) = raw.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stream.write_all(format!("{peer}\n").as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
}

/// Sends back every byte received on each connection to `listener`.
pub fn spawn_line_echo(tasks: &mut JoinSet<()>, listener: TcpListener) {
    tasks.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut rd, mut wr) = stream.into_split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            });
        }
    });
}

/// Opens a TCP connection to `server:port` from inside namespace `ns` and returns the address
/// the server saw (the raw echo's line).
pub fn observed_source(
    ns: &str,
    server: impl Into<std::net::IpAddr>,
    port: u16,
    timeout: std::time::Duration,
) -> Result<String, String> {
    let server = server.into();
    netns::in_netns(ns, move || {
        use std::io::Read;
        let mut s =
            std::net::TcpStream::connect_timeout(&SocketAddr::from((server, port)), timeout)
                .map_err(|e| format!("connect to {server}:{port}: {e}"))?;
        s.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        s.read_to_string(&mut line)
            .map_err(|e| format!("read from {server}:{port}: {e}"))?;
        Ok(line.trim().to_string())
    })
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn what_is_my_ip_hosts_get_the_address_alone() {
        let peer: SocketAddr = "203.0.113.1:4242".parse().unwrap();
        let req = |host: &str| Request::builder().header("host", host).body(()).unwrap();
        assert_eq!(echo_body(&req("ifconfig.me"), peer), "203.0.113.1\n");
        assert_eq!(echo_body(&req("192.0.2.1"), peer), "203.0.113.1:4242\n");
        assert_eq!(echo_body(&req("ICANHAZIP.com:80"), peer), "203.0.113.1\n");
    }
}
