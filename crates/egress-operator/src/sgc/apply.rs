//! Side effects of the StaticGatewayConfiguration controller on Kubernetes: the key Secret
//! (created once, repaired but never re-keyed), the owned GatewayLBConfiguration (server-side
//! apply, skipped when already as wanted), and deletion of both on cleanup.

use egress_api::constants::{API_VERSION, FIELD_MANAGER_SGC, LB_CONFIG_FINALIZER, key_secret_name};
use egress_api::target::GatewayTarget;
use egress_api::{GatewayLBConfiguration, StaticGatewayConfiguration};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::context::Context;
use crate::keys::{self, GatewayKey};
use crate::sgc::SgcError;
use crate::sgc::status::KeyState;

/// Ensures the key Secret `sgw-<uid>` exists with a usable key pair and returns its state.
pub async fn ensure_key(
    ctx: &Context,
    sgc: &StaticGatewayConfiguration,
) -> Result<KeyState, SgcError> {
    let ns = &ctx.config.namespace;
    let uid = sgc.uid().unwrap_or_default();
    let name = key_secret_name(&uid);
    let sgc_ns = sgc.namespace().unwrap_or_default();
    let sgc_name = sgc.name_any();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let ready = |key: &GatewayKey| KeyState::Ready {
        public_key: key.public_base64(),
        secret: name.clone(),
        namespace: ns.clone(),
    };
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|e| SgcError::new(format!("read Secret {ns}/{name}"), e))?;
    let secret = match existing {
        Some(s) => s,
        None => {
            let key = GatewayKey::generate();
            let body = keys::key_secret(ns, &sgc_ns, &sgc_name, &uid, &key);
            match api.create(&PostParams::default(), &body).await {
                Ok(_) => {
                    ctx.event(
                        &sgc.object_ref(&()),
                        false,
                        "KeyCreated",
                        "CreateKey",
                        format!("created the gateway key pair in Secret {ns}/{name}"),
                    )
                    .await;
                    return Ok(ready(&key));
                }
                // Someone (a previous run of ours) created it meanwhile: use theirs.
                Err(kube::Error::Api(s)) if s.code == 409 => api
                    .get(&name)
                    .await
                    .map_err(|e| SgcError::new(format!("read Secret {ns}/{name}"), e))?,
                Err(e) => return Err(SgcError::new(format!("create Secret {ns}/{name}"), e)),
            }
        }
    };
    let key = match keys::stored_key(&secret) {
        Some(Ok(k)) => k,
        // A damaged key is reported, not replaced: pods may still use the old public key.
        Some(Err(e)) => return Ok(KeyState::Broken(e.to_string())),
        None => GatewayKey::generate(),
    };
    if !keys::secret_is_complete(&secret, &key, &sgc_ns, &sgc_name) {
        let wanted = keys::key_secret(ns, &sgc_ns, &sgc_name, &uid, &key);
        let patch = json!({"metadata": {"labels": wanted.metadata.labels}, "data": wanted.data});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| SgcError::new(format!("update Secret {ns}/{name}"), e))?;
    }
    Ok(ready(&key))
}

/// Applies the owned GatewayLBConfiguration with `target` (the spec's, with the pool and prefix
/// length kept as provisioned) unless it is already as wanted (or being deleted).
pub async fn ensure_lb_config(
    ctx: &Context,
    sgc: &StaticGatewayConfiguration,
    target: &GatewayTarget,
    current: Option<&GatewayLBConfiguration>,
) -> Result<(), SgcError> {
    let uid = sgc.uid().unwrap_or_default();
    if let Some(lb) = current {
        let owned = lb
            .owner_references()
            .iter()
            .any(|o| o.uid == uid && o.controller == Some(true));
        let finalized = lb.finalizers().iter().any(|f| f == LB_CONFIG_FINALIZER);
        if lb.meta().deletion_timestamp.is_some()
            || (owned && finalized && lb.spec.target == *target)
        {
            return Ok(());
        }
    }
    let ns = sgc.namespace().unwrap_or_default();
    let name = sgc.name_any();
    let owner = sgc.controller_owner_ref(&());
    let body = json!({
        "apiVersion": API_VERSION,
        "kind": "GatewayLBConfiguration",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner],
            "finalizers": [LB_CONFIG_FINALIZER]},
        "spec": target,
    });
    let api: Api<GatewayLBConfiguration> = Api::namespaced(ctx.client.clone(), &ns);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER_SGC).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(|e| SgcError::new(format!("apply GatewayLBConfiguration {ns}/{name}"), e))?;
    Ok(())
}

/// Deletes the key Secret and the GatewayLBConfiguration. Returns true once the LB
/// configuration is gone (its own finalizer holds it until Azure is cleaned up).
pub async fn cleanup(ctx: &Context, sgc: &StaticGatewayConfiguration) -> Result<bool, SgcError> {
    let ns = sgc.namespace().unwrap_or_default();
    let name = sgc.name_any();
    let lbs: Api<GatewayLBConfiguration> = Api::namespaced(ctx.client.clone(), &ns);
    let lb = lbs
        .get_opt(&name)
        .await
        .map_err(|e| SgcError::new(format!("read GatewayLBConfiguration {ns}/{name}"), e))?;
    if let Some(lb) = lb {
        if lb.meta().deletion_timestamp.is_none() {
            match lbs.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(true),
                Err(e) => {
                    return Err(SgcError::new(
                        format!("delete GatewayLBConfiguration {ns}/{name}"),
                        e,
                    ));
                }
            }
        }
        return Ok(false);
    }
    let secret_ns = &ctx.config.namespace;
    let secret = key_secret_name(&sgc.uid().unwrap_or_default());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), secret_ns);
    match secrets.delete(&secret, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(true),
        Err(e) => Err(SgcError::new(
            format!("delete Secret {secret_ns}/{secret}"),
            e,
        )),
    }
}
