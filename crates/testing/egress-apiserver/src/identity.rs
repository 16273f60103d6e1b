//! Who a request acts as. The server authenticates nobody: a request is the cluster
//! administrator (`system:admin` in `system:masters`), unless it impersonates someone with the
//! real server's headers (`Impersonate-User`, `Impersonate-Uid`, `Impersonate-Group`,
//! `Impersonate-Extra-<key>`, which kube-rs and `kubectl --as*` send). Every impersonation is
//! allowed. The identity is what admission policies see as `request.userInfo`, so tests can act
//! as, say, the CNI manager's ServiceAccount on node X.

use std::collections::BTreeMap;

use http::HeaderMap;
use serde::Serialize;

use crate::error::ApiError;

const USER: &str = "impersonate-user";
const UID: &str = "impersonate-uid";
const GROUP: &str = "impersonate-group";
const EXTRA_PREFIX: &str = "impersonate-extra-";
const SA_PREFIX: &str = "system:serviceaccount:";

/// A user as the authenticator hands it to admission (`authentication.k8s.io/v1 UserInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// `system:admin`, `system:serviceaccount:NS:NAME`, ...
    pub username: String,
    /// The user's UID, if known.
    pub uid: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/node-name`, ...), keys lower-case.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Default for UserInfo {
    fn default() -> Self {
        Self::admin()
    }
}

impl UserInfo {
    /// The administrator every request without impersonation acts as.
    pub fn admin() -> Self {
        Self {
            username: "system:admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            extra: BTreeMap::new(),
        }
    }

    /// A user with the groups the real server adds: `system:authenticated`, and for a
    /// ServiceAccount `system:serviceaccounts` and `system:serviceaccounts:<namespace>`.
    pub fn named(username: &str, groups: Vec<String>) -> Self {
        let mut user = Self {
            username: username.to_owned(),
            uid: String::new(),
            groups,
            extra: BTreeMap::new(),
        };
        if let Some(ns) = username
            .strip_prefix(SA_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .map(|(ns, _)| ns)
        {
            user.add_group("system:serviceaccounts".into());
            user.add_group(format!("system:serviceaccounts:{ns}"));
        }
        user.add_group("system:authenticated".into());
        user
    }

    /// The ServiceAccount `namespace/name` whose token was issued to a pod on `node` (the
    /// claims Kubernetes 1.30+ puts into such tokens).
    pub fn service_account_on_node(namespace: &str, name: &str, node: &str) -> Self {
        let mut user = Self::named(&format!("{SA_PREFIX}{namespace}:{name}"), Vec::new());
        user.extra.insert(
            "authentication.kubernetes.io/node-name".into(),
            vec![node.to_owned()],
        );
        user
    }

    /// Makes a kube client built from `config` act as this user (impersonation headers).
    pub fn impersonate(&self, config: &mut kube::Config) {
        config.auth_info.impersonate = Some(self.username.clone());
        config.auth_info.impersonate_groups = Some(self.groups.clone());
        config.auth_info.impersonate_user_extra = Some(self.extra.clone().into_iter().collect());
        if !self.uid.is_empty() {
            config.auth_info.impersonate_uid = Some(self.uid.clone());
        }
    }

    fn add_group(&mut self, group: String) {
        if !self.groups.contains(&group) {
            self.groups.push(group);
        }
    }

    /// The identity a request acts as: the administrator, or whom its impersonation headers
    /// name. Groups, UID or extras without a user are a 400, as on the real server.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let values = |name: &str| -> Result<Vec<String>, ApiError> {
            headers
                .get_all(name)
                .iter()
                .map(|v| {
                    v.to_str().map(str::to_owned).map_err(|_| {
                        ApiError::bad_request(format!("the {name} header is not valid text"))
                    })
                })
                .collect()
        };
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for name in headers.keys() {
            if let Some(encoded) = name.as_str().strip_prefix(EXTRA_PREFIX) {
                let key = percent_encoding::percent_decode_str(encoded)
                    .decode_utf8_lossy()
                    .to_lowercase();
                extra.entry(key).or_default().extend(values(name.as_str())?);
            }
        }
        let groups = values(GROUP)?;
        let uid = values(UID)?.into_iter().next().unwrap_or_default();
        let Some(username) = values(USER)?.into_iter().next() else {
            if !groups.is_empty() || !extra.is_empty() || !uid.is_empty() {
                return Err(ApiError::bad_request(
                    "requested impersonation of groups, a UID or extra attributes without impersonating a user (Impersonate-User)",
                ));
            }
            return Ok(Self::admin());
        };
        let mut user = Self::named(&username, groups);
        user.uid = uid;
        user.extra = extra;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn no_headers_is_the_administrator() {
        assert_eq!(
            UserInfo::from_headers(&headers(&[])).unwrap(),
            UserInfo::admin()
        );
    }

    #[test]
    fn impersonation_headers_name_the_user_groups_and_extras() {
        let u = UserInfo::from_headers(&headers(&[
            ("Impersonate-User", "system:serviceaccount:kube-system:cni"),
            ("Impersonate-Group", "team"),
            (
                "Impersonate-Extra-authentication.kubernetes.io%2fnode-name",
                "node-a",
            ),
            ("Impersonate-Extra-Scopes", "a"),
            ("Impersonate-Extra-scopes", "b"),
        ]))
        .unwrap();
        assert_eq!(u.username, "system:serviceaccount:kube-system:cni");
        assert_eq!(
            u.groups,
            [
                "team",
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated"
            ]
        );
        assert_eq!(
            u.extra["authentication.kubernetes.io/node-name"],
            ["node-a"]
        );
        assert_eq!(u.extra["scopes"], ["a", "b"]);
        assert_eq!(
            u,
            UserInfo {
                groups: u.groups.clone(),
                extra: u.extra.clone(),
                ..UserInfo::service_account_on_node("kube-system", "cni", "node-a")
            }
        );
    }

    #[test]
    fn groups_without_a_user_are_refused() {
        let e = UserInfo::from_headers(&headers(&[("Impersonate-Group", "system:masters")]))
            .unwrap_err();
        assert_eq!(e.code, 400);
    }
}
