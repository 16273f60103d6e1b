//! HTTP plumbing shared by all handlers: the parsed request (`Req`) and the answer (`Reply`).

use crate::error::ArmError;
use bytes::Bytes;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A request as handlers see it: method, raw path split in segments, query, headers of interest, body.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: String,
    pub path: String,
    pub segs: Vec<String>,
    /// Query parameters with lower-cased keys.
    pub query: BTreeMap<String, String>,
    /// Headers with lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
    pub peer: Option<SocketAddr>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn api_version(&self) -> Option<&str> {
        self.query.get("api-version").map(String::as_str)
    }

    /// The JSON object body, or `InvalidRequestContent` as ARM answers for unparsable bodies.
    pub fn json_object(&self) -> Result<Value, ArmError> {
        if self.body.is_empty() {
            return Err(ArmError::bad_request(
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: the body is empty.",
            ));
        }
        let v: Value = serde_json::from_slice(&self.body).map_err(|e| {
            ArmError::bad_request(
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: '{e}'."),
            )
        })?;
        if !v.is_object() {
            return Err(ArmError::bad_request(
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: expected a JSON object.",
            ));
        }
        Ok(v)
    }
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds the `ETag` header from the body's `etag`, as ARM does on GET/PUT.
    #[must_use]
    pub fn with_etag_header(self) -> Self {
        let etag = self
            .body
            .as_ref()
            .and_then(|b| b.get("etag"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        match etag {
            Some(e) => self.header("ETag", e),
            None => self,
        }
    }
}

impl From<ArmError> for Reply {
    fn from(e: ArmError) -> Self {
        Reply::json(e.status, e.body())
    }
}
