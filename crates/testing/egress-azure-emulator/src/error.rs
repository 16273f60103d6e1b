//! Error types: `ArmError` (an error answer in Azure's `{"error":{"code","message"}}` form) and
//! `EmulatorError` (failures of the public start-up API).

use serde_json::{Value, json};
use std::path::PathBuf;

/// An error the emulator answers with, shaped like Azure Resource Manager errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    /// HTTP status code.
    pub status: u16,
    /// Azure error code, e.g. `ResourceNotFound`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Optional `target` (Compute errors name the offending property).
    pub target: Option<String>,
    /// Optional `details` (inner errors, e.g. the Network provider's `InvalidJson`).
    pub details: Vec<Value>,
}

impl ArmError {
    /// An error with the given status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            target: None,
            details: Vec::new(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 404 Not Found.
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    /// Sets the `target` field.
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Adds an inner error to `details`.
    #[must_use]
    pub fn with_detail(mut self, code: &str, message: impl Into<String>) -> Self {
        self.details
            .push(json!({"code": code, "message": message.into()}));
        self
    }

    /// `{"code","message"[,"target"][,"details"]}` (the inner object of an error body).
    pub fn inner(&self) -> Value {
        let mut v = json!({"code": self.code, "message": self.message});
        if let Some(t) = &self.target {
            v["target"] = json!(t);
        }
        if !self.details.is_empty() {
            v["details"] = json!(self.details);
        }
        v
    }

    /// The full error body `{"error":{...}}`.
    pub fn body(&self) -> Value {
        json!({ "error": self.inner() })
    }
}

/// Failures of the emulator's public API (start-up, seed loading).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listening socket could not be bound.
    #[error("failed to bind the emulator listener on {addr}")]
    Bind {
        /// Address we tried.
        addr: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The seed file could not be read.
    #[error("failed to read the seed file {path}")]
    ReadSeed {
        /// Path of the seed file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The seed file is not valid YAML/JSON for the seed schema.
    #[error("failed to parse the seed file {path}")]
    ParseSeed {
        /// Path of the seed file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The seed parsed but describes an impossible inventory.
    #[error("failed to apply the seed: {0}")]
    InvalidSeed(String),
    /// A fault rule given on the command line is malformed.
    #[error("failed to parse the fault setting: {0}")]
    InvalidFault(String),
    /// A response form cannot be used for an operation.
    #[error("failed to set a response form: {0}")]
    InvalidResponseForm(#[from] crate::forms::FormError),
    /// The TLS certificate could not be made or used.
    #[error("failed to set up TLS: {0}")]
    Tls(String),
}
