//! Events: core/v1 and events.k8s.io/v1 are two views of one store, as on the real server. An
//! event published by kube's `Recorder` (events.k8s.io/v1) is found through core/v1 with the field
//! selector `kubectl describe` uses, and the other way round; get, update, delete, watch and the
//! shared resourceVersion work through either view.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventsEvent;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::common::{start, widget, widget_resource};

/// The field selector kubectl 1.32 `describe` sends for an object's events.
fn describe_selector(r: &ObjectReference) -> String {
    format!(
        "involvedObject.name={},involvedObject.namespace={},involvedObject.kind={},involvedObject.uid={}",
        r.name.as_deref().unwrap(),
        r.namespace.as_deref().unwrap(),
        r.kind.as_deref().unwrap(),
        r.uid.as_deref().unwrap(),
    )
}

async fn widget_ref(client: &kube::Client, name: &str) -> ObjectReference {
    let ar = widget_resource();
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w = widgets
        .create(&PostParams::default(), &widget(name, 3))
        .await
        .unwrap();
    w.object_ref(&ar)
}

fn invalid_spec() -> Event {
    Event {
        type_: EventType::Warning,
        reason: "InvalidSpec".into(),
        note: Some("spec.size must be at most 10".into()),
        action: "Reconcile".into(),
        secondary: None,
    }
}

#[tokio::test]
async fn recorder_events_are_listed_through_core_v1_like_kubectl_describe() {
    let server = start().await;
    let client = server.client().unwrap();
    let w1 = widget_ref(&client, "w1").await;
    let w2 = widget_ref(&client, "w2").await;
    let reporter = Reporter {
        controller: "sgc-controller".into(),
        instance: Some("sgc-controller-0".into()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    recorder.publish(&invalid_spec(), &w1).await.unwrap();

    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let found = core
        .list(&ListParams::default().fields(&describe_selector(&w1)))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1, "{:?}", found.items);
    let ev = &found.items[0];
    assert_eq!(ev.involved_object.uid, w1.uid);
    assert_eq!(ev.involved_object.kind.as_deref(), Some("Widget"));
    assert_eq!(ev.reason.as_deref(), Some("InvalidSpec"));
    assert_eq!(ev.message.as_deref(), Some("spec.size must be at most 10"));
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.reporting_component.as_deref(), Some("sgc-controller"));
    assert_eq!(ev.reporting_instance.as_deref(), Some("sgc-controller-0"));
    assert_eq!(ev.action.as_deref(), Some("Reconcile"));
    assert!(ev.event_time.is_some());

    // The other widget has no events; `type`, `reason` and `source` (the reporting controller
    // when there is no source component) select too.
    let none = core
        .list(&ListParams::default().fields(&describe_selector(&w2)))
        .await
        .unwrap();
    assert!(none.items.is_empty(), "{:?}", none.items);
    for fields in [
        "type=Warning,reason=InvalidSpec",
        "source=sgc-controller",
        "reportingComponent=sgc-controller",
    ] {
        let got = core
            .list(&ListParams::default().fields(fields))
            .await
            .unwrap();
        assert_eq!(got.items.len(), 1, "{fields}");
    }
    assert!(
        core.list(&ListParams::default().fields("type=Normal"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // A repeat goes out as a merge patch of `series` through events.k8s.io; the core view shows
    // the same object at the same resourceVersion.
    recorder.publish(&invalid_spec(), &w1).await.unwrap();
    let events: Api<EventsEvent> = Api::namespaced(client.clone(), "default");
    let name = ev.name_any();
    let (as_core, as_events) = (
        core.get(&name).await.unwrap(),
        events.get(&name).await.unwrap(),
    );
    assert_eq!(as_core.series.as_ref().and_then(|s| s.count), Some(2));
    assert_eq!(as_events.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(as_core.resource_version(), as_events.resource_version());
    assert_eq!(
        core.list(&ListParams::default()).await.unwrap().items.len(),
        1,
        "one stored event, not one per view"
    );
}

#[tokio::test]
async fn core_events_are_served_through_events_k8s_io() {
    let server = start().await;
    let client = server.client().unwrap();
    let w1 = widget_ref(&client, "w1").await;
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let events: Api<EventsEvent> = Api::namespaced(client.clone(), "default");
    let created: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "w1.legacy"},
        "involvedObject": w1,
        "reason": "Synced", "message": "all good", "type": "Normal",
        "source": {"component": "legacy-controller"},
        "count": 4,
        "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:05:00Z",
    }))
    .unwrap();
    let created = core.create(&PostParams::default(), &created).await.unwrap();

    let selector = format!(
        "regarding.name=w1,regarding.kind=Widget,regarding.uid={},reason=Synced",
        w1.uid.as_deref().unwrap()
    );
    let found = events
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    let ev = &found.items[0];
    assert_eq!(
        ev.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("w1")
    );
    assert_eq!(ev.note.as_deref(), Some("all good"));
    assert_eq!(ev.deprecated_count, Some(4));
    assert_eq!(
        ev.deprecated_source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
        Some("legacy-controller")
    );
    assert!(ev.deprecated_first_timestamp.is_some() && ev.deprecated_last_timestamp.is_some());
    assert_eq!(ev.resource_version(), created.resource_version());
    assert!(
        events
            .list(&ListParams::default().fields("regarding.name=other"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Core-only labels are not events.k8s.io labels, as on the real server.
    let err = events
        .list(&ListParams::default().fields("involvedObject.name=w1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message.contains("field label not supported")),
        "{err:?}"
    );

    // An update through events.k8s.io is seen through core/v1; a delete removes both.
    let mut changed = ev.clone();
    changed.note = Some("still good".into());
    let replaced = events
        .replace("w1.legacy", &PostParams::default(), &changed)
        .await
        .unwrap();
    let seen = core.get("w1.legacy").await.unwrap();
    assert_eq!(seen.message.as_deref(), Some("still good"));
    assert_eq!(seen.count, Some(4));
    assert_eq!(seen.resource_version(), replaced.resource_version());
    events
        .delete("w1.legacy", &DeleteParams::default())
        .await
        .unwrap();
    assert!(core.get_opt("w1.legacy").await.unwrap().is_none());
}

async fn next<K>(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("event decodes")
}

#[tokio::test]
async fn watches_through_either_view_see_writes_through_the_other() {
    let server = start().await;
    let client = server.client().unwrap();
    let w1 = widget_ref(&client, "w1").await;
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let events: Api<EventsEvent> = Api::namespaced(client.clone(), "default");
    let rv = core
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    let rv = rv.unwrap();
    assert_eq!(
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version,
        Some(rv.clone())
    );
    let mut core_watch = core
        .watch(
            &WatchParams::default().fields("involvedObject.name=w1"),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    let mut events_watch = events
        .watch(&WatchParams::default().fields("regarding.name=w1"), &rv)
        .await
        .unwrap()
        .boxed();

    Recorder::new(client.clone(), "sgc-controller".into())
        .publish(&invalid_spec(), &w1)
        .await
        .unwrap();
    let WatchEvent::Added(ev) = next(&mut core_watch).await else {
        panic!("expected ADDED on the core/v1 watch");
    };
    assert_eq!(ev.message.as_deref(), Some("spec.size must be at most 10"));
    let WatchEvent::Added(ev2) = next(&mut events_watch).await else {
        panic!("expected ADDED on the events.k8s.io watch");
    };
    assert_eq!(ev2.note.as_deref(), Some("spec.size must be at most 10"));
    assert_eq!(ev.resource_version(), ev2.resource_version());

    core.delete(&ev.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    assert!(matches!(next(&mut events_watch).await, WatchEvent::Deleted(e) if e.note == ev2.note));
    assert!(matches!(
        next(&mut core_watch).await,
        WatchEvent::Deleted(_)
    ));
}
