//! Server-side printing: `meta.k8s.io` `Table` answers (what `kubectl get` asks for) built from
//! a resource's printer columns (CRD `additionalPrinterColumns`, JSONPath) or the default
//! Name/Age columns, and `PartialObjectMetadata` views (metadata-only clients).

use jsonpath_rust::JsonPath;
use serde_json::{Value, json};

use crate::printers;
use crate::resource::{PrinterColumn, ResourceInfo};

/// How the client asked for the answer (from `Accept`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The objects themselves.
    Object,
    /// A `Table` (`as=Table;g=meta.k8s.io;v=v1|v1beta1`).
    Table(String),
    /// `PartialObjectMetadata(List)` (`as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`).
    Metadata(String),
}

/// Reads the first acceptable JSON media type of an `Accept` header.
pub fn format_from_accept(accept: &str) -> Format {
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if media != "application/json" && media != "*/*" && media != "application/*" {
            continue;
        }
        let (mut as_, mut g, mut v) = ("", "", "");
        for p in parts {
            match p.split_once('=') {
                Some(("as", x)) => as_ = x,
                Some(("g", x)) => g = x,
                Some(("v", x)) => v = x,
                _ => {}
            }
        }
        match (as_, g) {
            ("", _) => return Format::Object,
            ("Table", "meta.k8s.io") => return Format::Table(v.to_string()),
            ("PartialObjectMetadata" | "PartialObjectMetadataList", "meta.k8s.io") => {
                return Format::Metadata(v.to_string());
            }
            // Other `as=` forms (e.g. aggregated discovery) fall through to plain JSON.
            _ => continue,
        }
    }
    Format::Object
}

/// `kubectl`'s short human duration (`5s`, `3m20s`, `2d4h`, ...).
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (m, h) = (secs / 60, secs / 3600);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{}d", h / 24)
        } else {
            format!("{}d{}h", h / 24, h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{}d", h / 24)
    } else if h < 24 * 365 * 8 {
        format!("{}y{}d", h / 24 / 365, (h / 24) % 365)
    } else {
        format!("{}y", h / 24 / 365)
    }
}

fn age(timestamp: &str) -> Value {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(t) => json!(human_duration(
            jiff::Timestamp::now().as_second() - t.as_second()
        )),
        Err(_) => json!(timestamp),
    }
}

fn cell(obj: &Value, col: &PrinterColumn) -> Value {
    let path = format!("${}", col.json_path.trim_start_matches('$'));
    let found = obj
        .query(&path)
        .ok()
        .and_then(|v| v.first().map(|x| (*x).clone()));
    match (found, col.type_.as_str()) {
        (None | Some(Value::Null), _) => Value::Null,
        (Some(Value::String(s)), "date") => age(&s),
        (Some(v), _) => v,
    }
}

fn metadata_view(obj: &Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// The `PartialObjectMetadata` view of one object.
pub fn partial(obj: &Value, version: &str) -> Value {
    metadata_view(obj, if version.is_empty() { "v1" } else { version })
}

/// Columns of `res` at `version`: Name, then the printer columns (or Age by default).
fn columns(res: &ResourceInfo, version: &str) -> Vec<PrinterColumn> {
    let custom = res
        .version(version)
        .map(|v| v.columns.clone())
        .unwrap_or_default();
    if custom.is_empty() {
        vec![crate::resource::column(
            "Age",
            "date",
            ".metadata.creationTimestamp",
            0,
        )]
    } else {
        custom
    }
}

/// A `Table` of `objects`; `include_object` is `None`/`Object`/`PartialObjectMetadata`.
pub fn table(
    res: &ResourceInfo,
    version: &str,
    table_version: &str,
    objects: &[Value],
    include_object: Option<&str>,
    list_meta: Value,
    with_definitions: bool,
) -> Value {
    let printer = printers::for_resource(res);
    let cols = columns(res, version);
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace.",
    })];
    match &printer {
        Some(p) => defs.extend(p.columns.iter().map(|(name, ty, priority)| {
            json!({"name": name, "type": ty, "format": "", "description": "", "priority": priority})
        })),
        None => defs.extend(cols.iter().map(|c| {
            json!({"name": c.name, "type": c.type_, "format": c.format,
                   "description": c.description, "priority": c.priority})
        })),
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            match &printer {
                Some(p) => cells.extend((p.cells)(o)),
                None => cells.extend(cols.iter().map(|c| cell(o, c))),
            }
            let mut row = json!({"cells": cells});
            match include_object {
                Some("None") => {}
                Some("Object") => row["object"] = o.clone(),
                _ => row["object"] = metadata_view(o, "v1"),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{}", if table_version.is_empty() { "v1" } else { table_version }),
        "metadata": list_meta,
        "columnDefinitions": if with_definitions { json!(defs) } else { json!([]) },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::resource::column;

    #[test]
    fn accept_header_selects_table_or_metadata() {
        assert_eq!(
            format_from_accept(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            ),
            Format::Table("v1".into())
        );
        assert_eq!(
            format_from_accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Format::Metadata("v1".into())
        );
        assert_eq!(
            format_from_accept(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Format::Object
        );
    }

    #[test]
    fn durations_print_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3 + 3600 * 4), "3d4h");
    }

    #[test]
    fn printer_columns_use_jsonpath_filters() {
        let obj = json!({"metadata": {"name": "a"}, "status": {"conditions": [
            {"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let col = column(
            "Ready",
            "string",
            r#".status.conditions[?(@.type=="Ready")].status"#,
            0,
        );
        assert_eq!(cell(&obj, &col), json!("True"));
        assert_eq!(
            cell(&obj, &column("X", "string", ".spec.missing", 0)),
            Value::Null
        );
    }
}
