//! `kubectl port-forward` on a simulated pod (protocol `portforward.k8s.io` over SPDY): for
//! each local connection kubectl opens two streams with the same `requestid` and the pod's
//! `port`, `streamtype: error` and `streamtype: data`. Once both are there the kubelet
//! connects to `localhost:PORT` inside the pod's network namespace (a thread that `setns`es
//! into it, so the socket belongs to the pod's namespace) and copies bytes both ways; a
//! failure is written on the error stream, which kubectl prints. Pairs that stay incomplete
//! are dropped after a timeout, and their number is bounded.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::spdy::frame::{PROTOCOL_ERROR, REFUSED_STREAM};
use crate::spdy::session::{Incoming, Writer};

/// The protocol served.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// How long a pair may wait for its second stream (the kubelet's default).
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// Incomplete pairs at once.
const MAX_PENDING: usize = 32;

/// What a stream of the pair is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Error,
    Data,
}

/// A stream's role, checked: its kind, port and request ID.
fn classify(s: &Incoming) -> Result<(Kind, u16, String), String> {
    let port = s
        .header("port")
        .ok_or_else(|| "the \"port\" header is required".to_string())?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{port:?} is not a port (1-65535)"))?;
    let kind = match s.header("streamtype") {
        Some("error") => Kind::Error,
        Some("data") => Kind::Data,
        Some(other) => return Err(format!("invalid stream type {other:?}")),
        None => return Err("the \"streamType\" header is required".into()),
    };
    // Clients older than request IDs pair consecutive streams (error n, data n+2).
    let request = match (s.header("requestid"), kind) {
        (Some(r), _) => r.to_string(),
        (None, Kind::Error) => s.id.to_string(),
        (None, Kind::Data) => s.id.saturating_sub(2).to_string(),
    };
    Ok((kind, port, request))
}

struct Pair {
    error: Option<Incoming>,
    data: Option<Incoming>,
    opened: tokio::time::Instant,
}

/// Serves the streams of one port-forward connection into the namespace `netns`.
pub async fn serve(
    writer: Writer,
    mut streams: mpsc::Receiver<Incoming>,
    netns: String,
    pod: String,
) {
    let mut pending: HashMap<String, Pair> = HashMap::new();
    // One clock for the whole connection: a sleep made anew on every pass would never fire
    // while streams keep arriving less than a second apart.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let stream = tokio::select! {
            s = streams.recv() => s,
            _ = tick.tick(), if !pending.is_empty() => {
                expire(&writer, &mut pending).await;
                continue;
            }
        };
        let Some(stream) = stream else { return };
        let (kind, port, request) = match classify(&stream) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("port-forward to {pod}: stream {} refused: {e}", stream.id);
                let _ = writer.reset(stream.id, PROTOCOL_ERROR).await;
                continue;
            }
        };
        if !pending.contains_key(&request) && pending.len() >= MAX_PENDING {
            let _ = writer.reset(stream.id, REFUSED_STREAM).await;
            continue;
        }
        let pair = pending.entry(request.clone()).or_insert_with(|| Pair {
            error: None,
            data: None,
            opened: tokio::time::Instant::now(),
        });
        let slot = match kind {
            Kind::Error => &mut pair.error,
            Kind::Data => &mut pair.data,
        };
        if slot.is_some() {
            let _ = writer.reset(stream.id, PROTOCOL_ERROR).await;
            continue;
        }
        *slot = Some(stream);
        if pair.error.is_some()
            && pair.data.is_some()
            && let Some(Pair {
                error: Some(error),
                data: Some(data),
                ..
            }) = pending.remove(&request)
        {
            tokio::spawn(forward(
                writer.clone(),
                error,
                data,
                port,
                netns.clone(),
                pod.clone(),
            ));
        }
    }
}

/// Ends the pairs that waited too long, saying so on their error stream.
async fn expire(writer: &Writer, pending: &mut HashMap<String, Pair>) {
    let stale: Vec<String> = pending
        .iter()
        .filter(|(_, p)| p.opened.elapsed() > PAIR_TIMEOUT)
        .map(|(k, _)| k.clone())
        .collect();
    for request in stale {
        let Some(pair) = pending.remove(&request) else {
            continue;
        };
        if let Some(e) = pair.error {
            let msg = format!("timed out waiting for the data stream of request {request}");
            let _ = writer.data(e.id, msg.as_bytes()).await;
            let _ = writer.fin(e.id).await;
        }
        if let Some(d) = pair.data {
            let _ = writer.reset(d.id, REFUSED_STREAM).await;
        }
    }
}

/// Connects to `localhost:port` inside the namespace (IPv4, then IPv6).
pub async fn connect_in(netns: &str, port: u16) -> Result<TcpStream, String> {
    let ns = netns.to_string();
    let std = tokio::task::spawn_blocking(move || {
        crate::netns::in_netns(&ns, move || {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(5),
            )
            .or_else(|e4| {
                std::net::TcpStream::connect_timeout(
                    &std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
                    Duration::from_secs(5),
                )
                .map_err(|_| e4)
            })
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("dial tcp localhost:{port}: {e}"))?;
    std.set_nonblocking(true).map_err(|e| e.to_string())?;
    TcpStream::from_std(std).map_err(|e| e.to_string())
}

/// Forwards one connection.
async fn forward(
    writer: Writer,
    error: Incoming,
    mut data: Incoming,
    port: u16,
    netns: String,
    pod: String,
) {
    let tcp = match connect_in(&netns, port).await {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("error forwarding port {port} to pod {pod}: {e}");
            let _ = writer.data(error.id, msg.as_bytes()).await;
            let _ = writer.fin(error.id).await;
            let _ = writer.fin(data.id).await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let data_id = data.id;
    let to_pod_task = tokio::spawn(async move {
        while let Some(chunk) = data.data.recv().await {
            if to_pod.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // kubectl's side ended (its local connection closed): half-close towards the pod.
        let _ = to_pod.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = tokio::select! {
            n = from_pod.read(&mut buf) => n.unwrap_or(0),
            _ = writer.closed() => 0,
        };
        if n == 0 || writer.data(data_id, &buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = writer.fin(data_id).await;
    let _ = writer.fin(error.id).await;
    // kubectl closes its side once ours ended; a client that does not is cut off.
    let mut to_pod_task = to_pod_task;
    if tokio::time::timeout(Duration::from_secs(5), &mut to_pod_task)
        .await
        .is_err()
    {
        to_pod_task.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn stream(id: u32, headers: &[(&str, &str)]) -> Incoming {
        Incoming {
            id,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            data: mpsc::channel(1).1,
        }
    }

    #[test]
    fn streams_are_paired_by_request_id() {
        let s = stream(
            5,
            &[("streamtype", "data"), ("port", "8080"), ("requestid", "7")],
        );
        assert_eq!(classify(&s).unwrap(), (Kind::Data, 8080, "7".into()));
        // Without request IDs (old clients): error n and data n+2 pair up.
        let e = stream(1, &[("streamtype", "error"), ("port", "80")]);
        let d = stream(3, &[("streamtype", "data"), ("port", "80")]);
        assert_eq!(classify(&e).unwrap().2, classify(&d).unwrap().2);
        for (headers, why) in [
            (&[("streamtype", "data")][..], "\"port\" header is required"),
            (
                &[("streamtype", "data"), ("port", "0")],
                "\"0\" is not a port",
            ),
            (&[("streamtype", "data"), ("port", "70000")], "not a port"),
            (&[("port", "80")], "\"streamType\" header is required"),
            (
                &[("port", "80"), ("streamtype", "stdin")],
                "invalid stream type \"stdin\"",
            ),
        ] {
            let err = classify(&stream(1, headers)).unwrap_err();
            assert!(err.contains(why), "{headers:?}: {err}");
        }
    }
}
