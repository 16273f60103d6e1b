//! Resource requests: checks the URL against the resource (scope, subresource), maps method and
//! URL to the Kubernetes verb, and hands the request to the read, write or watch handler.

mod patch;
mod read;
mod scale;
mod watch;
mod write;

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::Value;

use crate::error::ApiError;
use crate::http::Resp;
use crate::query::Query;
use crate::resource::ResourceInfo;
use crate::route::ResourcePath;
use crate::server::Shared;

/// One request on a resource URL.
#[derive(Debug)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: Method,
    /// The parsed URL.
    pub path: ResourcePath,
    /// The resource served there.
    pub res: Arc<ResourceInfo>,
    /// Query options.
    pub query: Query,
    /// `Accept` header.
    pub accept: String,
    /// `Content-Type` header (media type only).
    pub content_type: String,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Who the request acts as.
    pub user: crate::identity::UserInfo,
    /// Request body.
    pub body: Bytes,
}

impl ApiRequest {
    /// The URL's version.
    pub fn version(&self) -> &str {
        &self.path.version
    }

    /// The URL's namespace (only for namespaced resources).
    pub fn namespace(&self) -> Option<&str> {
        if self.res.namespaced {
            self.path.namespace.as_deref()
        } else {
            None
        }
    }

    /// The object as answered in the URL's version.
    pub fn present(&self, obj: Value) -> Value {
        self.res.present(obj, self.version())
    }

    /// The field manager: `fieldManager`, else the user agent's program name.
    pub fn manager(&self) -> String {
        match &self.query.field_manager {
            Some(m) if !m.is_empty() => m.clone(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        }
    }
}

/// The Kubernetes verb of a request.
pub fn verb(method: &Method, path: &ResourcePath, query: &Query) -> &'static str {
    match (method.as_str(), path.name.is_some()) {
        ("GET", _) if query.watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

fn check_scope(req: &ApiRequest, verb: &str) -> Result<(), ApiError> {
    let p = &req.path;
    let not_found = || ApiError::no_route(&format!("{} {}", req.method, p.plural));
    if let Some(sub) = &p.subresource
        && !req.res.has_subresource(sub)
    {
        return Err(not_found());
    }
    if !req.res.namespaced && p.namespace.is_some() {
        return Err(not_found());
    }
    if req.res.namespaced && p.namespace.is_none() {
        let allowed = matches!(verb, "list" | "watch");
        if !allowed {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({verb} {})",
                p.plural
            )));
        }
    }
    if p.name.is_some() && verb == "create" {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    if p.name.is_none() && matches!(verb, "update" | "patch") {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    Ok(())
}

/// Serves a resource request.
pub async fn serve(shared: &Arc<Shared>, req: ApiRequest, verb: &str) -> Result<Resp, ApiError> {
    check_scope(&req, verb)?;
    if req.path.subresource.as_deref() == Some("scale") {
        return scale::serve(shared, &req, verb);
    }
    match verb {
        "get" => read::get(shared, &req),
        "list" => read::list(shared, &req),
        "watch" => watch::watch(shared, &req),
        "create" => write::create(shared, &req),
        "update" => write::update(shared, &req),
        "patch" => patch::patch(shared, &req),
        "delete" => write::delete(shared, &req),
        "deletecollection" => write::delete_collection(shared, &req),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow method {}",
            req.method
        ))),
    }
}
