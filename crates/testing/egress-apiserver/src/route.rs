//! URL paths of the API, parsed into what they address: discovery documents, OpenAPI
//! documents, the admin endpoint, or a resource collection/object/subresource.

/// A resource URL (`/apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME[/SUB]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace segment, if the URL has one.
    pub namespace: Option<String>,
    /// Object name, for item URLs.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub subresource: Option<String>,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/GROUP`.
    Group(String),
    /// `/api/v1`, `/apis/GROUP/VERSION`.
    ResourceList {
        /// Group.
        group: String,
        /// Version.
        version: String,
    },
    /// `/openapi/v3`.
    OpenApiRoot,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`.
    OpenApiDoc {
        /// Group.
        group: String,
        /// Version.
        version: String,
    },
    /// `/admin/...` (the path after `/admin/`).
    Admin(String),
    /// A resource URL.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

fn resource(group: &str, version: &str, segs: &[&str]) -> Route {
    let (namespace, rest) = if segs.len() >= 3
        && segs[0] == "namespaces"
        && !matches!(segs[2], "status" | "finalize")
    {
        (Some(segs[1].to_string()), &segs[2..])
    } else {
        (None, segs)
    };
    if rest.is_empty() || rest.len() > 3 || rest.iter().any(|s| s.is_empty()) {
        return Route::Unknown;
    }
    Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        plural: rest[0].to_string(),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
    })
}

/// Parses a request path (without query).
pub fn parse(path: &str) -> Route {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group(g.to_string()),
        ["api", v] => Route::ResourceList {
            group: String::new(),
            version: v.to_string(),
        },
        ["apis", g, v] => Route::ResourceList {
            group: g.to_string(),
            version: v.to_string(),
        },
        ["api", v, rest @ ..] => resource("", v, rest),
        ["apis", g, v, rest @ ..] => resource(g, v, rest),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", v] => Route::OpenApiDoc {
            group: String::new(),
            version: v.to_string(),
        },
        ["openapi", "v3", "apis", g, v] => Route::OpenApiDoc {
            group: g.to_string(),
            version: v.to_string(),
        },
        ["admin", rest @ ..] => Route::Admin(rest.join("/")),
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let r = res("/api/v1/namespaces/default/pods/p1/status");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.plural, "pods");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let ns = res("/api/v1/namespaces/kube-system/status");
        assert_eq!(
            (ns.plural.as_str(), ns.name.as_deref(), ns.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let all = res("/apis/apps/v1/deployments");
        assert_eq!((all.group.as_str(), all.name), ("apps", None));
        assert_eq!(parse("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(parse("/api/v1/namespaces/x/a/b/c/d"), Route::Unknown);
    }
}
