//! Offline admission for custom resources: what the Kubernetes API server does to a custom
//! resource between decoding and storage (prune unknown fields, apply schema defaults, validate
//! against the OpenAPI v3 schema and its CEL rules), reported with the server's field paths and
//! messages. It knows nothing of our kinds: it takes a CRD version's `openAPIV3Schema`.
//!
//! Also evaluates a ValidatingAdmissionPolicy's warnings offline ([`PolicyRules`]).
//!
//! Used by `egressctl validate` (offline checks with the same rules as admission) and by the
//! in-memory API server used in tests and the simulator.

mod error;
mod formats;
mod openapi;
mod policy;
mod prune;
mod validator;

pub use error::{FieldError, FieldErrorKind, SchemaError};
pub use policy::PolicyRules;
pub use validator::SchemaValidator;
