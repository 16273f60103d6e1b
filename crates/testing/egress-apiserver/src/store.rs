//! The object store: JSON objects keyed by (group, resource, namespace, name), one cluster-wide
//! monotonically increasing resourceVersion, a bounded history of change events for watch
//! resumption, and a broadcast of new events to open watches. It knows no API semantics.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Where an object lives. Cluster-scoped objects have an empty namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object changed.
    Modified,
    /// The object was removed.
    Deleted,
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug)]
pub struct StoredEvent {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// Which object.
    pub key: ObjKey,
    /// The object after the change (for deletes: the last state, with the deletion's rv).
    pub object: Value,
    /// The object before the change (for selector transitions).
    pub old: Option<Value>,
}

/// A watch start position older than the retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    /// The oldest resourceVersion a watch can still start from.
    pub oldest: u64,
}

/// The objects and their change history.
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<ObjKey, Value>,
    uids: HashMap<String, ObjKey>,
    rv: u64,
    history: VecDeque<Arc<StoredEvent>>,
    history_limit: usize,
    /// Events with `rv <= compacted` are no longer retained.
    compacted: u64,
    tx: broadcast::Sender<Arc<StoredEvent>>,
}

fn uid_of(obj: &Value) -> Option<String> {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Store {
    /// An empty store that keeps the last `history_limit` events.
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            objects: BTreeMap::new(),
            uids: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            tx,
        }
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// One object.
    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// The key of the object with this uid.
    pub fn key_of_uid(&self, uid: &str) -> Option<&ObjKey> {
        self.uids.get(uid)
    }

    /// Objects of one resource, optionally in one namespace, sorted by namespace then name.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> + 'a {
        let start = ObjKey {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.unwrap_or("").to_string(),
            name: String::new(),
        };
        self.objects.range(start..).take_while(move |(k, _)| {
            k.group == group
                && k.resource == resource
                && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// Every object (for garbage collection and namespace cleanup).
    pub fn all(&self) -> impl Iterator<Item = (&ObjKey, &Value)> {
        self.objects.iter()
    }

    /// Stores `obj` under a new resourceVersion and announces it; returns the stored object.
    pub fn put(&mut self, key: ObjKey, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if let Some(uid) = uid_of(&obj) {
            self.uids.insert(uid, key.clone());
        }
        let old = self.objects.insert(key.clone(), obj.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(kind, key, obj.clone(), old);
        obj
    }

    /// Removes an object and announces it; the returned object carries the deletion's rv.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        if let Some(uid) = uid_of(&obj) {
            self.uids.remove(&uid);
        }
        self.rv += 1;
        let old = obj.clone();
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(EventType::Deleted, key.clone(), obj.clone(), Some(old));
        Some(obj)
    }

    fn record(&mut self, kind: EventType, key: ObjKey, object: Value, old: Option<Value>) {
        let ev = Arc::new(StoredEvent {
            rv: self.rv,
            kind,
            key,
            object,
            old,
        });
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        // No receivers is normal (no open watches).
        let _ = self.tx.send(ev);
    }

    /// Forgets the whole history, as an etcd compaction would: watches from any earlier
    /// resourceVersion get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// The retained events after `from` plus a receiver for every later one, with no gap.
    #[allow(clippy::type_complexity)]
    pub fn subscribe_from(
        &self,
        from: u64,
    ) -> Result<(Vec<Arc<StoredEvent>>, broadcast::Receiver<Arc<StoredEvent>>), TooOld> {
        if from < self.compacted {
            return Err(TooOld {
                oldest: self.compacted,
            });
        }
        let past = self
            .history
            .iter()
            .filter(|e| e.rv > from)
            .cloned()
            .collect();
        Ok((past, self.tx.subscribe()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn key(ns: &str, name: &str) -> ObjKey {
        ObjKey {
            group: String::new(),
            resource: "configmaps".into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn history_is_bounded_and_old_watches_expire() {
        let mut s = Store::new(2);
        for i in 0..4 {
            s.put(key("a", &format!("o{i}")), json!({"metadata": {}}));
        }
        assert_eq!(s.subscribe_from(1).unwrap_err(), TooOld { oldest: 2 });
        let (past, _rx) = s.subscribe_from(2).unwrap();
        assert_eq!(past.iter().map(|e| e.rv).collect::<Vec<_>>(), vec![3, 4]);
        s.compact();
        assert!(s.subscribe_from(3).is_err());
        assert!(s.subscribe_from(4).is_ok());
    }

    #[test]
    fn list_is_scoped_to_resource_and_namespace() {
        let mut s = Store::new(10);
        s.put(key("a", "x"), json!({"metadata": {}}));
        s.put(key("b", "y"), json!({"metadata": {}}));
        let mut other = key("a", "z");
        other.resource = "secrets".into();
        s.put(other, json!({"metadata": {}}));
        assert_eq!(s.list("", "configmaps", None).count(), 2);
        assert_eq!(s.list("", "configmaps", Some("b")).count(), 1);
        let removed = s.remove(&key("a", "x")).unwrap();
        assert_eq!(removed["metadata"]["resourceVersion"], "4");
    }
}
