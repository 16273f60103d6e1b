//! Leader election on a Lease and the HTTP endpoints.

use egress_operator::{LeaderElection, RunOptions};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out[9..12].parse().unwrap();
    (code, out)
}

async fn replica(h: &Harness, id: &str) -> (Running, std::net::SocketAddr) {
    let listener = egress_runtime::listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = RunOptions {
        leader_election: Some(LeaderElection {
            namespace: SECRET_NS.into(),
            lease_name: "0a299682.microsoft.com".into(),
            identity: id.into(),
            duration_seconds: 2,
            grace_seconds: 1,
        }),
        listeners: vec![listener],
    };
    (h.operator_with(h.config(), opts).await, addr)
}

async fn holder(h: &Harness) -> Option<String> {
    let lease = Api::<Lease>::namespaced(h.client.clone(), SECRET_NS)
        .get_opt("0a299682.microsoft.com")
        .await
        .ok()??;
    lease.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_a_standby_takes_over_after_a_graceful_stop() {
    let h = Harness::start().await;
    let (a, a_addr) = replica(&h, "replica-a").await;
    h.until("replica-a to lead", || async {
        (holder(&h).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let (b, b_addr) = replica(&h, "replica-b").await;
    h.create_sgc("le", PROFILE).await;
    h.ready("le").await;

    for addr in [a_addr, b_addr] {
        assert_eq!(get(addr, "/healthz").await.0, 200);
        assert_eq!(get(addr, "/readyz").await.0, 200, "a standby is ready too");
        assert_eq!(get(addr, "/nope").await.0, 404);
    }
    let (code, text) = get(a_addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        text.contains(
            "egress_operator_reconciles_total{controller=\"gateway-pool\",result=\"success\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("egress_operator_azure_arm_requests_total"),
        "{text}"
    );
    assert_eq!(
        b.metrics.reconciles("gateway-pool", "success"),
        0,
        "the standby reconciled"
    );

    a.stop().await;
    h.until("replica-b to lead", || async {
        (holder(&h).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    h.create_sgc("le2", PROFILE).await;
    h.ready("le2").await;
    assert!(b.metrics.reconciles("gateway-pool", "success") >= 1);
    b.stop().await;
}
