//! Polling endpoints of long-running operations: the `Azure-AsyncOperation` status monitor and
//! the `Location` result URL.

use super::render;
use crate::error::ArmError;
use crate::http::Reply;
use crate::lro::{self, LroKind};
use crate::state::State;
use serde_json::json;

pub(crate) fn poll(state: &mut State, result_style: bool, id: &str) -> Result<Reply, ArmError> {
    let op = lro::poll(state, id).ok_or_else(|| {
        ArmError::not_found(
            "OperationNotFound",
            format!("The operation '{id}' was not found."),
        )
    })?;
    let retry = state.settings.retry_after.to_string();
    if !result_style {
        let status = match (op.done, &op.failure) {
            (false, _) => "InProgress",
            (true, Some(_)) => "Failed",
            (true, None) => "Succeeded",
        };
        let mut body = json!({"id": id, "name": id, "status": status});
        if let (true, Some(f)) = (op.done, &op.failure) {
            body["error"] = f.inner();
        }
        let reply = Reply::json(200, body);
        return Ok(if op.done {
            reply
        } else {
            reply.header("Retry-After", retry)
        });
    }
    if !op.done {
        // The same URL keeps answering; clients re-read `Location` from each 202.
        return Ok(Reply::empty(202).header("Retry-After", retry));
    }
    if let Some(f) = op.failure {
        return Err(f);
    }
    match (op.kind, op.targets.first().and_then(|t| state.store.get(t))) {
        (LroKind::Put, Some(v)) => Ok(Reply::json(200, render::render(&state.store, v))),
        _ => Ok(Reply::empty(204)),
    }
}
