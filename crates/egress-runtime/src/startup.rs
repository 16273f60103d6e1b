//! What every long-running binary does the same way before it runs: build its Kubernetes
//! client from `--kubeconfig` (or the usual inference) and bind its listeners, with errors
//! that say which step failed.

use std::net::SocketAddr;
use std::path::Path;

/// Why a binary could not start its Kubernetes client or listeners.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The kubeconfig could not be read or used.
    #[error("failed to read the kubeconfig")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// No Kubernetes configuration was found.
    #[error("failed to find a Kubernetes configuration")]
    InferConfig(#[from] kube::config::InferConfigError),
    /// The Kubernetes client could not be built.
    #[error("failed to build the Kubernetes client")]
    Kube(#[from] kube::Error),
    /// A listener could not be bound.
    #[error("failed to listen on {addr}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The client for `kubeconfig`, or, without one, from `$KUBECONFIG`, `~/.kube/config`, then
/// the in-cluster service account (kube's inference order).
pub async fn kube_client(kubeconfig: Option<&Path>) -> Result<kube::Client, StartupError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Binds `addr` (port 0 picks a free one).
pub async fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartupError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Listen { addr, source })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn a_missing_kubeconfig_names_the_step() {
        let Err(err) = kube_client(Some(Path::new("/nonexistent/kubeconfig"))).await else {
            panic!("a missing kubeconfig gave a client");
        };
        assert!(matches!(err, StartupError::Kubeconfig(_)), "{err:?}");
        assert!(
            crate::error_chain(&err).starts_with("failed to read the kubeconfig: "),
            "{}",
            crate::error_chain(&err)
        );
    }

    #[tokio::test]
    async fn a_taken_port_names_the_address() {
        let first = listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = first.local_addr().unwrap();
        let err = listen(addr).await.unwrap_err();
        assert_eq!(err.to_string(), format!("failed to listen on {addr}"));
    }
}
