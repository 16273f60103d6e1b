//! `kubectl exec` on a simulated pod: the pod has no image, so its "container" is this
//! machine's userland entered into the pod's network namespace (`nsenter --net`), spoken to
//! over any of the remote-command transports of `streams` (WebSocket v5/v4, SPDY v4). A pod's command sees the pod's `/etc/hosts` and host name (private mount and UTS
//! namespaces), so `curl ifconfig.me` reaches the simulated internet as the AKS article has it.
//! With `tty=true` the command gets a pseudo-terminal as its controlling terminal
//! (`setsid -c`); resizes are applied with `stty`. The exit code travels in the `Status`
//! (`NonZeroExitCode` with an `ExitCode` cause), which kubectl turns into its own exit code.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::streams::{Input, Output, STDERR, STDOUT};

/// What to run (the query of `/exec/NS/POD/CONTAINER`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecRequest {
    /// argv.
    pub command: Vec<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr (not with a TTY: it shares the terminal).
    pub stderr: bool,
    /// Allocate a terminal.
    pub tty: bool,
}

impl ExecRequest {
    /// Parses the query (`command` repeated, booleans `true`/`1`).
    pub fn parse(query: &str) -> Result<Self, String> {
        let r = Self::parse_streams(query);
        if r.command.is_empty() {
            return Err("you must specify at least one command for the container".into());
        }
        Ok(r)
    }

    /// Parses the query without requiring a command (`attach` has none).
    pub fn parse_streams(query: &str) -> Self {
        let mut r = Self::default();
        for (k, v) in form_pairs(query) {
            let on = matches!(v.as_str(), "true" | "1");
            match k.as_str() {
                "command" => r.command.push(v),
                "stdin" | "input" => r.stdin = on,
                "stdout" | "output" => r.stdout = on,
                "stderr" | "error" => r.stderr = on,
                "tty" => r.tty = on,
                _ => {}
            }
        }
        if r.tty {
            r.stderr = false;
        }
        r
    }

    /// The streams a SPDY client opens for this request.
    pub fn wanted(&self) -> crate::streams::Wanted {
        crate::streams::Wanted {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            resize: self.tty,
        }
    }
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space).
pub fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The `Status` sent on the error stream when the command ends.
pub fn exit_status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {}, "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// Where and as whom the command runs.
#[derive(Debug, Clone)]
pub struct Target {
    /// Network namespace name (under /run/netns).
    pub netns: String,
    /// Pod name (the command's `HOSTNAME`).
    pub pod: String,
    /// The pod's `/etc/hosts`: when set, the command also gets a private mount and UTS
    /// namespace with that file on `/etc/hosts` and the pod's name as host name, as a
    /// container has (hostNetwork pods keep the node's).
    pub hosts: Option<PathBuf>,
}

/// The process of a session, with its streams as async handles.
struct Running {
    child: tokio::process::Child,
    input: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)>,
    tty_path: Option<PathBuf>,
}

fn command(target: &Target, req: &ExecRequest) -> tokio::process::Command {
    let mut c = if req.tty {
        let mut c = tokio::process::Command::new("setsid");
        c.arg("-c").arg("nsenter");
        c
    } else {
        tokio::process::Command::new("nsenter")
    };
    c.arg(format!("--net=/run/netns/{}", target.netns))
        .arg("--");
    if let Some(hosts) = &target.hosts {
        c.args([
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ])
        .arg(r#"mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(hosts)
        .arg(&target.pod);
    }
    c.args(&req.command)
        .current_dir("/")
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("HOSTNAME", &target.pod)
        .kill_on_drop(true);
    if req.tty {
        c.env("TERM", "xterm");
    }
    c
}

fn spawn(target: &Target, req: &ExecRequest) -> std::io::Result<Running> {
    let mut cmd = command(target, req);
    if req.tty {
        let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
        let tty_path = nix::unistd::ttyname(&pty.slave).ok();
        let slave = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
        cmd.stdin(slave(&pty.slave)?)
            .stdout(slave(&pty.slave)?)
            .stderr(slave(&pty.slave)?);
        let child = cmd.spawn()?;
        drop(pty.slave);
        let master = std::fs::File::from(pty.master);
        let reader = tokio::fs::File::from_std(master.try_clone()?);
        let writer = tokio::fs::File::from_std(master);
        return Ok(Running {
            child,
            input: req
                .stdin
                .then(|| Box::new(writer) as Box<dyn AsyncWrite + Send + Unpin>),
            outputs: vec![(STDOUT, Box::new(reader))],
            tty_path,
        });
    }
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(pipe(req.stdin))
        .stdout(pipe(req.stdout))
        .stderr(pipe(req.stderr));
    let mut child = cmd.spawn()?;
    let mut outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)> = Vec::new();
    if let Some(o) = child.stdout.take() {
        outputs.push((STDOUT, Box::new(o)));
    }
    if let Some(e) = child.stderr.take() {
        outputs.push((STDERR, Box::new(e)));
    }
    let input = child
        .stdin
        .take()
        .map(|i| Box::new(i) as Box<dyn AsyncWrite + Send + Unpin>);
    Ok(Running {
        child,
        input,
        outputs,
        tty_path: None,
    })
}

/// Applies a resize message (`{"Width": W, "Height": H}`) to the terminal.
async fn resize(tty: &std::path::Path, msg: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(msg) else {
        return;
    };
    let (w, h) = (
        v["Width"].as_u64().unwrap_or(0),
        v["Height"].as_u64().unwrap_or(0),
    );
    if w == 0 || h == 0 {
        return;
    }
    let _ = tokio::process::Command::new("stty")
        .arg("-F")
        .arg(tty)
        .args(["cols", &w.to_string(), "rows", &h.to_string()])
        .status()
        .await;
}

/// Runs one exec session until the command ends (or the client goes away, which kills it):
/// `input` is what the client sends (its end means the client is gone), `output` what it
/// gets, the final `Status` last.
pub async fn session(
    target: Target,
    req: ExecRequest,
    mut input: mpsc::Receiver<Input>,
    output: mpsc::Sender<Output>,
) {
    let mut running = match spawn(&target, &req) {
        Ok(r) => r,
        Err(e) => {
            let status = json!({"metadata": {}, "status": "Failure", "reason": "InternalError",
                "message": format!("failed to start {:?} in the pod's network namespace: {e}", req.command)});
            let _ = output.send(Output::Status(status)).await;
            return;
        }
    };
    let mut pumps = Vec::new();
    for (stream, mut out) in std::mem::take(&mut running.outputs) {
        let tx = output.clone();
        pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            // A terminal's master answers EIO once the last process holding it exits.
            while let Ok(n) = out.read(&mut buf).await {
                if n == 0
                    || tx
                        .send(Output::Data(stream, buf[..n].to_vec()))
                        .await
                        .is_err()
                {
                    break;
                }
            }
        }));
    }
    let mut stdin = running.input.take();
    let tty = running.tty_path.clone();
    let exit = loop {
        tokio::select! {
            status = running.child.wait() => break status.ok(),
            msg = input.recv() => match msg {
                Some(Input::Stdin(data)) => {
                    if let Some(i) = stdin.as_mut() && i.write_all(&data).await.is_err() {
                        stdin = None;
                    }
                }
                Some(Input::StdinEnd) => {
                    if let Some(mut i) = stdin.take() {
                        let _ = i.shutdown().await;
                    }
                }
                Some(Input::Resize(msg)) => {
                    if let Some(t) = &tty {
                        resize(t, &msg).await;
                    }
                }
                None => {
                    // The client is gone: the command goes with it (kill_on_drop).
                    let _ = running.child.start_kill();
                    let _ = running.child.wait().await;
                    return;
                }
            },
        }
    };
    drop(stdin);
    for p in pumps {
        // Output written before the exit is forwarded; a background child holding the
        // pipes open does not hold the session.
        if tokio::time::timeout(Duration::from_secs(2), p)
            .await
            .is_err()
        {
            tracing::debug!("exec output still open after the command ended");
        }
    }
    let code = exit.map_or(137, |s| {
        s.code()
            .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(9))
    });
    let _ = output
        .send(Output::Status(exit_status(&req.command, code)))
        .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn queries_parse_like_the_kubelets() {
        let r = ExecRequest::parse("command=curl&command=-s&command=http%3A%2F%2F192.0.2.1%2F&stdin=true&stdout=true&stderr=true&tty=false").unwrap();
        assert_eq!(r.command, vec!["curl", "-s", "http://192.0.2.1/"]);
        assert!(r.stdin && r.stdout && r.stderr && !r.tty);
        let t =
            ExecRequest::parse("command=sh&tty=true&stdin=true&stdout=true&stderr=true").unwrap();
        assert!(t.tty && !t.stderr, "a terminal merges stderr");
        assert!(
            ExecRequest::parse("stdout=true")
                .unwrap_err()
                .contains("at least one command")
        );
        assert_eq!(form_pairs("a=b+c%20d")[0].1, "b c d");
    }

    #[test]
    fn exit_codes_travel_in_the_status() {
        assert_eq!(exit_status(&["true".into()], 0)["status"], "Success");
        let s = exit_status(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
    }
}
