//! Response forms of long-running operations. Where the REST specification documents more than
//! one way an operation may answer (200/201 with the body vs 202, `Azure-AsyncOperation` vs
//! `Location`, or a result that is final at once), the emulator can be told which to use, per
//! operation, so clients are tested against every form they can meet in Azure.
//!
//! The table below is the contract: which forms each operation may use (from its `responses` in
//! Azure/azure-rest-api-specs) and the default (what Azure is observed to answer). A form an
//! operation's spec does not document is refused when configured, never served.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::faults::glob_match;

/// How the first answer of a long-running operation looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResponseForm {
    /// Writes: 200/201 with the body (`provisioningState: Updating`); deletes and actions: 202
    /// without a body. Header `Azure-AsyncOperation` (status monitor).
    Async,
    /// As `async`, but with a `Location` header (result URL) instead.
    Location,
    /// As `async`, with both `Azure-AsyncOperation` and `Location` (what ARM sends on a 202).
    Both,
    /// 202 with the body and both headers, for writes whose spec documents a 202 (scale-set
    /// instance update).
    Accepted,
    /// 200/201 with the body in `Updating` and no polling header: the client polls the resource.
    Polled,
    /// Complete at once: writes answer 200/201 with the final body, deletes and actions 200.
    Done,
}

impl ResponseForm {
    /// Every form, in documentation order.
    pub const ALL: [ResponseForm; 6] = [
        Self::Async,
        Self::Location,
        Self::Both,
        Self::Accepted,
        Self::Polled,
        Self::Done,
    ];

    /// The form's name as written in flags, seeds and admin requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Async => "async",
            Self::Location => "location",
            Self::Both => "both",
            Self::Accepted => "accepted",
            Self::Polled => "polled",
            Self::Done => "done",
        }
    }

    /// True when the first answer carries `Azure-AsyncOperation`.
    pub fn has_async_header(self) -> bool {
        matches!(self, Self::Async | Self::Both | Self::Accepted)
    }

    /// True when the first answer carries `Location`.
    pub fn has_location_header(self) -> bool {
        matches!(self, Self::Location | Self::Both | Self::Accepted)
    }
}

impl fmt::Display for ResponseForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResponseForm {
    type Err = FormError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                FormError(format!(
                    "unknown response form '{s}' (expected one of: {})",
                    names(&Self::ALL)
                ))
            })
    }
}

/// What kind of long-running operation an operation is (decides status codes and final answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LroClass {
    /// PUT/PATCH of a resource: answers with its body; the result is the resource.
    Write,
    /// DELETE: no body; the result is 204/200.
    Delete,
    /// POST action (`manualupgrade`): no body; the result is 200 without a body.
    Action,
}

/// One long-running operation of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LroOperation {
    pub name: &'static str,
    pub class: LroClass,
    pub allowed: &'static [ResponseForm],
    pub default: ResponseForm,
}

use ResponseForm::{Accepted, Async, Both, Done, Location, Polled};

/// Network PUT: `responses` 200 and 201 with the resource; header `Azure-AsyncOperation`.
const NETWORK_PUT: &[ResponseForm] = &[Async, Polled, Done];
/// Public IP prefix PUT: as other Network PUTs, and the spec documents `Location` too.
const PREFIX_PUT: &[ResponseForm] = &[Async, Location, Polled, Done];
/// Network DELETE: 200, 202 (`Location`), 204; ARM's 202 also carries `Azure-AsyncOperation`.
const NETWORK_DELETE: &[ResponseForm] = &[Both, Location, Async, Done];
/// Scale-set PUT (200/201) and PATCH (200 only): the body always comes back, never a 202.
const COMPUTE_WRITE: &[ResponseForm] = &[Async, Location, Both, Polled, Done];
/// Scale-set instance PUT: 200 with the body, or 202 with the body and `Location`.
const INSTANCE_WRITE: &[ResponseForm] = &[Async, Location, Both, Accepted, Polled, Done];
/// `manualupgrade` (POST): 200 or 202 with `Location`.
const COMPUTE_ACTION: &[ResponseForm] = &[Both, Location, Async, Done];

/// Every long-running operation the emulator serves, with its documented forms.
pub(crate) const LRO_OPERATIONS: &[LroOperation] = &[
    lro(
        "LoadBalancers.CreateOrUpdate",
        LroClass::Write,
        NETWORK_PUT,
        Async,
    ),
    lro(
        "LoadBalancers.Delete",
        LroClass::Delete,
        NETWORK_DELETE,
        Both,
    ),
    lro(
        "PublicIPPrefixes.CreateOrUpdate",
        LroClass::Write,
        PREFIX_PUT,
        Async,
    ),
    lro(
        "PublicIPPrefixes.Delete",
        LroClass::Delete,
        NETWORK_DELETE,
        Both,
    ),
    lro(
        "PublicIPAddresses.CreateOrUpdate",
        LroClass::Write,
        NETWORK_PUT,
        Async,
    ),
    lro(
        "PublicIPAddresses.Delete",
        LroClass::Delete,
        NETWORK_DELETE,
        Both,
    ),
    lro(
        "NetworkInterfaces.CreateOrUpdate",
        LroClass::Write,
        NETWORK_PUT,
        Async,
    ),
    lro(
        "NetworkInterfaces.Delete",
        LroClass::Delete,
        NETWORK_DELETE,
        Both,
    ),
    lro(
        "VirtualMachineScaleSets.CreateOrUpdate",
        LroClass::Write,
        COMPUTE_WRITE,
        Async,
    ),
    lro(
        "VirtualMachineScaleSets.Update",
        LroClass::Write,
        COMPUTE_WRITE,
        Async,
    ),
    lro(
        "VirtualMachineScaleSets.UpdateInstances",
        LroClass::Action,
        COMPUTE_ACTION,
        Both,
    ),
    lro(
        "VirtualMachineScaleSetVMs.Update",
        LroClass::Write,
        INSTANCE_WRITE,
        Async,
    ),
];

const fn lro(
    name: &'static str,
    class: LroClass,
    allowed: &'static [ResponseForm],
    default: ResponseForm,
) -> LroOperation {
    LroOperation {
        name,
        class,
        allowed,
        default,
    }
}

/// The table entry of an operation, if it is long-running.
pub(crate) fn operation(name: &str) -> Option<&'static LroOperation> {
    LRO_OPERATIONS
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(name))
}

fn names(forms: &[ResponseForm]) -> String {
    forms
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A response-form setting that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormError(pub String);

/// The form each long-running operation answers with (defaults unless overridden).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FormTable {
    overrides: BTreeMap<&'static str, ResponseForm>,
}

impl FormTable {
    /// The form `op` answers with now.
    pub fn form(&self, op: &LroOperation) -> ResponseForm {
        self.overrides.get(op.name).copied().unwrap_or(op.default)
    }

    /// Sets `form` for every operation matching `glob` (case-insensitive, `*` wildcard) whose
    /// spec documents it. An exact name must allow the form; a glob must match at least one
    /// operation that allows it (the others keep their form). Nothing changes on error.
    pub fn set(&mut self, glob: &str, form: ResponseForm) -> Result<Vec<&'static str>, FormError> {
        let matching: Vec<&LroOperation> = LRO_OPERATIONS
            .iter()
            .filter(|o| glob_match(glob, o.name))
            .collect();
        if matching.is_empty() {
            return Err(FormError(format!(
                "'{glob}' matches no long-running operation (known: {})",
                LRO_OPERATIONS
                    .iter()
                    .map(|o| o.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let exact = !glob.contains('*');
        let fitting: Vec<&LroOperation> = matching
            .iter()
            .copied()
            .filter(|o| o.allowed.contains(&form))
            .collect();
        if fitting.is_empty() || (exact && fitting.len() != matching.len()) {
            let o = matching[0];
            return Err(FormError(format!(
                "the REST specification of {} documents no '{form}' answer (allowed: {})",
                if exact { o.name } else { glob },
                names(o.allowed)
            )));
        }
        Ok(fitting
            .into_iter()
            .map(|o| {
                self.overrides.insert(o.name, form);
                o.name
            })
            .collect())
    }

    /// Back to the defaults.
    pub fn reset(&mut self) {
        self.overrides.clear();
    }

    /// `{operation: {form, allowed, default}}` for the admin endpoint.
    pub fn describe(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = LRO_OPERATIONS
            .iter()
            .map(|o| {
                (
                    o.name.to_owned(),
                    serde_json::json!({
                        "form": self.form(o),
                        "default": o.default,
                        "allowed": o.allowed,
                    }),
                )
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// Parses `OP=FORM` (the `--response-form` flag).
pub fn parse_setting(s: &str) -> Result<(String, ResponseForm), FormError> {
    let (op, form) = s.split_once('=').ok_or_else(|| {
        FormError(format!(
            "'{s}' is not OPERATION=FORM (e.g. VirtualMachineScaleSets.Update=location)"
        ))
    })?;
    let op = op.trim();
    if op.is_empty() {
        return Err(FormError(format!("'{s}' names no operation")));
    }
    Ok((op.to_owned(), form.parse()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_default_is_allowed_and_every_form_is_used_somewhere() {
        for o in LRO_OPERATIONS {
            assert!(o.allowed.contains(&o.default), "{}", o.name);
        }
        for f in ResponseForm::ALL {
            assert!(LRO_OPERATIONS.iter().any(|o| o.allowed.contains(&f)), "{f}");
        }
    }

    #[test]
    fn undocumented_forms_are_refused() {
        let mut t = FormTable::default();
        let e = t
            .set("VirtualMachineScaleSets.Update", ResponseForm::Accepted)
            .unwrap_err();
        assert!(e.0.contains("documents no 'accepted'"), "{e}");
        assert!(t.set("LoadBalancers.CreateOrUpdate", Location).is_err());
        assert!(t.set("Nope.*", Done).is_err());
        assert_eq!(t, FormTable::default(), "nothing changed");
    }

    #[test]
    fn globs_apply_to_the_operations_that_allow_the_form() {
        let mut t = FormTable::default();
        let set = t.set("*", Location).unwrap();
        assert!(set.contains(&"VirtualMachineScaleSets.Update"));
        assert!(!set.contains(&"LoadBalancers.CreateOrUpdate"));
        let lb = operation("loadbalancers.createorupdate").unwrap();
        assert_eq!(t.form(lb), Async, "kept its default");
        let vmss = operation("VirtualMachineScaleSets.Update").unwrap();
        assert_eq!(t.form(vmss), Location);
        t.reset();
        assert_eq!(t.form(vmss), Async);
    }

    #[test]
    fn settings_parse() {
        assert_eq!(
            parse_setting("LoadBalancers.Delete=Done").unwrap(),
            ("LoadBalancers.Delete".into(), Done)
        );
        assert!(parse_setting("x").is_err());
        assert!(
            parse_setting("x=teapot")
                .unwrap_err()
                .0
                .contains("unknown response form")
        );
    }
}
