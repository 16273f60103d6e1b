//! What the configuration reference must mention: every chart value (dotted path, walked from
//! values.yaml), every long flag and environment variable in a binary's `--help`, and a check
//! that a token appears in a document as a whole word.

use serde_json::Value;

/// Keys whose values are free-form Kubernetes structures or maps: documented as a whole, not
/// walked into (`operator.resources`, not `operator.resources.limits.cpu`).
pub const OPAQUE_KEYS: &[&str] = &[
    "resources",
    "initResources",
    "nodeSelector",
    "tolerations",
    "affinity",
    "podAnnotations",
    "podLabels",
    "serviceAccountAnnotations",
    "commonLabels",
    "labels",
    "extra",
    "extraArgs",
    "extraEnv",
    "imagePullSecrets",
    "exceptionCidrs",
];

/// Dotted paths of every value (leaves and opaque keys), sorted by key at each level.
pub fn value_paths(values: &Value) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        let Some(map) = v.as_object() else { return };
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match child {
                Value::Object(m) if !m.is_empty() && !OPAQUE_KEYS.contains(&k.as_str()) => {
                    walk(&path, child, out)
                }
                _ => out.push(path),
            }
        }
    }
    let mut out = Vec::new();
    walk("", values, &mut out);
    out
}

/// Dotted paths of values.yaml keys that have no `#` comment line right above them. Only keys
/// in `paths` are checked (so entries inside opaque values need none).
pub fn uncommented_values(text: &str, paths: &[String]) -> Vec<String> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut previous = "";
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let key = trimmed
            .split_once(':')
            .map(|(k, _)| k)
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()));
        if let (Some(key), false) = (key, trimmed.starts_with('#') || trimmed.starts_with('-')) {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let path = stack
                .iter()
                .map(|(_, k)| k.as_str())
                .chain(std::iter::once(key))
                .collect::<Vec<_>>()
                .join(".");
            if paths.contains(&path) && !previous.trim_start().starts_with('#') {
                out.push(path);
            }
            stack.push((indent, key.to_owned()));
        }
        if !trimmed.is_empty() {
            previous = line;
        }
    }
    out
}

/// A flag of a binary and its environment fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// `--name`.
    pub long: String,
    /// `NAME` from `[env: NAME=...]`.
    pub env: Option<String>,
}

/// The long flags (without `--help` / `--version`) of clap `--help` output, each with the
/// environment variable clap lists under it.
pub fn help_flags(help: &str) -> Vec<Flag> {
    let mut out: Vec<Flag> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("--").or_else(|| {
            t.strip_prefix('-')
                .and_then(|r| r.split_once(", --").map(|(_, r)| r))
        }) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() && t.starts_with('-') && name != "help" && name != "version" {
                out.push(Flag {
                    long: format!("--{name}"),
                    env: None,
                });
            }
        }
        if let Some(idx) = t.find("[env: ") {
            let env: String = t[idx + 6..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(last) = out.last_mut() {
                last.env = Some(env);
            }
        }
    }
    out
}

/// Whether `token` occurs in `doc` not followed by a character that would make it a longer
/// identifier (`--namespace` is not found in `--namespaces`).
pub fn mentions(doc: &str, token: &str) -> bool {
    doc.match_indices(token).any(|(i, _)| {
        let before_ok = doc[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
        let after_ok = doc[i + token.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        before_ok && after_ok
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn value_paths_stop_at_opaque_keys_and_empty_maps() {
        let v: Value = serde_saphyr::from_str(
            "a: 1\nb:\n  c: x\n  resources: {limits: {cpu: 1}}\n  d: {}\n  image: {name: n}\n",
        )
        .unwrap();
        assert_eq!(
            value_paths(&v),
            ["a", "b.c", "b.d", "b.image.name", "b.resources"]
        );
    }

    #[test]
    fn uncommented_values_are_found_with_their_path() {
        let text = "# doc\na: 1\nb:\n  # doc\n  c: 2\n  d: 3\n";
        let paths = vec!["a".to_owned(), "b.c".to_owned(), "b.d".to_owned()];
        assert_eq!(uncommented_values(text, &paths), ["b.d"]);
    }

    #[test]
    fn help_flags_pair_flags_with_env() {
        let help = "Options:\n      --cloud-config <F>\n          Cloud config\n          \
                    [env: CLOUD_CONFIG=]\n          [default: x]\n      --log-json\n          \
                    Log\n  -h, --help\n          Print help\n  -V, --version\n";
        assert_eq!(
            help_flags(help),
            [
                Flag {
                    long: "--cloud-config".into(),
                    env: Some("CLOUD_CONFIG".into())
                },
                Flag {
                    long: "--log-json".into(),
                    env: None
                }
            ]
        );
    }

    #[test]
    fn mentions_matches_whole_tokens_only() {
        assert!(mentions("use `--namespace NS`", "--namespace"));
        assert!(!mentions("use `--namespaces`", "--namespace"));
        assert!(mentions("| `operator.image.name` |", "operator.image.name"));
        assert!(!mentions("`xoperator.image.name`", "operator.image.name"));
    }
}
