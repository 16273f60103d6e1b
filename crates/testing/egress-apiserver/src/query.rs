//! Query parameters of API requests, decoded as `application/x-www-form-urlencoded` (so `+` is a
//! space, as clients like kube-rs encode set-based selectors) into typed options.

use crate::error::ApiError;

/// How unknown fields in a write are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop silently.
    Ignore,
    /// Drop and answer a `Warning` header (the server default).
    #[default]
    Warn,
    /// Reject with 400.
    Strict,
}

/// The options of one request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `watch=true`.
    pub watch: bool,
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `allowWatchBookmarks`.
    pub allow_watch_bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `force` (server-side apply).
    pub force: bool,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `propagationPolicy`.
    pub propagation_policy: Option<String>,
    /// `includeObject` for Table output.
    pub include_object: Option<String>,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "True" => Ok(true),
        "false" | "0" | "False" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "invalid value for {key}: {v:?} (expected true or false)"
        ))),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ApiError> {
    v.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}")))
}

impl Query {
    /// Decodes a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Query::default();
        let Some(raw) = raw else { return Ok(q) };
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            let v = v.as_ref();
            match k.as_ref() {
                "watch" => q.watch = parse_bool("watch", v)?,
                "labelSelector" => q.label_selector = Some(v.to_string()),
                "fieldSelector" => q.field_selector = Some(v.to_string()),
                "limit" => {
                    let n: usize = parse_num("limit", v)?;
                    q.limit = (n > 0).then_some(n);
                }
                "continue" => q.continue_token = Some(v.to_string()).filter(|s| !s.is_empty()),
                "resourceVersion" => q.resource_version = Some(v.to_string()),
                "allowWatchBookmarks" => {
                    q.allow_watch_bookmarks = parse_bool("allowWatchBookmarks", v)?;
                }
                "timeoutSeconds" => q.timeout_seconds = Some(parse_num("timeoutSeconds", v)?),
                "sendInitialEvents" => {
                    q.send_initial_events = parse_bool("sendInitialEvents", v)?;
                }
                "fieldManager" => q.field_manager = Some(v.to_string()),
                "fieldValidation" => {
                    q.field_validation = match v {
                        "Ignore" => FieldValidation::Ignore,
                        "Warn" | "" => FieldValidation::Warn,
                        "Strict" => FieldValidation::Strict,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation must be one of Ignore, Warn or Strict, got {other:?}"
                            )));
                        }
                    }
                }
                "force" => q.force = parse_bool("force", v)?,
                "dryRun" => match v {
                    "All" => q.dry_run = true,
                    "" => {}
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid dry run value: {other:?} (supported: All)"
                        )));
                    }
                },
                "propagationPolicy" => q.propagation_policy = Some(v.to_string()),
                "includeObject" => q.include_object = Some(v.to_string()),
                _ => {}
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn plus_decodes_to_space() {
        let q = Query::parse(Some("labelSelector=app+in+%28a%2Cb%29&watch=1&limit=5")).unwrap();
        assert_eq!(q.label_selector.as_deref(), Some("app in (a,b)"));
        assert!(q.watch);
        assert_eq!(q.limit, Some(5));
    }

    #[test]
    fn bad_values_are_rejected() {
        assert_eq!(Query::parse(Some("limit=x")).unwrap_err().code, 400);
        assert_eq!(
            Query::parse(Some("fieldValidation=Loud")).unwrap_err().code,
            400
        );
    }
}
