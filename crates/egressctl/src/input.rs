//! Reading manifests: files, directories (recursively, `*.yaml|*.yml|*.json`, sorted) or stdin,
//! split into YAML documents that remember where they came from.

use std::io::Read;
use std::path::{Path, PathBuf};

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

/// Splits a multi-document YAML text at `---` lines and parses each document on its own, so a
/// syntax error is reported against its document and the following documents are still
/// checked. Documents are numbered from 1, counting only those with content (comments and
/// empty documents around separators do not count).
pub fn split(source: &str, text: &str) -> Vec<Document> {
    // (first line number in the file, text)
    let mut chunks = vec![(1_u64, String::new())];
    for (n, line) in (1_u64..).zip(text.lines()) {
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            // A document may start on the separator line (`--- {a: 1}`).
            chunks.push((n, format!("{}\n", &line[3..])));
        } else if line != "..."
            && let Some((_, last)) = chunks.last_mut()
        {
            last.push_str(line);
            last.push('\n');
        }
    }
    let mut docs = Vec::new();
    for (start, chunk) in chunks {
        let value = match serde_saphyr::from_str::<Value>(&chunk) {
            Ok(Value::Null) => continue,
            Ok(v) => Ok(v),
            Err(e) => Err(yaml_error(&e, start)),
        };
        docs.push(Document {
            source: source.into(),
            index: docs.len() + 1,
            value,
        });
    }
    docs
}

/// `invalid YAML at line 12 column 7: unclosed bracket '['`, with the line counted in the file.
fn yaml_error(e: &serde_saphyr::Error, chunk_start: u64) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match e.location() {
        Some(loc) => {
            let msg = first
                .strip_prefix("line ")
                .and_then(|rest| rest.split_once(": "))
                .map_or(first, |(_, m)| m);
            format!(
                "invalid YAML at line {} column {}: {msg}",
                chunk_start + loc.line() - 1,
                loc.column()
            )
        }
        None => format!("invalid YAML: {first}"),
    }
}
