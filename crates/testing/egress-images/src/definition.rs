//! The image definitions `docker/<name>.image`: shell assignments (`KEY=value`,
//! `KEY="value"`, `KEY=(a b)`) that hack/images.sh sources. Read here without a shell, for the
//! keys the tests check.

use std::collections::BTreeMap;
use std::path::Path;

/// A definition could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// The file is missing or unreadable.
    #[error("failed to read {path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A required key is missing.
    #[error("{path}: {key} is missing")]
    Missing {
        /// File.
        path: String,
        /// Key.
        key: String,
    },
}

/// What the tests need of one definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Image name (the file name).
    pub name: String,
    /// Cargo package (and binary).
    pub cargo_package: String,
    /// Where the binary goes in the image.
    pub install_path: String,
    /// `EXECUTABLES`: absolute paths of every executable besides the binary.
    pub executables: Vec<String>,
    /// `LINKS`: (path, target) symlinks.
    pub links: Vec<(String, String)>,
    /// `RUN_AS` (UID:GID).
    pub run_as: String,
    /// `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// `DEBIAN_PACKAGES`.
    pub debian_packages: Vec<String>,
}

/// Parses the assignments of a definition file (comments and blank lines skipped; quotes
/// stripped; arrays split on spaces).
pub fn parse_assignments(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let inner = value
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
            .unwrap_or(value);
        let words = inner
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        out.insert(key.trim().to_string(), words);
    }
    out
}

impl Definition {
    /// Reads `docker/<name>.image` under `root`.
    pub fn load(root: &Path, name: &str) -> Result<Self, DefinitionError> {
        let path = root.join("docker").join(format!("{name}.image"));
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| DefinitionError::Read {
            path: shown.clone(),
            source,
        })?;
        let kv = parse_assignments(&text);
        let get = |key: &str| {
            kv.get(key)
                .cloned()
                .ok_or_else(|| DefinitionError::Missing {
                    path: shown.clone(),
                    key: key.to_string(),
                })
        };
        let one = |key: &str| get(key).map(|v| v.join(" "));
        let cargo_package = one("CARGO_PACKAGE")?;
        let install_path = kv
            .get("INSTALL_PATH")
            .map(|v| v.join(" "))
            .unwrap_or_else(|| format!("/usr/local/bin/{cargo_package}"));
        Ok(Self {
            name: name.to_string(),
            install_path,
            cargo_package,
            executables: get("EXECUTABLES")?,
            links: get("LINKS")?
                .iter()
                .filter_map(|l| l.split_once('='))
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
            run_as: one("RUN_AS")?,
            entrypoint: get("ENTRYPOINT")?,
            debian_packages: get("DEBIAN_PACKAGES")?,
        })
    }

    /// Command names this image provides on PATH: the base names of EXECUTABLES, LINKS and
    /// the binary when it is installed in a PATH directory.
    pub fn command_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .executables
            .iter()
            .chain(self.links.iter().map(|(p, _)| p))
            .chain(crate::contents::in_path_dir(&self.install_path).then_some(&self.install_path))
            .filter_map(|p| p.rsplit('/').next().map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn assignments_of_every_shape_parse() {
        let kv = parse_assignments(
            "# c\nA=x\nB=\"two words\"\nC=(/bin/sh -c)\nD=\"\"\n\nE=(/usr/local/bin/x)\n",
        );
        assert_eq!(kv["A"], ["x"]);
        assert_eq!(kv["B"], ["two", "words"]);
        assert_eq!(kv["C"], ["/bin/sh", "-c"]);
        assert!(kv["D"].is_empty());
        assert_eq!(kv["E"], ["/usr/local/bin/x"]);
    }
}
