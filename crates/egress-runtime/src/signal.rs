//! The shutdown signal of every binary: SIGTERM (what Kubernetes sends) or Ctrl-C.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Installs the SIGTERM handler now and returns a future that completes on SIGTERM or
/// Ctrl-C; fails when the handler cannot be installed.
pub fn try_shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    })
}

/// Completes on SIGTERM or Ctrl-C; on Ctrl-C alone when no SIGTERM handler can be installed.
pub async fn shutdown_signal() {
    match try_shutdown_signal() {
        Ok(signal) => signal.await,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
