//! Reading manifests: files, directories (recursively, `*.yaml|*.yml|*.json`, sorted) or stdin,
//! split into YAML documents that remember where they came from.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// One YAML document of one input.
#[derive(Debug)]
pub struct Document {
    /// File path as given (or `-` for stdin).
    pub source: String,
    /// 1-based position of the document in its file.
    pub index: usize,
    /// The parsed document, or why it could not be parsed.
    pub value: Result<Value, String>,
}

/// An input that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The path does not exist or cannot be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A directory contained no manifest files.
    #[error("no *.yaml, *.yml or *.json files in directory {0}")]
    EmptyDir(String),
}

/// Reads every document of `path` (`-` = stdin).
pub fn read(path: &str) -> Result<Vec<Document>, InputError> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| InputError::Read {
                path: "-".into(),
                source,
            })?;
        return Ok(split("-", &text));
    }
    let p = Path::new(path);
    let meta = std::fs::metadata(p).map_err(|source| InputError::Read {
        path: path.into(),
        source,
    })?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        collect(p, &mut files).map_err(|source| InputError::Read {
            path: path.into(),
            source,
        })?;
        if files.is_empty() {
            return Err(InputError::EmptyDir(path.into()));
        }
        files
    } else {
        vec![p.to_path_buf()]
    };
    let mut docs = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|source| InputError::Read {
            path: name.clone(),
            source,
        })?;
        docs.extend(split(&name, &text));
    }
    Ok(docs)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Splits a multi-document YAML text; empty documents (e.g. a trailing `---`) are skipped but
/// still count for numbering, as a reader counting `---` would expect.
pub fn split(source: &str, text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = match serde_yaml::Value::deserialize(de) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(v) => serde_json::to_value(v).map_err(|e| format!("not representable as JSON: {e}")),
            Err(e) => {
                docs.push(Document {
                    source: source.into(),
                    index: i + 1,
                    value: Err(format!("invalid YAML: {e}")),
                });
                // The YAML stream cannot be resynchronised after a syntax error.
                break;
            }
        };
        docs.push(Document {
            source: source.into(),
            index: i + 1,
            value,
        });
    }
    docs
}
