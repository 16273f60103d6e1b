//! wireguard-go backend: we own the daemon's lifecycle.
//!
//! Each device gets a daemon started under a deterministic unique name (`wg` + 13 hex digits
//! of a hash of its final namespace and name) in the namespace that must own the UDP socket.
//! Once configured, its TUN link is moved into the target namespace and renamed there in a
//! single netlink request, so the UDP socket stays behind, as with the kernel's
//! create-then-move. The UAPI socket keeps the unique name, which is how a restarted process
//! finds (adopts) the device without recreating it. Daemons are stopped by removing their
//! socket and signalling the PID read from the socket itself (`SO_PEERCRED`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::Pid;
use wireguard_control::{Backend, Device};

use super::{
    blocking, device_error, ensure_port_free, interface_update, keepalive_update, observed_from,
    peer_update, wg_name,
};
use crate::control::{LinkControl, PeerChange, WireGuardControl};
use crate::error::WireGuardError;
use crate::exec::NetlinkLinks;
use crate::key::PrivateKey;
use crate::names::{InterfaceName, NetnsRef};
use crate::netns::run_in_netns;
use crate::observed::{ObservedWgDevice, WgDeviceId};
use crate::spec::Peer;

/// Where wireguard-go (and `wireguard-control`) put UAPI sockets.
const UAPI_DIR: &str = "/var/run/wireguard";

/// How the daemons are run.
#[derive(Debug, Clone)]
pub struct UserspaceConfig {
    /// The daemon binary.
    pub program: PathBuf,
    /// Directory for the daemons' logs (`<uapi name>.log`).
    pub log_dir: PathBuf,
    /// How long a daemon may take to open its UAPI socket.
    pub start_timeout: Duration,
    /// How long a daemon may take to exit before it is killed.
    pub stop_timeout: Duration,
}

impl Default for UserspaceConfig {
    fn default() -> Self {
        Self {
            program: "wireguard-go".into(),
            log_dir: "/run/egress-dataplane/wireguard".into(),
            start_timeout: Duration::from_secs(5),
            stop_timeout: Duration::from_secs(3),
        }
    }
}

/// WireGuard through wireguard-go daemons this process starts, supervises and stops.
#[derive(Debug)]
pub struct UserspaceWireGuard {
    links: Arc<NetlinkLinks>,
    daemons: Arc<Daemons>,
}

/// The daemon side, shared with blocking tasks.
#[derive(Debug)]
struct Daemons {
    config: UserspaceConfig,
    /// Daemons started by this process, by UAPI name, so they are reaped when stopped.
    children: Mutex<HashMap<String, Child>>,
    /// UAPI names set with `name_device` (pods), used instead of [`uapi_name`].
    names: Mutex<HashMap<WgDeviceId, String>>,
}

/// The daemon name of a device: stable across restarts, unique per (namespace, name).
pub fn uapi_name(device: &WgDeviceId) -> String {
    let id = match &device.netns {
        NetnsRef::Current => "current".to_owned(),
        NetnsRef::Named(name) => format!("named:{name}"),
        NetnsRef::Path(path) => format!("path:{}", path.display()),
    };
    // FNV-1a, 64 bit: tiny, stable across Rust versions (unlike DefaultHasher).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes().chain([b'/']).chain(device.name.as_str().bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("wg{:013x}", hash >> 12)
}

fn socket_path(uapi: &str) -> PathBuf {
    Path::new(UAPI_DIR).join(format!("{uapi}.sock"))
}

/// PID of the process listening on a UAPI socket.
fn peer_pid(path: &Path) -> Option<Pid> {
    let stream = UnixStream::connect(path).ok()?;
    let creds = getsockopt(&stream, PeerCredentials).ok()?;
    Some(Pid::from_raw(creds.pid()))
}

fn process_gone(pid: Pid) -> bool {
    if matches!(kill(pid, None), Err(Errno::ESRCH)) {
        return true;
    }
    // A zombie waiting for its parent to reap it is gone for our purposes.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(2048)));
        let _ = file.read_to_string(&mut text);
    }
    let text = text.trim();
    if text.is_empty() {
        "no log output".into()
    } else if let Some(hint) = inotify_hint(text) {
        format!("{hint}; log: {text}")
    } else {
        format!("log: {text}")
    }
}

/// wireguard-go watches its UAPI socket with inotify; past the per-user instance limit it
/// dies at start with EMFILE, which reads like an open-file problem but is not one.
fn inotify_hint(log: &str) -> Option<&'static str> {
    log.contains("Failed to listen on uapi socket: too many open files").then_some(
        "wireguard-go could not get an inotify instance: fs.inotify.max_user_instances is exhausted (one per wireguard-go daemon; the CNI manager raises it at start, see --inotify-instances-min)",
    )
}

impl UserspaceWireGuard {
    /// A backend moving links with `links`.
    pub fn new(links: Arc<NetlinkLinks>, config: UserspaceConfig) -> Self {
        Self {
            links,
            daemons: Arc::new(Daemons {
                config,
                children: Mutex::new(HashMap::new()),
                names: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// PID of the daemon serving `device`, if one is running.
    pub fn daemon_pid(&self, device: &WgDeviceId) -> Option<u32> {
        peer_pid(&socket_path(&self.daemons.uapi(device)))
            .and_then(|p| u32::try_from(p.as_raw()).ok())
    }

    /// Stops every daemon this instance started (for tests and full teardown; a normal
    /// daemon shutdown leaves tunnels running so a restart can adopt them).
    pub fn stop_all_started(&self) {
        let names: Vec<String> = self.daemons.lock().keys().cloned().collect();
        for uapi in names {
            let _ = self.daemons.stop_daemon(&uapi);
        }
    }

    async fn stop(&self, device: &WgDeviceId) -> Result<(), WireGuardError> {
        let daemons = self.daemons.clone();
        let dev = device.clone();
        blocking(device, move || {
            daemons
                .stop_daemon(&daemons.uapi(&dev))
                .map_err(|reason| WireGuardError::Stop {
                    device: dev,
                    reason,
                })
        })
        .await
    }

    fn require_socket(
        &self,
        device: &WgDeviceId,
    ) -> Result<wireguard_control::InterfaceName, WireGuardError> {
        let uapi = self.daemons.uapi(device);
        // Without a live socket, wireguard-control would start an unsupervised daemon itself.
        if UnixStream::connect(socket_path(&uapi)).is_err() {
            return Err(WireGuardError::NotFound {
                device: device.clone(),
            });
        }
        wg_name(&uapi).map_err(device_error(device, "name the UAPI socket"))
    }
}

impl Daemons {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Child>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The daemon (UAPI socket, TUN) name of `device`.
    fn uapi(&self, device: &WgDeviceId) -> String {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(device)
            .cloned()
            .unwrap_or_else(|| uapi_name(device))
    }

    /// Stops the daemon named `uapi`: remove its socket (wireguard-go exits when the file
    /// goes), SIGTERM, wait, SIGKILL after the timeout. Its TUN disappears with it.
    fn stop_daemon(&self, uapi: &str) -> Result<(), String> {
        let path = socket_path(uapi);
        let mut child = self.lock().remove(uapi);
        let pid = peer_pid(&path).or_else(|| {
            child
                .as_ref()
                .and_then(|c| i32::try_from(c.id()).ok().map(Pid::from_raw))
        });
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("failed to remove {}: {e}", path.display())),
        }
        let Some(pid) = pid else { return Ok(()) };
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + self.config.stop_timeout;
        let mut gone = || match child.as_mut() {
            Some(c) => c.try_wait().map(|s| s.is_some()).unwrap_or(true),
            None => process_gone(pid),
        };
        while !gone() {
            if Instant::now() > deadline {
                let _ = kill(pid, Signal::SIGKILL);
                if let Some(c) = child.as_mut() {
                    let _ = c.wait();
                }
                return Err(format!(
                    "daemon {pid} ignored SIGTERM for {:?} and was killed",
                    self.config.stop_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// The log file of the daemon named `uapi`.
    fn log_path(&self, uapi: &str) -> PathBuf {
        self.config.log_dir.join(format!("{uapi}.log"))
    }

    /// Starts `wireguard-go -f <uapi>` in `socket_netns` and waits for its UAPI socket.
    fn start_daemon(
        &self,
        device: &WgDeviceId,
        socket_netns: &NetnsRef,
        uapi: &str,
    ) -> Result<(), WireGuardError> {
        let program = self.config.program.clone();
        let start_error = |reason: String| WireGuardError::Start {
            program: program.display().to_string(),
            device: device.clone(),
            reason,
        };
        fs::create_dir_all(&self.config.log_dir).map_err(|e| {
            start_error(format!(
                "failed to create {}: {e}",
                self.config.log_dir.display()
            ))
        })?;
        fs::create_dir_all(UAPI_DIR)
            .map_err(|e| start_error(format!("failed to create {UAPI_DIR}: {e}")))?;
        let log_path = self.log_path(uapi);
        let log = File::create(&log_path)
            .map_err(|e| start_error(format!("failed to create {}: {e}", log_path.display())))?;
        let log_err = log.try_clone().map_err(|e| start_error(e.to_string()))?;
        let name = uapi.to_owned();
        let spawn_program = program.clone();
        let spawned = run_in_netns(socket_netns, move || {
            Command::new(spawn_program)
                .arg("-f")
                .arg(name)
                .env("LOG_LEVEL", "error")
                .stdin(Stdio::null())
                // A file, not a pipe: the daemon must outlive us without dying of SIGPIPE.
                .stdout(log)
                .stderr(log_err)
                // Its own process group: a ctrl-c aimed at us must not take the tunnels down.
                .process_group(0)
                .spawn()
        })?;
        let mut child = spawned.map_err(|e| start_error(e.to_string()))?;
        let path = socket_path(uapi);
        let deadline = Instant::now() + self.config.start_timeout;
        loop {
            if UnixStream::connect(&path).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(start_error(format!(
                    "exited with {status}; {}",
                    log_tail(&log_path)
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(start_error(format!(
                    "no UAPI socket after {:?}; {}",
                    self.config.start_timeout,
                    log_tail(&log_path)
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.lock().insert(uapi.to_owned(), child);
        Ok(())
    }

    /// Everything up to the move: stale daemon gone, port checked, daemon started and
    /// configured. On failure the daemon is stopped again.
    fn start_configured(
        &self,
        device: &WgDeviceId,
        socket_netns: &NetnsRef,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<String, WireGuardError> {
        let uapi = self.uapi(device);
        // A leftover daemon under this name (interrupted create) is replaced.
        if socket_path(&uapi).exists() {
            self.stop_daemon(&uapi)
                .map_err(|reason| WireGuardError::Stop {
                    device: device.clone(),
                    reason,
                })?;
        }
        if let Some(port) = listen_port {
            ensure_port_free(device, socket_netns, port)?;
        }
        self.start_daemon(device, socket_netns, &uapi)?;
        let configured = wg_name(&uapi)
            .map_err(device_error(device, "name the UAPI socket"))
            .and_then(|name| {
                interface_update(private_key, listen_port)
                    .apply(&name, Backend::Userspace)
                    .map_err(device_error(device, "set private key and listen port"))
            });
        if let Err(e) = configured {
            // A daemon that died right after its socket appeared says why in its log.
            let log = self.log_path(&uapi);
            let _ = self.stop_daemon(&uapi);
            let tail = log_tail(&log);
            if inotify_hint(&tail).is_some() {
                return Err(WireGuardError::Start {
                    program: self.config.program.display().to_string(),
                    device: device.clone(),
                    reason: tail,
                });
            }
            return Err(e);
        }
        Ok(uapi)
    }
}

#[async_trait]
impl WireGuardControl for UserspaceWireGuard {
    async fn observe(
        &self,
        device: &WgDeviceId,
    ) -> Result<Option<ObservedWgDevice>, WireGuardError> {
        let device = device.clone();
        let dev = device.clone();
        let uapi = self.daemons.uapi(&device);
        blocking(&device, move || {
            if !socket_path(&uapi).exists() {
                return Ok(None);
            }
            let name = wg_name(&uapi).map_err(device_error(&dev, "name the UAPI socket"))?;
            match Device::get(&name, Backend::Userspace) {
                Ok(d) => Ok(Some(observed_from(&d))),
                // A socket file without a daemon: the device is gone.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(device_error(&dev, "read the device")(e)),
            }
        })
        .await
    }

    async fn create(
        &self,
        device: &WgDeviceId,
        socket_netns: &NetnsRef,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<(), WireGuardError> {
        let daemons = self.daemons.clone();
        let (dev, ns, key) = (device.clone(), socket_netns.clone(), private_key.clone());
        let uapi = blocking(device, move || {
            daemons.start_configured(&dev, &ns, &key, listen_port)
        })
        .await?;
        let moved = match uapi.parse::<InterfaceName>() {
            Ok(tun) => self
                .links
                .move_link(socket_netns, &tun, &device.netns, Some(&device.name))
                .await
                .map_err(|e| WireGuardError::Link {
                    device: device.clone(),
                    source: Box::new(e),
                }),
            Err(e) => Err(device_error(device, "name the TUN link")(io::Error::other(
                e.to_string(),
            ))),
        };
        if let Err(e) = moved {
            // Stopping the daemon removes its TUN wherever it is: nothing is left behind.
            let _ = self.stop(device).await;
            return Err(e);
        }
        tracing::info!(%device, uapi, "started wireguard-go");
        Ok(())
    }

    async fn configure(
        &self,
        device: &WgDeviceId,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<(), WireGuardError> {
        let name = self.require_socket(device)?;
        let update = interface_update(private_key, listen_port);
        let dev = device.clone();
        blocking(device, move || {
            update
                .apply(&name, Backend::Userspace)
                .map_err(device_error(
                    &dev,
                    "set private key and listen port (the daemon refused: port in use?)",
                ))
        })
        .await
    }

    async fn delete(&self, device: &WgDeviceId) -> Result<(), WireGuardError> {
        self.stop(device).await?;
        // Whatever still carries the name (a link that was never ours) goes too.
        self.links
            .delete_link(&device.netns, &device.name)
            .await
            .map_err(|e| WireGuardError::Link {
                device: device.clone(),
                source: Box::new(e),
            })
    }

    async fn update_peers(
        &self,
        device: &WgDeviceId,
        changes: &[PeerChange],
    ) -> Result<(), WireGuardError> {
        let name = self.require_socket(device)?;
        let update = peer_update(changes);
        let dev = device.clone();
        let count = changes.len();
        blocking(device, move || {
            update
                .apply(&name, Backend::Userspace)
                .map_err(device_error(&dev, format!("apply {count} peer change(s)")))
        })
        .await
    }

    fn name_device(&self, device: &WgDeviceId, socket_name: &InterfaceName) {
        self.daemons
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.clone(), socket_name.as_str().to_owned());
    }

    async fn set_peer_keepalive(
        &self,
        device: &WgDeviceId,
        peer: &Peer,
        seconds: u16,
        recreate: bool,
    ) -> Result<(), WireGuardError> {
        let name = self.require_socket(device)?;
        let update = keepalive_update(peer, seconds, recreate);
        let dev = device.clone();
        blocking(device, move || {
            update
                .apply(&name, Backend::Userspace)
                .map_err(device_error(&dev, "set the gateway peer's keepalive"))
        })
        .await
    }
}

#[cfg(test)]
mod inotify_tests {
    #[test]
    fn wireguard_go_dying_of_the_inotify_limit_is_named() {
        let log = "ERROR: (wgp1) 2026/12/04 14:45:12 Failed to listen on uapi socket: too many open files";
        assert!(super::inotify_hint(log).is_some_and(|h| h.contains("max_user_instances")));
        assert!(super::inotify_hint("ERROR: something else").is_none());
    }
}
