//! The kubelet API's streaming endpoints with the real kubectl, without a simulated cluster:
//! an in-process API server forwarding to the simulator's kubelet API, one pod whose network
//! namespace the test creates, and a TCP server inside it. `kubectl port-forward` carries
//! several concurrent connections both ways (over WebSocket-tunnelled SPDY, kubectl's
//! default, and over plain SPDY), says why when nothing listens, and `kubectl exec` and
//! `kubectl attach` work over WebSocket and plain SPDY (kubectl's fallback when WebSocket is
//! refused or turned off); requests the kubelet cannot serve get a clear answer.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use egress_apiserver::{ApiServer, KubeletAddr, KubeletConfig, RunningApiServer, ServerConfig};
use egress_sim::kubelet_api::{self, PodHandle};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;

/// A network namespace of the test's, removed on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Answers every connection with what it reads, upper-cased, until it closes its side.
async fn upper_server(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = conn.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let up = buf[..n].to_ascii_uppercase();
                if conn.write_all(&up).await.is_err() {
                    return;
                }
            }
            let _ = conn.shutdown().await;
        });
    }
}

async fn cluster(dir: &Path, netns: &str) -> RunningApiServer {
    let socket = dir.join("kubelet.sock");
    let log = dir.join("pod.log");
    std::fs::write(&log, "started\n").unwrap();
    let handle = PodHandle {
        netns: Some(netns.to_string()),
        log,
        no_exec: None,
        hosts: None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    kubelet_api::start(
        &mut tasks,
        &socket,
        Arc::new(move |ns: &str, name: &str| {
            (ns == "default" && name == "p").then(|| handle.clone())
        }),
    )
    .unwrap();
    // The kubelet API serves for as long as the test runs.
    std::mem::forget(tasks);
    let server = ApiServer::start(ServerConfig {
        kubelet: KubeletConfig {
            addr: Some(KubeletAddr::Unix(socket)),
            allowed_uid: Some(0),
        },
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), "default");
    let pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "p"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "x"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // kubectl port-forward wants a running pod.
    pods.patch_status(
        "p",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    server.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
    server
}

fn kubectl(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("/usr/bin/kubectl");
    cmd.arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .envs(env.iter().copied());
    cmd
}

/// A running `kubectl port-forward` and the local port it listens on.
struct Forward {
    child: Child,
    port: u16,
    stderr: std::thread::JoinHandle<String>,
}

impl Forward {
    fn start(dir: &Path, env: &[(&str, &str)], remote: u16) -> Self {
        let mut child = kubectl(dir, env)
            .args(["port-forward", "pod/p", &format!(":{remote}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Drained for as long as kubectl runs: it writes a line per connection, and a closed
        // pipe would kill it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        // "Forwarding from 127.0.0.1:PORT -> REMOTE"
        let port = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("kubectl port-forward printed {line:?}"));
        let stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
            s
        });
        Self {
            child,
            port,
            stderr,
        }
    }

    fn stop(mut self) -> String {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        self.stderr.join().unwrap()
    }
}

/// One connection through the forward: sends `n` bytes, half-closes, expects them back
/// upper-cased and then the end of the stream.
async fn round_trip(port: u16, i: usize, n: usize) -> Result<(), String> {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let payload: Vec<u8> = (0..n).map(|k| b"abcdefghij"[(k + i) % 10]).collect();
    let (mut r, mut w) = conn.split();
    let send = async {
        // A failure shows as a short or failed read below.
        let _ = w.write_all(&payload).await;
        let _ = w.shutdown().await;
    };
    let mut back = Vec::new();
    let recv = r.read_to_end(&mut back);
    let (_, got) =
        tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(send, recv) })
            .await
            .map_err(|_| format!("connection {i} timed out"))?;
    got.map_err(|e| format!("connection {i}: {e}"))?;
    if back != payload.to_ascii_uppercase() {
        return Err(format!(
            "connection {i}: {} bytes back of {n}, or not the same",
            back.len()
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_and_spdy_exec_with_kubectl() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let Some(lab) = common::lab("kubectl_streams") else {
        return;
    };
    let ns = Netns(format!("egsim-pf-{}", std::process::id()));
    assert!(
        Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("ip")
            .args(["-n", &ns.0, "link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success()
    );
    let listener =
        egress_sim::netns::in_netns(&ns.0, || std::net::TcpListener::bind(("127.0.0.1", 0)))
            .unwrap()
            .unwrap();
    let remote = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    tokio::spawn(upper_server(
        tokio::net::TcpListener::from_std(listener).unwrap(),
    ));
    // Beside the lab's state directory (whose entries it takes for simulator runs).
    let dir = lab.root.parent().unwrap().join("streams");
    std::fs::create_dir_all(&dir).unwrap();
    let server = cluster(&dir, &ns.0).await;

    for env in [vec![], vec![("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")]] {
        let fwd = Forward::start(&dir, &env, remote);
        let started = std::time::Instant::now();
        // Several connections at once, each larger than SPDY's 64 KiB initial window.
        let conns: Vec<_> = (0..6)
            .map(|i| tokio::spawn(round_trip(fwd.port, i, 100_000 + i * 7919)))
            .collect();
        let mut failed = Vec::new();
        for c in conns {
            if let Err(e) = c.await.unwrap() {
                failed.push(e);
            }
        }
        if !failed.is_empty() {
            panic!("{env:?}: {failed:?}\nkubectl: {}", fwd.stop());
        }
        eprintln!(
            "port-forward {env:?}: 6 concurrent connections (0.7 MB each way in all) in {:?}",
            started.elapsed()
        );
        // Then one more, after the others closed.
        round_trip(fwd.port, 9, 10).await.unwrap();
        let stderr = fwd.stop();
        assert!(!stderr.contains("error"), "{env:?}: {stderr}");
    }

    // Nothing listens: kubectl prints the kubelet's reason.
    let closed = egress_sim::netns::in_netns(&ns.0, || {
        std::net::TcpListener::bind(("127.0.0.1", 0)).map(|l| l.local_addr().unwrap().port())
    })
    .unwrap()
    .unwrap();
    let fwd = Forward::start(&dir, &[], closed);
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", fwd.port))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stderr = fwd.stop();
    assert!(
        stderr.contains(&format!("error forwarding port {closed} to pod p"))
            && stderr.contains("refused"),
        "{stderr}"
    );

    refusals(&server).await;

    // exec over WebSocket (the default) and plain SPDY: stdin, stdout, stderr, exit code.
    for env in [vec![], vec![("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")]] {
        let out = exec(
            &dir,
            &env,
            &[
                "-i",
                "p",
                "--",
                "sh",
                "-c",
                "cat; echo to-stderr >&2; exit 3",
            ],
        )
        .await;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(3), "{env:?}: {stdout}{stderr}");
        assert_eq!(stdout, "from-stdin\n", "{env:?}");
        assert!(stderr.contains("to-stderr"), "{env:?}: {stderr}");
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            attach(&dir, &env);
            terminal(&dir, &env);
        })
        .await
        .unwrap();
    }
}

/// `kubectl exec -it` from a 91x17 terminal (`script`'s): the command has a terminal, which
/// gets kubectl's size through the resize channel.
fn terminal(dir: &Path, env: &[(&str, &str)]) {
    let kubectl = format!(
        "kubectl --kubeconfig {0}/kubeconfig --cache-dir {0}/cache",
        dir.display()
    );
    // The size arrives after the command starts: the command waits for it (5 s at most).
    let wait = "for i in $(seq 50); do [ \"$(stty size)\" = \"17 91\" ] && echo resized && exit 0; sleep 0.1; done; stty size; exit 1";
    let out = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "stty cols 91 rows 17; {kubectl} exec -it p -- sh -c '[ -t 0 ] && {wait}'"
        ))
        .arg("/dev/null")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("resized"),
        "{env:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kubectl attach p`: the lines appended to the pod's log from then on, not the earlier ones.
fn attach(dir: &Path, env: &[(&str, &str)]) {
    let mut child = kubectl(dir, env)
        .args(["attach", "p"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Lines are appended until kubectl shows one (it may attach after the first ones).
    let log = dir.join("pod.log");
    let mut seen = None;
    for n in 0..40 {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, format!("attached-{n}\n").as_bytes()).unwrap();
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            seen = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let line = seen.unwrap_or_else(|| {
        panic!(
            "{env:?}: kubectl attach showed nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(line.starts_with("attached-"), "{env:?}: {line}");
}

/// Sends `request` (then `after`, once the head is answered) and returns what comes back
/// within 5 s.
async fn raw(server: &RunningApiServer, request: &str, after: &[u8]) -> Vec<u8> {
    let mut conn = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut sent = after.is_empty();
        while let Ok(n) = conn.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let Some(head) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if !sent {
                conn.write_all(after).await.unwrap();
                sent = true;
            }
            // A whole answer that is not an upgrade: done.
            let text = String::from_utf8_lossy(&got[..head]).to_ascii_lowercase();
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|l| l.trim().parse::<usize>().ok());
            if length.is_some_and(|l| got.len() >= head + 4 + l) {
                break;
            }
        }
    })
    .await;
    got
}

/// What the kubelet API refuses, and how it says so.
async fn refusals(server: &RunningApiServer) {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let pf = "GET /api/v1/namespaces/default/pods/p/portforward HTTP/1.1\r\nHost: x\r\n";
    let out = text(raw(server, &format!("{pf}\r\n"), b"").await);
    assert!(
        out.starts_with("HTTP/1.1 400")
            && out.contains("port-forward needs an upgrade to SPDY/3.1"),
        "{out}"
    );
    let exec = "POST /api/v1/namespaces/default/pods/p/exec?command=true&stdout=true HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
    let out = text(
        raw(
            server,
            &format!("{exec}X-Stream-Protocol-Version: channel.k8s.io\r\n\r\n"),
            b"",
        )
        .await,
    );
    assert!(
        out.starts_with("HTTP/1.1 403") && out.contains("unable to negotiate protocol"),
        "{out}"
    );
    // A SPDY/2 frame after the upgrade: GOAWAY with PROTOCOL_ERROR, and the connection ends.
    let upgrade = format!(
        "{pf}Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n"
    );
    let out = raw(server, &upgrade, &[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]).await;
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(out.starts_with(b"HTTP/1.1 101"), "{}", text(out.clone()));
    assert_eq!(
        &out[head_end..],
        &[0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1],
        "GOAWAY(last 0, PROTOCOL_ERROR)"
    );
}

/// `kubectl exec ARGS` with `from-stdin` on its standard input.
async fn exec(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = kubectl(dir, env);
    cmd.arg("exec")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"from-stdin\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}
