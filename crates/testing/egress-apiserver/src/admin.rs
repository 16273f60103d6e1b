//! The admin endpoint under `/admin/` (never paused, never faulted): fault rules, pause and
//! resume, dropping watches, compacting the watch history, and reading or clearing the request
//! log. The same switches are available in-process on `RunningApiServer`.

use std::sync::Arc;

use http::Method;
use serde_json::json;

use crate::error::ApiError;
use crate::faults::FaultRule;
use crate::http::{Resp, error, json};
use crate::server::Shared;

/// Serves `METHOD /admin/<rest>`.
pub fn handle(shared: &Arc<Shared>, method: &Method, rest: &str, body: &[u8]) -> Resp {
    match route(shared, method, rest, body) {
        Ok(v) => json(200, &v),
        Err(e) => error(&e),
    }
}

fn route(
    shared: &Arc<Shared>,
    method: &Method,
    rest: &str,
    body: &[u8],
) -> Result<serde_json::Value, ApiError> {
    let faults = &shared.faults;
    match (method.as_str(), rest) {
        ("GET", "requests") => Ok(json!({
            "counters": shared.log.counters(),
            "recent": shared.log.recent(),
        })),
        ("DELETE", "requests") => {
            shared.log.clear();
            Ok(json!({}))
        }
        ("GET", "faults") => {
            let rules: Vec<_> = faults
                .rules()
                .into_iter()
                .map(|(id, rule)| json!({"id": id, "rule": rule}))
                .collect();
            Ok(json!({"rules": rules, "paused": faults.is_paused()}))
        }
        ("POST", "faults") => {
            let rule: FaultRule = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid fault rule: {e}")))?;
            Ok(json!({"id": faults.inject(rule)}))
        }
        ("DELETE", "faults") => {
            faults.clear();
            Ok(json!({}))
        }
        ("POST", "pause") => {
            faults.pause();
            Ok(json!({"paused": true}))
        }
        ("POST", "resume") => {
            faults.resume();
            Ok(json!({"paused": false}))
        }
        ("POST", "watches/drop") => {
            faults.drop_watches();
            Ok(json!({}))
        }
        ("POST", "compact") => {
            let mut world = shared.lock_world();
            world.store.compact();
            Ok(json!({"compactedTo": world.store.current_rv().to_string()}))
        }
        (m, r) => {
            if let Some(id) = r.strip_prefix("faults/")
                && m == "DELETE"
            {
                let id: u64 = id
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid fault id {id:?}")))?;
                return if faults.remove(id) {
                    Ok(json!({}))
                } else {
                    Err(ApiError::new(
                        404,
                        "NotFound",
                        format!("no fault rule {id}"),
                    ))
                };
            }
            Err(ApiError::no_route(&format!("{m} /admin/{r}")))
        }
    }
}
