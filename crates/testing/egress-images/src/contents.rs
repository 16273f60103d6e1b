//! The contents reports `make images` writes (`target/images/<name>.contents.md`, also
//! copied into docs/install.md): the reference, the Debian packages line and the file list
//! (`MODE SIZE /path[ -> target]`, directories with a trailing `/` and size `-`).

use std::collections::BTreeMap;

/// The directories that are the image's PATH (hack/images/lib.sh `BIN_DIRS`).
pub const PATH_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Whether `path` is directly in a PATH directory.
pub fn in_path_dir(path: &str) -> bool {
    path.rsplit_once('/')
        .is_some_and(|(dir, _)| PATH_DIRS.contains(&dir))
}

/// One entry of the file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `ls -l` style mode (`-rwxr-xr-x`, `lrwxrwxrwx`, `drwxr-xr-x`).
    pub mode: String,
    /// Size in bytes (None for directories and links).
    pub size: Option<u64>,
    /// Absolute path (directories without the trailing `/`).
    pub path: String,
    /// Link target.
    pub target: Option<String>,
}

impl Entry {
    /// A regular file with an execute bit.
    pub fn is_executable_file(&self) -> bool {
        self.mode.starts_with('-') && self.mode.contains('x')
    }
}

/// A parsed report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// `reference` row.
    pub reference: String,
    /// `package version` pairs of the "Debian packages" line.
    pub packages: Vec<(String, String)>,
    /// The file list.
    pub entries: Vec<Entry>,
}

/// Parses one report (or one image's section of docs/install.md).
pub fn parse(text: &str) -> Contents {
    let mut c = Contents::default();
    let mut in_files = false;
    for line in text.lines() {
        if let Some(r) = line.strip_prefix("| reference | `") {
            c.reference = r.trim_end_matches(" |").trim_end_matches('`').to_string();
        } else if let Some(p) = line.strip_prefix("Debian packages") {
            c.packages = p
                .split('`')
                .skip(1)
                .step_by(2)
                .filter_map(|pv| pv.split_once(' '))
                .map(|(p, v)| (p.to_string(), v.to_string()))
                .collect();
        } else if line == "```" {
            in_files = !in_files;
        } else if in_files && let Some(e) = parse_entry(line) {
            c.entries.push(e);
        }
    }
    c
}

fn parse_entry(line: &str) -> Option<Entry> {
    let mut parts = line.split_whitespace();
    let mode = parts.next()?.to_string();
    let size = parts.next()?.parse().ok();
    let rest: Vec<&str> = parts.collect();
    let (path, target) = match rest.iter().position(|w| *w == "->") {
        Some(i) => (rest[..i].join(" "), Some(rest[i + 1..].join(" "))),
        None => (rest.join(" "), None),
    };
    Some(Entry {
        mode,
        size,
        path: path.trim_end_matches('/').to_string(),
        target,
    })
}

impl Contents {
    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// Follows symlinks (relative or absolute, at most 8) to a regular file.
    pub fn resolve(&self, path: &str) -> Option<&Entry> {
        let mut current = path.to_string();
        for _ in 0..8 {
            let e = self.get(&current)?;
            match &e.target {
                None => return Some(e),
                Some(t) if t.starts_with('/') => current = t.clone(),
                Some(t) => {
                    let dir = current.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    current = format!("{dir}/{t}");
                }
            }
        }
        None
    }

    /// Every entry directly in a PATH directory that is not a directory, as command name ->
    /// path, plus whether it resolves to an executable file.
    pub fn path_commands(&self) -> Vec<(String, String, bool)> {
        let mut out: Vec<(String, String, bool)> = self
            .entries
            .iter()
            .filter(|e| !e.mode.starts_with('d') && in_path_dir(&e.path))
            .map(|e| {
                let name = e.path.rsplit('/').next().unwrap_or_default().to_string();
                let ok = self.resolve(&e.path).is_some_and(Entry::is_executable_file);
                (name, e.path.clone(), ok)
            })
            .collect();
        out.sort();
        out
    }
}

/// The generated section of docs/install.md (between `<!-- images:begin -->` and
/// `<!-- images:end -->`), split per image heading (`### <name>`): name -> body.
pub fn docs_sections(doc: &str) -> Option<BTreeMap<String, String>> {
    let (_, rest) = doc.split_once("<!-- images:begin -->")?;
    let (section, _) = rest.split_once("<!-- images:end -->")?;
    Some(
        format!("\n{section}")
            .split("\n### ")
            .skip(1)
            .filter_map(|s| {
                let (name, body) = s.split_once('\n')?;
                Some((name.trim().to_string(), body.to_string()))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const REPORT: &str = "### x

| | |
|---|---|
| reference | `egress-gateway-daemon:0.1.0` |

Debian packages (bookworm): `busybox-static 1:1.35.0-4`, `libc6 2.36-9+deb12u14`.

<details><summary>files</summary>

```
drwxr-xr-x        - /bin/
-rwxr-xr-x  1982256 /bin/busybox
lrwxrwxrwx        - /bin/sh -> busybox
lrwxrwxrwx        - /bin/dangling -> nothing
-rw-r--r--       12 /etc/passwd
-rw-r--r--       10 /usr/sbin/not-executable
```

</details>
";

    #[test]
    fn docs_sections_stop_at_the_end_marker() {
        let doc = format!(
            "# Install\n<!-- images:begin -->\n{REPORT}\n### y\nbody\n<!-- images:end -->\n### z\nafter\n"
        );
        let s = docs_sections(&doc).unwrap();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(s["y"], "body\n");
        assert_eq!(parse(&s["x"]).entries.len(), 6);
        assert!(docs_sections("no markers").is_none());
    }

    #[test]
    fn reports_parse_and_links_resolve() {
        let c = parse(REPORT);
        assert_eq!(c.reference, "egress-gateway-daemon:0.1.0");
        assert_eq!(
            c.packages,
            [
                ("busybox-static".to_string(), "1:1.35.0-4".to_string()),
                ("libc6".to_string(), "2.36-9+deb12u14".to_string())
            ]
        );
        assert_eq!(c.entries.len(), 6);
        assert_eq!(c.get("/bin").unwrap().size, None);
        assert_eq!(c.resolve("/bin/sh").unwrap().path, "/bin/busybox");
        assert!(c.resolve("/bin/dangling").is_none());
        let cmds = c.path_commands();
        let ok: Vec<(&str, bool)> = cmds.iter().map(|(n, _, ok)| (n.as_str(), *ok)).collect();
        assert_eq!(
            ok,
            [
                ("busybox", true),
                ("dangling", false),
                ("not-executable", false),
                ("sh", true)
            ]
        );
    }
}
