//! Polling endpoints of long-running operations: the `Azure-AsyncOperation` status monitor
//! (`operations/{id}`: 200 with `{status}` until a terminal status) and the `Location` result
//! URL (`operationResults/{id}`: 202 until done, then the result or the error).

use super::render;
use crate::error::ArmError;
use crate::forms::LroClass;
use crate::http::Reply;
use crate::lro::{self, Lro};
use crate::state::State;
use serde_json::json;
use std::time::SystemTime;

fn timestamp(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}

/// The status monitor document ARM returns (`id`, `name`, `status`, `startTime`, `endTime`,
/// `error`).
fn status_body(id: &str, op: &Lro) -> serde_json::Value {
    let status = match (op.done, &op.failure) {
        (false, _) => "InProgress",
        (true, Some(_)) => "Failed",
        (true, None) => "Succeeded",
    };
    let mut body =
        json!({"id": id, "name": id, "status": status, "startTime": timestamp(op.started)});
    if let Some(end) = op.ended.filter(|_| op.done) {
        body["endTime"] = json!(timestamp(end));
    }
    if let (true, Some(f)) = (op.done, &op.failure) {
        body["error"] = f.inner();
    }
    body
}

pub(crate) fn poll(state: &mut State, result_style: bool, id: &str) -> Result<Reply, ArmError> {
    let op = lro::poll(state, id).ok_or_else(|| {
        ArmError::not_found(
            "OperationNotFound",
            format!("The operation '{id}' was not found."),
        )
    })?;
    let retry = state.settings.retry_after.to_string();
    if !result_style {
        let reply = Reply::json(200, status_body(id, &op));
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
    match (
        op.class,
        op.targets.first().and_then(|t| state.store.get(t)),
    ) {
        (LroClass::Write, Some(v)) => Ok(Reply::json(200, render::render(&state.store, v))),
        (LroClass::Delete, _) => Ok(Reply::empty(204)),
        _ => Ok(Reply::empty(200)),
    }
}
