//! Error types of the crate: one enum for patching/bookkeeping, one for server-side apply.

use std::fmt;

/// Failure of a strategic merge patch, a managedFields update or a schema lookup.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The document is not a JSON object where one is required.
    #[error("failed to patch: {what} must be a JSON object")]
    NotAnObject {
        /// Which document (e.g. "patch", "live object").
        what: String,
    },
    /// A `$patch`, `$retainKeys`, `$setElementOrder/…` or `$deleteFromPrimitiveList/…`
    /// directive is malformed.
    #[error("failed to patch: invalid directive at {path}: {message}")]
    InvalidDirective {
        /// Field path where the directive was found.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A list merged by key has an element without the merge key.
    #[error("failed to patch: map in list at {path} has no merge key {key:?}")]
    MissingMergeKey {
        /// Field path of the list.
        path: String,
        /// The merge key that is missing.
        key: String,
    },
    /// `metadata.managedFields` of an object cannot be decoded.
    #[error("failed to decode managed fields: {0}")]
    ManagedFields(String),
    /// An object does not fit the list/map types (duplicate keys, missing key fields, ...).
    #[error("failed to compute field set: {0}")]
    InvalidObject(String),
    /// No field manager name was given.
    #[error("failed to record field ownership: fieldManager must be set")]
    MissingManager,
    /// A CRD openAPIV3Schema carries invalid list/map type annotations.
    #[error("failed to read schema: {0}")]
    InvalidSchema(String),
}

/// One field owned by another manager that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    /// Name of the manager that owns the field.
    pub manager: String,
    /// Field path in the server's wording, e.g. `.spec.replicas` or
    /// `.spec.containers[name="c"].image`.
    pub field: String,
    /// The server's cause message, e.g. `conflict with "kubectl" using apps/v1`.
    pub message: String,
}

/// Failure of a server-side apply.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change; retry with `force` to take them over.
    /// Displays exactly like the real API server's 409 message.
    #[error("{}", conflict_message(.conflicts))]
    Conflict {
        /// Every conflicting (manager, field) pair, sorted by manager then field.
        conflicts: Vec<FieldConflict>,
    },
    /// The applied configuration is unacceptable (400/422 on a real server).
    #[error("failed to apply: {0}")]
    Invalid(String),
    /// Bookkeeping or merge failure.
    #[error(transparent)]
    Patch(#[from] PatchError),
}

/// The real API server's message for apply conflicts (`Apply failed with N conflicts: ...`).
pub fn conflict_message(conflicts: &[FieldConflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: {}: {}",
            only.message, only.field
        );
    }
    let mut lines = Vec::new();
    let mut current: Option<&str> = None;
    for conflict in conflicts {
        if current != Some(conflict.message.as_str()) {
            lines.push(format!(
                "conflicts with {}:",
                without_prefix(&conflict.message)
            ));
            current = Some(conflict.message.as_str());
        }
        lines.push(format!("- {}", conflict.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

fn without_prefix(message: &str) -> &str {
    message.strip_prefix("conflict with ").unwrap_or(message)
}

impl fmt::Display for FieldConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message, self.field)
    }
}
