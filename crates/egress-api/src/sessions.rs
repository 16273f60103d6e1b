//! The gateway's *sessions* query. A CNI manager asks each healthy gateway node of an SGC,
//! every few seconds, which of its pods hold a WireGuard session there, so that when a
//! gateway node is lost it re-handshakes only the tunnels whose session was on the lost
//! node, at once (docs/design.md, "Only the dead node's tunnels").
//!
//! `GET /sessions/<SGC UID>/<pod IP>,<pod IP>,...` on the gateway daemon's health port
//! answers, for each pod IP that is a peer's allowed address on that node's gateway, the
//! peer's latest handshake in milliseconds since the Unix epoch. Peers without a handshake,
//! and unknown IPs, are absent. Pod IPs rather than keys: the manager knows them from its
//! tunnel records without reading a device, and on one gateway device an address belongs to
//! one peer only.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The port the daemon answers on by default (its `--health-addr`).
pub const DEFAULT_PORT: u16 = 8081;
/// Path prefix of the query.
pub const PATH_PREFIX: &str = "/sessions/";
/// Most pod IPs in one query (more than the pods a node can run: the answer stays small).
pub const MAX_IPS: usize = 1024;

/// The query's path for `uid` and `ips`.
pub fn path<'a>(uid: &str, ips: impl IntoIterator<Item = &'a IpAddr>) -> String {
    let ips: Vec<String> = ips.into_iter().map(ToString::to_string).collect();
    format!("{PATH_PREFIX}{uid}/{}", ips.join(","))
}

/// The answer: pod IP → latest handshake (ms since the Unix epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsAnswer {
    /// Pods with a handshake on this gateway node.
    pub sessions: BTreeMap<IpAddr, i64>,
}

/// A query path that is not `/sessions/<uid>/<pod IPs>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Not under [`PATH_PREFIX`], or no `/` after the UID.
    #[error("expected /sessions/<SGC UID>/<pod IP>,<pod IP>,...")]
    Shape,
    /// An SGC UID with characters a UID does not have.
    #[error("{0:?} is not an SGC UID")]
    Uid(String),
    /// Not an IP address.
    #[error("{0:?} is not a pod IP address")]
    Ip(String),
    /// More than [`MAX_IPS`] addresses.
    #[error("{0} pod IPs in one query; at most {MAX_IPS}")]
    TooMany(usize),
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The SGC's UID.
    pub uid: String,
    /// The pods asked about.
    pub ips: Vec<IpAddr>,
}

/// Parses a query path (bounded: an untrusted client writes it).
pub fn parse(path: &str) -> Result<Query, QueryError> {
    let rest = path.strip_prefix(PATH_PREFIX).ok_or(QueryError::Shape)?;
    let (uid, ips) = rest.split_once('/').ok_or(QueryError::Shape)?;
    if uid.is_empty()
        || uid.len() > 64
        || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(QueryError::Uid(uid.chars().take(64).collect()));
    }
    let count = ips.split(',').count();
    if count > MAX_IPS {
        return Err(QueryError::TooMany(count));
    }
    let ips: Vec<IpAddr> = ips
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| QueryError::Ip(t.chars().take(48).collect()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Query {
        uid: uid.to_owned(),
        ips,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_path_and_an_answer_round_trip() {
        let ips: Vec<IpAddr> = vec!["10.244.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        let p = path("0d5b-77", &ips);
        assert_eq!(p, "/sessions/0d5b-77/10.244.0.5,fd00::5");
        let q = parse(&p).unwrap();
        assert_eq!(q.uid, "0d5b-77");
        assert_eq!(q.ips, ips);
        assert!(parse("/sessions/u1/").unwrap().ips.is_empty());
        let a = SessionsAnswer {
            sessions: [(ips[0], 42)].into(),
        };
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(text, r#"{"sessions":{"10.244.0.5":42}}"#);
        assert_eq!(serde_json::from_str::<SessionsAnswer>(&text).unwrap(), a);
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        assert_eq!(parse("/gw/u1"), Err(QueryError::Shape));
        assert_eq!(parse("/sessions/u1"), Err(QueryError::Shape));
        assert!(matches!(
            parse("/sessions/u..1/10.0.0.1"),
            Err(QueryError::Uid(_))
        ));
        assert_eq!(
            parse("/sessions/u1/10.0.0.1,10.0.0.300"),
            Err(QueryError::Ip("10.0.0.300".into()))
        );
        let many = vec!["10.0.0.1"; MAX_IPS + 1].join(",");
        assert_eq!(
            parse(&format!("/sessions/u1/{many}")),
            Err(QueryError::TooMany(MAX_IPS + 1))
        );
        let e = parse("/sessions/u1/zz").unwrap_err().to_string();
        assert!(e.contains("not a pod IP"), "{e}");
    }
}
