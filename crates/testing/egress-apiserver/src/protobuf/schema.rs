//! The protobuf schema of the served built-in kinds (`k8s-schema.json`, generated from the
//! k8s-pb crate's types by `generate`), turned into a prost-reflect descriptor pool: one
//! proto2 file per Kubernetes package, map fields as `map_entry` messages, every field with
//! its Kubernetes JSON name as `json_name`.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::DescriptorPool;
use prost_types::field_descriptor_proto::{Label, Type as PbType};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MessageOptions,
};
use serde::{Deserialize, Serialize};

/// One field: `[tag, json name, type, message]` in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldDef {
    /// Field number.
    pub tag: u32,
    /// Kubernetes JSON name (also the proto field name); empty for an embedded Go struct,
    /// whose fields are inlined into the parent's JSON object.
    pub json: String,
    /// `string`, `bytes`, `bool`, `int32`, `int64`, `uint32`, `uint64`, `double`, `float`,
    /// `message`, `map<string,string|bytes|message>`.
    pub kind: String,
    /// Repeated (maps are not).
    pub repeated: bool,
    /// Full name of the message type (messages and message-valued maps).
    pub message: Option<String>,
}

/// The whole schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Provenance line.
    #[cfg_attr(not(test), expect(dead_code, reason = "written back by the generator"))]
    pub generated_from: String,
    /// Fields (`message.field`) k8s-openapi has no property for, named by the lower camel case
    /// of k8s-pb's field name (list wrappers, WatchEvent, Unknown: no acronyms there).
    #[cfg_attr(not(test), expect(dead_code, reason = "written back by the generator"))]
    pub camel_case_names: Vec<String>,
    /// Full name -> fields.
    pub messages: BTreeMap<String, Vec<FieldDef>>,
}

/// A field as written in the file: `[tag, json name, type, message]`.
type FieldRow = (u32, String, String, Option<String>);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileForm {
    generated_from: String,
    camel_case_names: Vec<String>,
    messages: BTreeMap<String, Vec<FieldRow>>,
}

/// Name prefix of the fields holding an embedded Go struct (inlined into the parent's JSON).
pub const INLINE_PREFIX: &str = "__inline_";

const TEXT: &str = include_str!("k8s-schema.json");

impl Schema {
    /// The checked-in schema.
    pub fn load() -> Self {
        Self::parse(TEXT).unwrap_or_default()
    }

    fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let f: FileForm = serde_json::from_str(text)?;
        let messages = f
            .messages
            .into_iter()
            .map(|(name, fields)| {
                let defs = fields
                    .into_iter()
                    .map(|(tag, json, ty, message)| {
                        let (repeated, kind) = match ty.strip_prefix("repeated ") {
                            Some(k) => (true, k.to_string()),
                            None => (false, ty),
                        };
                        FieldDef {
                            tag,
                            json,
                            kind,
                            repeated,
                            message,
                        }
                    })
                    .collect();
                (name, defs)
            })
            .collect();
        Ok(Self {
            generated_from: f.generated_from,
            camel_case_names: f.camel_case_names,
            messages,
        })
    }

    /// The file form: one message per line, so a regeneration diffs per message.
    #[cfg(test)]
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"generatedFrom\": {},", q(&self.generated_from));
        let names: Vec<String> = self.camel_case_names.iter().map(|n| q(n)).collect();
        let _ = writeln!(out, "  \"camelCaseNames\": [{}],", names.join(", "));
        out.push_str("  \"messages\": {\n");
        let last = self.messages.len().saturating_sub(1);
        for (i, (name, fields)) in self.messages.iter().enumerate() {
            let fs: Vec<String> = fields
                .iter()
                .map(|f| {
                    let ty = if f.repeated {
                        format!("repeated {}", f.kind)
                    } else {
                        f.kind.clone()
                    };
                    match &f.message {
                        Some(m) => format!("[{}, {}, {}, {}]", f.tag, q(&f.json), q(&ty), q(m)),
                        None => format!("[{}, {}, {}, null]", f.tag, q(&f.json), q(&ty)),
                    }
                })
                .collect();
            let comma = if i == last { "" } else { "," };
            let _ = writeln!(out, "    {}: [{}]{comma}", q(name), fs.join(", "));
        }
        out.push_str("  }\n}\n");
        out
    }

    /// The descriptor pool of every message.
    pub fn pool(&self) -> Result<DescriptorPool, prost_reflect::DescriptorError> {
        let mut files: BTreeMap<String, (FileDescriptorProto, BTreeSet<String>)> = BTreeMap::new();
        for (full, fields) in &self.messages {
            let (package, name) = full.rsplit_once('.').unwrap_or(("", full));
            let (file, deps) = files.entry(package.to_string()).or_insert_with(|| {
                (
                    FileDescriptorProto {
                        name: Some(format!("{package}.proto")),
                        package: Some(package.to_string()),
                        syntax: Some("proto2".into()),
                        ..Default::default()
                    },
                    BTreeSet::new(),
                )
            });
            let mut msg = DescriptorProto {
                name: Some(name.to_string()),
                ..Default::default()
            };
            for f in fields {
                if let Some(m) = &f.message
                    && let Some((p, _)) = m.rsplit_once('.')
                    && p != package
                {
                    deps.insert(format!("{p}.proto"));
                }
                msg.field.push(field_proto(f, full, &mut msg.nested_type));
            }
            file.message_type.push(msg);
        }
        let set = FileDescriptorSet {
            file: files
                .into_values()
                .map(|(mut f, deps)| {
                    f.dependency = deps.into_iter().collect();
                    f
                })
                .collect(),
        };
        DescriptorPool::from_file_descriptor_set(set)
    }
}

fn scalar(kind: &str) -> PbType {
    match kind {
        "string" => PbType::String,
        "bytes" => PbType::Bytes,
        "bool" => PbType::Bool,
        "int32" => PbType::Int32,
        "int64" => PbType::Int64,
        "uint32" => PbType::Uint32,
        "uint64" => PbType::Uint64,
        "double" => PbType::Double,
        "float" => PbType::Float,
        _ => PbType::Message,
    }
}

/// A field of the message `owner` (full name); a map field also adds its entry message to
/// `nested`.
fn field_proto(
    f: &FieldDef,
    owner: &str,
    nested: &mut Vec<DescriptorProto>,
) -> FieldDescriptorProto {
    let name = if f.json.is_empty() {
        format!("{INLINE_PREFIX}{}", f.tag)
    } else {
        f.json.replace(['-', '$'], "_")
    };
    let mut fp = FieldDescriptorProto {
        json_name: Some(name.clone()),
        name: Some(name),
        number: Some(f.tag as i32),
        label: Some(if f.repeated {
            Label::Repeated
        } else {
            Label::Optional
        } as i32),
        ..Default::default()
    };
    if let Some(value) = f
        .kind
        .strip_prefix("map<string,")
        .and_then(|v| v.strip_suffix('>'))
    {
        let entry = format!("{}Entry", upper_first(&f.json));
        let mut value_field = FieldDescriptorProto {
            name: Some("value".into()),
            json_name: Some("value".into()),
            number: Some(2),
            label: Some(Label::Optional as i32),
            r#type: Some(scalar(value) as i32),
            ..Default::default()
        };
        if value == "message" {
            value_field.type_name = f.message.as_ref().map(|m| format!(".{m}"));
        }
        nested.push(DescriptorProto {
            name: Some(entry.clone()),
            field: vec![
                FieldDescriptorProto {
                    name: Some("key".into()),
                    json_name: Some("key".into()),
                    number: Some(1),
                    label: Some(Label::Optional as i32),
                    r#type: Some(PbType::String as i32),
                    ..Default::default()
                },
                value_field,
            ],
            options: Some(MessageOptions {
                map_entry: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
        fp.label = Some(Label::Repeated as i32);
        fp.r#type = Some(PbType::Message as i32);
        fp.type_name = Some(format!(".{owner}.{entry}"));
        return fp;
    }
    fp.r#type = Some(scalar(&f.kind) as i32);
    if f.kind == "message" {
        fp.type_name = f.message.as_ref().map(|m| format!(".{m}"));
    }
    fp
}

fn upper_first(s: &str) -> String {
    let mut cs = s.chars();
    cs.next()
        .map(|c| c.to_uppercase().chain(cs).collect())
        .unwrap_or_default()
}
