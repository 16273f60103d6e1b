//! Watch: events from a resourceVersion, selector transitions, bookmarks, timeoutSeconds, 410 for
//! compacted history, and kube-runtime's watcher and Controller on top of it, including recovery
//! after dropped connections and a 410.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::mpsc;

use crate::common::{start, start_with, wait_for};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}),
    )
    .unwrap()
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("event decodes")
}

/// Waits (bounded) until `want` arrives on `rx`, skipping other messages.
async fn expect(
    rx: &mut mpsc::UnboundedReceiver<String>,
    want: &str,
) -> Result<(), tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if rx.recv().await.expect("sender alive") == want {
                return;
            }
        }
    })
    .await
}

fn describe(ev: &WatchEvent<ConfigMap>) -> String {
    match ev {
        WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.clone().unwrap()),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.clone().unwrap()),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.clone().unwrap()),
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_changes_in_order() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let first = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(describe(&next_event(&mut stream).await));
    }
    assert_eq!(got, vec!["ADDED b", "MODIFIED a", "DELETED b"]);
}

#[tokio::test]
async fn label_changes_move_objects_in_and_out_of_a_selected_watch() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let wp = WatchParams::default().labels("pick=yes");
    let mut stream = api.watch(&wp, "0").await.unwrap().boxed();
    let label = |v: &str| Patch::Merge(json!({"metadata": {"labels": {"pick": v}}}));
    api.patch("a", &PatchParams::default(), &label("yes"))
        .await
        .unwrap();
    api.patch("a", &PatchParams::default(), &label("no"))
        .await
        .unwrap();
    assert_eq!(describe(&next_event(&mut stream).await), "ADDED a");
    assert_eq!(describe(&next_event(&mut stream).await), "DELETED a");
}

#[tokio::test]
async fn bookmarks_and_timeout_end_the_stream() {
    let server = start_with(egress_apiserver::ServerConfig {
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let rv = server.resource_version().to_string();
    let mut wp = WatchParams::default().timeout(1);
    wp.bookmarks = true;
    let started = std::time::Instant::now();
    let events: Vec<_> = api
        .watch(&wp, &rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "timeoutSeconds honoured"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(events.iter().any(|e| matches!(e, WatchEvent::Bookmark(_))));
}

#[tokio::test]
async fn watching_from_a_compacted_version_is_gone() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    server.compact();
    let rv = a.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected 410, got {}", describe(&other)),
    }
}

#[tokio::test]
async fn history_window_is_bounded() {
    let server = start_with(egress_apiserver::ServerConfig {
        history_limit: 5,
        ..Default::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let first = api.create(&PostParams::default(), &cm("c0")).await.unwrap();
    for i in 1..10 {
        api.create(&PostParams::default(), &cm(&format!("c{i}")))
            .await
            .unwrap();
    }
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    assert_eq!(describe(&next_event(&mut stream).await), "ERROR 410");
}

#[tokio::test]
async fn watcher_recovers_after_dropped_connections_and_410() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if let Ok(o) = ev {
                let _ = tx.send(o.metadata.name.unwrap());
            }
        }
    });
    api.create(&PostParams::default(), &cm("one"))
        .await
        .unwrap();
    expect(&mut rx, "one").await.expect("first object seen");
    server.faults().drop_watches();
    api.create(&PostParams::default(), &cm("two"))
        .await
        .unwrap();
    expect(&mut rx, "two")
        .await
        .expect("seen after a dropped watch");
    server.compact();
    server.faults().drop_watches();
    api.create(&PostParams::default(), &cm("three"))
        .await
        .unwrap();
    expect(&mut rx, "three")
        .await
        .expect("seen after a 410 re-list");
    task.abort();
}

#[tokio::test]
async fn controller_sees_create_update_and_delete() {
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::finalizer::{Event, finalizer};

    let server = start().await;
    let client = server.client().unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    struct Ctx {
        api: Api<ConfigMap>,
        tx: mpsc::UnboundedSender<String>,
        runs: AtomicUsize,
    }
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        tx,
        runs: AtomicUsize::new(0),
    });
    async fn reconcile(
        obj: Arc<ConfigMap>,
        ctx: Arc<Ctx>,
    ) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
        ctx.runs.fetch_add(1, Ordering::SeqCst);
        let tx = ctx.tx.clone();
        finalizer(&ctx.api, "example.com/cleanup", obj, |ev| async move {
            match ev {
                Event::Apply(o) => {
                    let v = o
                        .data
                        .as_ref()
                        .and_then(|d| d.get("v").cloned())
                        .unwrap_or_default();
                    let _ = tx.send(format!("apply {} {v}", o.metadata.name.clone().unwrap()));
                }
                Event::Cleanup(o) => {
                    let _ = tx.send(format!("cleanup {}", o.metadata.name.clone().unwrap()));
                }
            }
            Ok::<_, kube::Error>(Action::await_change())
        })
        .await
    }
    fn error_policy(
        _: Arc<ConfigMap>,
        _: &kube::runtime::finalizer::Error<kube::Error>,
        _: Arc<Ctx>,
    ) -> Action {
        Action::requeue(Duration::from_millis(100))
    }
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let task = tokio::spawn(controller);
    let mut obj = cm("ctl");
    obj.data = Some([("v".to_string(), "1".to_string())].into());
    api.create(&PostParams::default(), &obj).await.unwrap();
    expect(&mut rx, "apply ctl 1")
        .await
        .expect("create reconciled");
    let with_finalizer = wait_for(5, "finalizer added", || {
        let api = api.clone();
        async move {
            let o = api.get("ctl").await.ok()?;
            let has = o
                .metadata
                .finalizers
                .as_ref()?
                .contains(&"example.com/cleanup".to_string());
            has.then_some(o)
        }
    })
    .await;
    assert!(with_finalizer.metadata.deletion_timestamp.is_none());
    api.patch(
        "ctl",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    expect(&mut rx, "apply ctl 2")
        .await
        .expect("update reconciled");
    api.delete("ctl", &DeleteParams::default()).await.unwrap();
    expect(&mut rx, "cleanup ctl")
        .await
        .expect("delete reconciled");
    wait_for(5, "object removed after cleanup", || {
        let api = api.clone();
        async move { api.get_opt("ctl").await.ok()?.is_none().then_some(()) }
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn streaming_lists_and_metadata_watches() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    // sendInitialEvents: initial ADDEDs end with the initial-events-end bookmark, then live events.
    let streaming = watcher(api.clone(), watcher::Config::default().streaming_lists())
        .applied_objects()
        .map_ok(|o| o.metadata.name.unwrap());
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(server.client().unwrap(), "default");
    let meta = watcher(meta_api, watcher::Config::default())
        .applied_objects()
        .map_ok(|o| o.metadata.name.unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mtx, mut mrx) = mpsc::unbounded_channel();
    let t1 = tokio::spawn(async move {
        let mut s = std::pin::pin!(streaming);
        while let Some(Ok(n)) = s.next().await {
            let _ = tx.send(n);
        }
    });
    let t2 = tokio::spawn(async move {
        let mut s = std::pin::pin!(meta);
        while let Some(Ok(n)) = s.next().await {
            let _ = mtx.send(n);
        }
    });
    expect(&mut rx, "before")
        .await
        .expect("initial event via sendInitialEvents");
    expect(&mut mrx, "before")
        .await
        .expect("metadata watcher lists");
    api.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    expect(&mut rx, "after")
        .await
        .expect("live event after the initial ones");
    expect(&mut mrx, "after")
        .await
        .expect("metadata watcher watches");
    t1.abort();
    t2.abort();
}
