//! Adding and removing one finalizer with a JSON patch guarded by a `test` operation, so a
//! concurrent change makes the patch fail (and the reconcile retry) instead of dropping someone
//! else's finalizer. NotFound counts as done.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

fn patch_of(value: serde_json::Value) -> Result<json_patch::Patch, kube::Error> {
    serde_json::from_value(value).map_err(kube::Error::SerdeError)
}

/// Adds `finalizer` to `obj` if missing (see [`add_all`]).
pub async fn add<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    add_all(api, obj, &[finalizer]).await
}

/// Adds the missing ones of `wanted` to `obj` in one patch. A cached `obj` may be stale: when
/// the guarded patch fails, the object is read again and the patch retried once.
pub async fn add_all<K>(api: &Api<K>, obj: &K, wanted: &[&str]) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut current = obj.clone();
    for attempt in 0..2 {
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| !current.finalizers().iter().any(|f| f == w))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut ops = vec![
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": current.resource_version()}),
        ];
        if current.meta().finalizers.is_none() {
            ops.push(json!({"op": "add", "path": "/metadata/finalizers", "value": missing}));
        } else {
            ops.extend(
                missing
                    .iter()
                    .map(|f| json!({"op": "add", "path": "/metadata/finalizers/-", "value": f})),
            );
        }
        let name = current.name_any();
        match api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::<()>::Json(patch_of(json!(ops))?),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if attempt == 0 && (s.code == 422 || s.code == 409) => {
                match api.get_opt(&name).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(()),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes `finalizer` from the object named `name` (read fresh, so a cached copy is enough to
/// call this).
pub async fn remove<K>(api: &Api<K>, name: &str, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(obj) = api.get_opt(name).await? else {
        return Ok(());
    };
    let Some(idx) = obj.finalizers().iter().position(|f| f == finalizer) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{idx}");
    let ops = json!([
        {"op": "test", "path": path, "value": finalizer},
        {"op": "remove", "path": path},
    ]);
    match api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::<()>::Json(patch_of(ops)?),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
