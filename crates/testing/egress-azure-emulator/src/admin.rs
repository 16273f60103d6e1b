//! Admin endpoints under `/admin`: inventory, IP map, LB map, request log, fault rules,
//! response forms of long-running operations.
//! They are never logged and never faulted.

use crate::faults::FaultRule;
use crate::http::{Reply, Req};
use crate::inventory::{inventory, ip_map, lb_map};
use crate::request_log::RequestLog;
use crate::server::{Shared, lock};
use serde_json::json;

fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::json(
        status,
        json!({"error": {"code": code, "message": message.into()}}),
    )
}

pub(crate) fn handle(shared: &Shared, req: &Req, segs: &[String]) -> Reply {
    let segs: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let mut st = lock(shared);
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["inventory"]) => Reply::json(200, inventory(&st)),
        ("GET", ["ipmap"]) => Reply::json(200, json!({ "mappings": ip_map(&st.store) })),
        ("GET", ["lbmap"]) => Reply::json(200, lb_map(&st.store)),
        ("GET", ["requests"]) => Reply::json(200, json!(st.log)),
        ("DELETE", ["requests"]) => {
            st.log = RequestLog::default();
            Reply::empty(204)
        }
        ("GET", ["faults"]) => Reply::json(200, faults_json(&st.faults.rules())),
        ("POST", ["faults"]) => match serde_json::from_slice::<FaultRule>(&req.body) {
            Ok(rule) => match rule.validate() {
                Ok(()) => Reply::json(201, json!({ "id": st.faults.add(rule) })),
                Err(e) => error(400, "InvalidFaultRule", e.to_string()),
            },
            Err(e) => error(
                400,
                "InvalidFaultRule",
                format!("failed to parse the fault rule: {e}"),
            ),
        },
        ("GET", ["responseforms"]) => Reply::json(200, st.forms.describe()),
        ("PUT" | "PATCH", ["responseforms"]) => set_forms(&mut st, req),
        ("DELETE", ["responseforms"]) => {
            st.forms.reset();
            Reply::empty(204)
        }
        ("DELETE", ["faults"]) => {
            for (id, _) in st.faults.rules() {
                st.faults.remove(id);
            }
            Reply::empty(204)
        }
        ("DELETE", ["faults", id]) => match id.parse::<u64>() {
            Ok(id) if st.faults.remove(id) => Reply::empty(204),
            _ => error(
                404,
                "FaultRuleNotFound",
                format!("no fault rule with id '{id}'"),
            ),
        },
        _ => error(
            404,
            "NotFound",
            format!(
                "no admin endpoint {} /admin/{} (see docs/azure-emulator.md)",
                req.method,
                segs.join("/")
            ),
        ),
    }
}

/// `{"Operation or glob": "form", ...}`: all or nothing, in order.
fn set_forms(st: &mut crate::state::State, req: &Req) -> Reply {
    let wanted: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(&req.body)
    {
        Ok(m) => m,
        Err(e) => {
            return error(
                400,
                "InvalidResponseForm",
                format!("the body must be a JSON object {{operation: form}}: {e}"),
            );
        }
    };
    let mut next = st.forms.clone();
    for (op, form) in &wanted {
        let parsed = form
            .as_str()
            .ok_or_else(|| crate::forms::FormError(format!("the form of '{op}' must be a string")))
            .and_then(|f| f.parse())
            .and_then(|f| next.set(op, f));
        if let Err(e) = parsed {
            return error(400, "InvalidResponseForm", e.to_string());
        }
    }
    st.forms = next;
    Reply::json(200, st.forms.describe())
}

fn faults_json(rules: &[(u64, FaultRule)]) -> serde_json::Value {
    json!({
        "rules": rules.iter().map(|(id, r)| json!({"id": id, "rule": r})).collect::<Vec<_>>()
    })
}
