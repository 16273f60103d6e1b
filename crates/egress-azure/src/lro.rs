//! ARM long-running operations (the documented async protocol): after a PUT/PATCH/DELETE,
//! poll `Azure-AsyncOperation` (status body), else `Location` (202 until 200/204, whether the
//! first answer was 202 or 200/201 with a body), else the resource's `provisioningState`;
//! honour `Retry-After`; stop at Succeeded/Failed/Canceled or when the total time bound is
//! reached. Issuing the request and the final GET are `client`'s.

use azure_core::http::{Method, Url};
use serde::Deserialize;
use std::time::{Duration, Instant};

use crate::client::{ArmClient, ArmRequest, ArmResponse};
use crate::error::{ArmError, ArmErrorBody};
use crate::retry::retry_after;

/// Bounds of long-running operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LroPolicy {
    /// Longest time from the first request to a terminal state (then `Transient`, code `LroTimeout`).
    pub max_duration: Duration,
    /// Poll interval when the service sends no `Retry-After`.
    pub default_poll_interval: Duration,
    /// Cap on a service-requested poll interval.
    pub max_poll_interval: Duration,
}

impl Default for LroPolicy {
    /// 15 min (the original's bound for prefix deletion, the slowest call), 10 s polls.
    fn default() -> Self {
        Self {
            max_duration: Duration::from_secs(15 * 60),
            default_poll_interval: Duration::from_secs(10),
            max_poll_interval: Duration::from_secs(60),
        }
    }
}

enum PollState {
    Pending,
    Succeeded,
    Failed(ArmErrorBody),
    Canceled(ArmErrorBody),
}

#[derive(Deserialize)]
struct AsyncStatus {
    status: Option<String>,
    error: Option<ErrorField>,
}

#[derive(Deserialize)]
struct ErrorField {
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct WithState {
    properties: Option<StateProps>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateProps {
    provisioning_state: Option<String>,
}

fn state_from(status: &str, error: Option<ErrorField>) -> PollState {
    let body = || {
        error.map_or_else(ArmErrorBody::default, |e| {
            ArmErrorBody::new(e.code.unwrap_or_default(), e.message.unwrap_or_default())
        })
    };
    match status.to_ascii_lowercase().as_str() {
        "succeeded" => PollState::Succeeded,
        "failed" => PollState::Failed(body()),
        "canceled" | "cancelled" => PollState::Canceled(body()),
        _ => PollState::Pending,
    }
}

/// `Azure-AsyncOperation` status body.
fn async_operation_state(resp: &ArmResponse) -> PollState {
    match serde_json::from_slice::<AsyncStatus>(&resp.body) {
        Ok(AsyncStatus {
            status: Some(s),
            error,
        }) => state_from(&s, error),
        _ => PollState::Pending,
    }
}

/// `properties.provisioningState` of a resource body; `None` if absent.
fn provisioning_state(body: &[u8]) -> Option<PollState> {
    let parsed: WithState = serde_json::from_slice(body).ok()?;
    let s = parsed.properties?.provisioning_state?;
    Some(state_from(&s, None))
}

fn failure(operation: &'static str, state: PollState) -> ArmError {
    match state {
        PollState::Failed(body) => match body.code.as_str() {
            "InternalServerError" | "RetryableError" | "InternalOperationError" => {
                ArmError::Transient {
                    operation,
                    status: None,
                    body,
                    source: None,
                }
            }
            "Conflict" | "AnotherOperationInProgress" | "OperationPreempted" => {
                ArmError::Conflict {
                    operation,
                    status: 409,
                    body,
                }
            }
            _ => ArmError::Permanent {
                operation,
                status: None,
                body: if body.code.is_empty() {
                    ArmErrorBody::new("OperationFailed", body.message)
                } else {
                    body
                },
                source: None,
            },
        },
        // ARM cancels an operation when a newer write supersedes it: re-read and retry.
        PollState::Canceled(body) => ArmError::Conflict {
            operation,
            status: 409,
            body: if body.code.is_empty() {
                ArmErrorBody::new("Canceled", "the operation was canceled")
            } else {
                body
            },
        },
        PollState::Pending | PollState::Succeeded => ArmError::Permanent {
            operation,
            status: None,
            body: ArmErrorBody::new("OperationFailed", "unexpected LRO state"),
            source: None,
        },
    }
}

/// Polls `url` until `check` reports a terminal state, within the policy's time bound.
async fn poll(
    client: &ArmClient,
    operation: &'static str,
    url: &str,
    started: Instant,
    mut hint: Option<Duration>,
    check: impl Fn(Result<ArmResponse, ArmError>) -> Result<PollState, ArmError>,
) -> Result<(), ArmError> {
    let policy = client.lro_policy().clone();
    let url = Url::parse(url).map_err(|e| {
        ArmError::from_status(
            operation,
            502,
            ArmErrorBody::new("InvalidPollingUrl", format!("{url:?}: {e}")),
            None,
        )
    })?;
    let metrics = client.metrics();
    loop {
        let wait = hint
            .unwrap_or(policy.default_poll_interval)
            .min(policy.max_poll_interval);
        if started.elapsed() + wait > policy.max_duration {
            metrics.record_lro(operation, "timeout", started.elapsed());
            return Err(ArmError::Transient {
                operation,
                status: None,
                body: ArmErrorBody::new(
                    "LroTimeout",
                    format!("operation did not finish within {:?}", policy.max_duration),
                ),
                source: None,
            });
        }
        tokio::time::sleep(wait).await;
        let result = client
            .execute(&ArmRequest {
                operation,
                method: Method::Get,
                url: url.clone(),
                body: None,
                if_match: None,
                idempotent: true,
            })
            .await;
        hint = result.as_ref().ok().and_then(|r| retry_after(&r.headers));
        let state = match check(result) {
            Ok(s) => s,
            Err(e) => {
                metrics.record_lro(operation, "failed", started.elapsed());
                return Err(e);
            }
        };
        match state {
            PollState::Pending => {}
            PollState::Succeeded => {
                metrics.record_lro(operation, "succeeded", started.elapsed());
                return Ok(());
            }
            s @ PollState::Failed(_) => {
                metrics.record_lro(operation, "failed", started.elapsed());
                return Err(failure(operation, s));
            }
            s @ PollState::Canceled(_) => {
                metrics.record_lro(operation, "canceled", started.elapsed());
                return Err(failure(operation, s));
            }
        }
    }
}

fn by_async_operation(r: Result<ArmResponse, ArmError>) -> Result<PollState, ArmError> {
    r.map(|resp| async_operation_state(&resp))
}

fn by_location(r: Result<ArmResponse, ArmError>) -> Result<PollState, ArmError> {
    r.map(|resp| {
        if resp.status == 202 {
            PollState::Pending
        } else {
            PollState::Succeeded
        }
    })
}

fn by_provisioning_state(r: Result<ArmResponse, ArmError>) -> Result<PollState, ArmError> {
    r.map(|resp| provisioning_state(&resp.body).unwrap_or(PollState::Succeeded))
}

/// Finishes a PUT/PATCH, whichever documented form the service answered in:
/// `Azure-AsyncOperation` (any status) → poll the status monitor; else `Location` (202, or
/// 200/201 with the body) → poll the result URL; else 202, or a body whose provisioningState is
/// not terminal → poll the resource. Returns the initial body when it is already final, `None`
/// when the caller must GET the resource (after polling).
pub(crate) async fn complete(
    client: &ArmClient,
    operation: &'static str,
    resource_url: &Url,
    initial: ArmResponse,
    started: Instant,
) -> Result<Option<Vec<u8>>, ArmError> {
    let hint = retry_after(&initial.headers);
    if let Some(op_url) = initial.header("azure-asyncoperation") {
        poll(client, operation, op_url, started, hint, by_async_operation).await?;
        return Ok(None);
    }
    if let Some(loc) = initial.header("location") {
        poll(client, operation, loc, started, hint, by_location).await?;
        return Ok(None);
    }
    let state = if initial.status == 202 {
        Some(PollState::Pending)
    } else if initial.body.is_empty() {
        // Done without a body: the caller reads the resource.
        return Ok(None);
    } else {
        provisioning_state(&initial.body)
    };
    match state {
        None | Some(PollState::Succeeded) => Ok(Some(initial.body)),
        Some(PollState::Pending) => {
            poll(
                client,
                operation,
                resource_url.as_str(),
                started,
                hint,
                by_provisioning_state,
            )
            .await?;
            Ok(None)
        }
        Some(s) => Err(failure(operation, s)),
    }
}

/// Finishes a DELETE: 200/204 done; 202 polled; a resource that disappears counts as done.
pub(crate) async fn complete_delete(
    client: &ArmClient,
    operation: &'static str,
    resource_url: &Url,
    initial: ArmResponse,
    started: Instant,
) -> Result<(), ArmError> {
    let hint = retry_after(&initial.headers);
    if let Some(op_url) = initial.header("azure-asyncoperation") {
        return poll(client, operation, op_url, started, hint, by_async_operation).await;
    }
    if initial.status != 202 {
        return Ok(());
    }
    let gone_is_done =
        |r: Result<ArmResponse, ArmError>,
         f: fn(Result<ArmResponse, ArmError>) -> Result<PollState, ArmError>| match r {
            Err(e) if e.is_not_found() => Ok(PollState::Succeeded),
            other => f(other),
        };
    match initial.header("location") {
        Some(loc) => {
            poll(client, operation, loc, started, hint, |r| {
                gone_is_done(r, by_location)
            })
            .await
        }
        None => {
            // No polling header: wait for the resource itself to go away.
            poll(
                client,
                operation,
                resource_url.as_str(),
                started,
                hint,
                |r| gone_is_done(r, |r| r.map(|_| PollState::Pending)),
            )
            .await
        }
    }
}
