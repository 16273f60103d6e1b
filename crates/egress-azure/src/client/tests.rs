//! The retry loop's idempotency rule: a non-idempotent request (POST) is not re-sent after a
//! 5xx, which may have been processed, but is after a 429, which was not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every request with `status` (+ `Retry-After: 0`) and counts them.
async fn always(status: u16) -> (Url, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: Url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nretry-after: 0\r\ncontent-length: 2\r\n\r\n{{}}"
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, hits, task)
}

fn client(url: Url) -> ArmClient {
    ArmClient::builder(url)
        .static_token("t")
        .retry(RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_retry_after: Duration::from_secs(1),
            budget: Duration::from_secs(5),
        })
        .build()
        .unwrap()
}

fn post(client: &ArmClient) -> ArmRequest {
    ArmRequest {
        operation: "test.post",
        method: Method::Post,
        url: client.url("/subscriptions/s/providers/X/action", "1"),
        body: Some(b"{}".to_vec()),
        if_match: None,
        idempotent: false,
    }
}

#[tokio::test]
async fn non_idempotent_request_is_not_resent_after_5xx() {
    let (url, hits, task) = always(500).await;
    let c = client(url);
    let err = c.execute(&post(&c)).await.unwrap_err();
    assert_eq!(err.category(), crate::ErrorCategory::Transient);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let mut idempotent = post(&c);
    idempotent.idempotent = true;
    c.execute(&idempotent).await.unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 1 + 4);
    task.abort();
}

#[tokio::test]
async fn non_idempotent_request_is_resent_after_429() {
    let (url, hits, task) = always(429).await;
    let c = client(url);
    let err = c.execute(&post(&c)).await.unwrap_err();
    assert_eq!(err.category(), crate::ErrorCategory::Throttled);
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    task.abort();
}
