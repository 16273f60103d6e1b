//! Field errors in the API server's vocabulary (reasons and message shapes of
//! `k8s.io/apimachinery/pkg/util/validation/field`), and schema compilation errors.

use std::fmt;

use serde_json::Value;

/// What kind of problem a [`FieldError`] reports; maps 1:1 to the API server's cause reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A required field is missing.
    Required,
    /// The value is malformed or out of range.
    Invalid,
    /// The value is not one of the allowed enum values.
    NotSupported,
    /// The value is forbidden in this context.
    Forbidden,
    /// The value has the wrong JSON type.
    TypeInvalid,
    /// A string is longer than allowed.
    TooLong,
    /// A list or map has more items than allowed.
    TooMany,
    /// A set-like list repeats a value.
    Duplicate,
}

impl FieldErrorKind {
    /// The `reason` the API server puts in `Status.details.causes[]`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Duplicate => "FieldValueDuplicate",
        }
    }
}

/// One problem with one field, e.g. `spec.gatewayVmssProfile.publicIpPrefixSize`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Field path in the API server's notation: `spec.excludeCidrs[0]`, `metadata.labels[app]`.
    pub field: String,
    /// The kind of problem.
    pub kind: FieldErrorKind,
    /// The offending value where the server shows one (rendered as the server does).
    pub value: Option<Value>,
    /// Human-readable detail, without the field path.
    pub detail: String,
}

impl FieldError {
    /// Builds an error; `value` is shown in the message for kinds that show one.
    pub fn new(
        field: impl Into<String>,
        kind: FieldErrorKind,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            kind,
            value,
            detail: detail.into(),
        }
    }

    /// The `reason` the API server puts in `Status.details.causes[]`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The message without the field path, as in `Status.details.causes[].message`.
    pub fn message(&self) -> String {
        let value = self.value.as_ref().map(render_value);
        let with_detail = |head: String| {
            if self.detail.is_empty() {
                head
            } else {
                format!("{head}: {}", self.detail)
            }
        };
        match self.kind {
            FieldErrorKind::Required => with_detail("Required value".into()),
            FieldErrorKind::Forbidden => with_detail("Forbidden".into()),
            FieldErrorKind::TooLong => with_detail("Too long".into()),
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => with_detail(format!(
                "Invalid value: {}",
                value.unwrap_or_else(|| "null".into())
            )),
            FieldErrorKind::NotSupported => with_detail(format!(
                "Unsupported value: {}",
                value.unwrap_or_else(|| "null".into())
            )),
            FieldErrorKind::TooMany => with_detail(match value {
                Some(v) => format!("Too many: {v}"),
                None => "Too many".into(),
            }),
            FieldErrorKind::Duplicate => {
                format!(
                    "Duplicate value: {}",
                    value.unwrap_or_else(|| "null".into())
                )
            }
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message())
        } else {
            write!(f, "{}: {}", self.field, self.message())
        }
    }
}

impl std::error::Error for FieldError {}

/// Renders a value the way the API server prints it in messages: strings quoted, objects and
/// arrays by type name.
pub(crate) fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        Value::Null => "\"null\"".into(),
        other => other.to_string(),
    }
}

/// A schema that cannot be used for admission.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A CEL rule in `x-kubernetes-validations` does not compile.
    #[error("failed to compile CEL rules: {0}")]
    CelCompilation(String),
    /// A `pattern` is not a valid regular expression.
    #[error("failed to compile pattern {pattern:?} at {field}: {source}")]
    Pattern {
        /// Field path of the schema node.
        field: String,
        /// The pattern as written.
        pattern: String,
        /// Why it does not compile.
        #[source]
        source: regex::Error,
    },
    /// The schema is not a JSON object.
    #[error("schema at {0} is not an object")]
    NotAnObject(String),
}
