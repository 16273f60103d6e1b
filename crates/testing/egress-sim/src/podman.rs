//! podman with throwaway storage: every command gets `--root`/`--runroot`/`--tmpdir` under one
//! directory, so loading and running images leaves nothing in the machine's own container
//! storage, and [`Podman::destroy`] removes every container, mount and file of it. Also the
//! `podman run` arguments of a [`Container`] (pure, unit-tested).
//!
//! Fixed choices, each measured on the project's machines: `runc` (crun refuses the hybrid
//! cgroup v1/v2 hierarchy there), `cgroupfs` (no systemd), file events (no journald), and
//! explicit `--ulimit`s (podman raises RLIMIT_NOFILE and RLIMIT_NPROC by default, which a root
//! without CAP_SYS_RESOURCE may not).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A podman command failed.
#[derive(Debug, thiserror::Error)]
pub enum PodmanError {
    /// podman could not be started.
    #[error(
        "failed to run podman: {0} (install it with `make deps`: apt packages podman and runc)"
    )]
    Spawn(#[source] std::io::Error),
    /// podman reported an error.
    #[error("podman {what} failed: {stderr}")]
    Failed {
        /// What we asked.
        what: String,
        /// Its message.
        stderr: String,
    },
}

/// podman with its storage under one directory.
#[derive(Debug, Clone)]
pub struct Podman {
    dir: PathBuf,
}

/// The hard limit of RLIMIT_NPROC a podman container may get here: podman's own process runs
/// with at most this many (measured), and runc cannot give the container more.
const NPROC_CAP: u64 = 32768;

impl Podman {
    /// podman whose images, containers and state live under `dir` (created on first use).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Global flags of every command.
    pub fn global_args(&self) -> Vec<String> {
        let d = |sub: &str| self.dir.join(sub).display().to_string();
        vec![
            "--root".into(),
            d("storage"),
            "--runroot".into(),
            d("run"),
            "--tmpdir".into(),
            d("tmp"),
            "--storage-driver".into(),
            "overlay".into(),
            "--runtime".into(),
            "runc".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
        ]
    }

    /// `podman <global flags> <args>`.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new("podman");
        cmd.args(self.global_args()).args(args);
        cmd
    }

    /// Runs a podman command to completion; its stdout on success.
    pub fn run(&self, what: &str, args: &[String]) -> Result<String, PodmanError> {
        let out: Output = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(PodmanError::Spawn)?;
        if !out.status.success() {
            return Err(PodmanError::Failed {
                what: what.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Loads an OCI archive; returns the image reference it was stored under.
    pub fn load(&self, archive: &Path) -> Result<String, PodmanError> {
        let what = format!("load -i {}", archive.display());
        let out = self.run(
            &what,
            &[
                "load".into(),
                "-q".into(),
                "-i".into(),
                archive.display().to_string(),
            ],
        )?;
        out.lines()
            .find_map(|l| l.strip_prefix("Loaded image: "))
            .map(|r| r.split(',').next().unwrap_or(r).trim().to_string())
            .ok_or_else(|| PodmanError::Failed {
                what,
                stderr: format!("no 'Loaded image:' line in {out:?}"),
            })
    }

    /// Removes every container (killing running ones), unmounts whatever podman left mounted
    /// under the storage directory, and deletes it. Problems are returned, not raised: this
    /// runs during teardown, which must go on.
    pub fn destroy(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.dir.exists() {
            return problems;
        }
        let rm = ["rm", "--all", "--force", "--time", "0"].map(String::from);
        if let Err(e) = self.run("rm --all --force", &rm) {
            problems.push(e.to_string());
        }
        for mount in mounts_under(&self.dir) {
            if let Err(e) = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH) {
                problems.push(format!("failed to unmount {}: {e}", mount.display()));
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            problems.push(format!("failed to remove {}: {e}", self.dir.display()));
        }
        problems
    }
}

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo, whose mount
/// point field escapes spaces as `\040`).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    out.dedup();
    out
}

/// The network a container joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The host's (`hostNetwork: true` on the host itself).
    Host,
    /// A named network namespace (`hostNetwork: true` on a simulated node).
    Netns(PathBuf),
}

/// A bind mount at the same or another path, with podman's options (`ro`, `rshared`, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mount {
    /// Host path.
    pub host: PathBuf,
    /// Path in the container.
    pub container: PathBuf,
    /// Comma-separated options (empty: read-write, private).
    pub options: String,
}

/// What a container is allowed, mirroring a pod's `securityContext`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `privileged: true`.
    Privileged,
    /// `runAsUser` (the image's user when `None`), `allowPrivilegeEscalation: false`,
    /// `readOnlyRootFilesystem: true`, `capabilities: {drop: [ALL]}`.
    Restricted {
        /// UID:GID, or the image's `User`.
        user: Option<&'static str>,
    },
}

/// One `podman run` (foreground, removed when it exits).
#[derive(Debug, Clone)]
pub struct Container {
    /// Container name (unique among running containers of the storage; replaces an old one).
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Network.
    pub network: Network,
    /// Privileges.
    pub security: Security,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Entrypoint override (the image's when empty).
    pub entrypoint: Vec<String>,
    /// Arguments after the image.
    pub args: Vec<String>,
}

/// Soft and hard limits for `--ulimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimits {
    /// RLIMIT_NOFILE hard limit.
    pub nofile: u64,
    /// RLIMIT_NPROC hard limit.
    pub nproc: u64,
}

impl Ulimits {
    /// The calling process's hard limits (never more than podman can pass on).
    pub fn current() -> Self {
        use nix::sys::resource::{Resource, getrlimit};
        let hard = |r| getrlimit(r).map(|(_, h)| h).unwrap_or(1024);
        Self {
            nofile: hard(Resource::RLIMIT_NOFILE),
            nproc: hard(Resource::RLIMIT_NPROC).min(NPROC_CAP),
        }
    }
}

impl Container {
    /// The `run ...` arguments (after the global flags).
    pub fn run_args(&self, limits: Ulimits) -> Vec<String> {
        let mut a: Vec<String> = ["run", "--rm", "--replace", "--pull=never", "--name"]
            .map(String::from)
            .into();
        a.push(self.name.clone());
        a.push(match &self.network {
            Network::Host => "--network=host".into(),
            Network::Netns(p) => format!("--network=ns:{}", p.display()),
        });
        a.push(format!("--ulimit=nofile={0}:{0}", limits.nofile));
        a.push(format!("--ulimit=nproc={0}:{0}", limits.nproc));
        match self.security {
            Security::Privileged => a.push("--privileged".into()),
            Security::Restricted { user } => {
                if let Some(u) = user {
                    a.push(format!("--user={u}"));
                }
                a.extend(
                    [
                        "--read-only",
                        "--cap-drop=all",
                        "--security-opt=no-new-privileges",
                    ]
                    .map(String::from),
                );
            }
        }
        for m in &self.mounts {
            let opts = if m.options.is_empty() {
                String::new()
            } else {
                format!(":{}", m.options)
            };
            a.push(format!(
                "--volume={}:{}{opts}",
                m.host.display(),
                m.container.display()
            ));
        }
        for (k, v) in &self.env {
            a.push(format!("--env={k}={v}"));
        }
        if let Some((first, rest)) = self.entrypoint.split_first() {
            a.push(format!("--entrypoint={first}"));
            a.push(self.image.clone());
            a.extend(rest.iter().cloned());
        } else {
            a.push(self.image.clone());
        }
        a.extend(self.args.iter().cloned());
        a
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn container(security: Security) -> Container {
        Container {
            name: "c1".into(),
            image: "localhost/egress-cni-manager:0.1.0".into(),
            network: Network::Netns("/run/netns/node-a".into()),
            security,
            mounts: vec![Mount {
                host: "/run/egress-sim/r1/nodes/a/net.d".into(),
                container: "/run/egress-sim/r1/nodes/a/net.d".into(),
                options: String::new(),
            }],
            env: vec![("KUBECONFIG".into(), "/k".into())],
            entrypoint: vec![],
            args: vec!["--node-name".into(), "a".into()],
        }
    }

    const LIMITS: Ulimits = Ulimits {
        nofile: 20000,
        nproc: 32768,
    };

    #[test]
    fn restricted_containers_mirror_the_chart_security_context() {
        let a = container(Security::Restricted { user: Some("0:0") }).run_args(LIMITS);
        assert_eq!(
            a,
            [
                "run",
                "--rm",
                "--replace",
                "--pull=never",
                "--name",
                "c1",
                "--network=ns:/run/netns/node-a",
                "--ulimit=nofile=20000:20000",
                "--ulimit=nproc=32768:32768",
                "--user=0:0",
                "--read-only",
                "--cap-drop=all",
                "--security-opt=no-new-privileges",
                "--volume=/run/egress-sim/r1/nodes/a/net.d:/run/egress-sim/r1/nodes/a/net.d",
                "--env=KUBECONFIG=/k",
                "localhost/egress-cni-manager:0.1.0",
                "--node-name",
                "a",
            ]
        );
    }

    #[test]
    fn privileged_containers_with_an_entrypoint_put_its_arguments_after_the_image() {
        let mut c = container(Security::Privileged);
        c.network = Network::Host;
        c.mounts[0].options = "rshared".into();
        c.entrypoint = vec!["/bin/sh".into(), "-ec".into(), "ip netns add x".into()];
        c.args.clear();
        let a = c.run_args(LIMITS);
        assert!(a.contains(&"--privileged".to_string()), "{a:?}");
        assert!(
            !a.iter()
                .any(|x| x == "--read-only" || x.starts_with("--user"))
        );
        assert!(a.contains(&"--network=host".to_string()));
        assert!(a.iter().any(|x| x.ends_with("/net.d:rshared")), "{a:?}");
        let tail = &a[a.len() - 4..];
        assert_eq!(
            tail,
            [
                "--entrypoint=/bin/sh",
                "localhost/egress-cni-manager:0.1.0",
                "-ec",
                "ip netns add x"
            ]
        );
    }

    #[test]
    fn storage_stays_under_the_given_directory() {
        let p = Podman::new(Path::new("/tmp/x"));
        let g = p.global_args();
        for flag in ["--root", "--runroot", "--tmpdir"] {
            let i = g.iter().position(|a| a == flag).unwrap();
            assert!(g[i + 1].starts_with("/tmp/x/"), "{flag} {}", g[i + 1]);
        }
    }

    #[test]
    fn mounts_under_lists_deepest_first() {
        // The root filesystem is a mount point in every test environment.
        assert!(mounts_under(Path::new("/")).last().is_some());
        assert!(mounts_under(Path::new("/nonexistent-egress-sim")).is_empty());
    }
}
