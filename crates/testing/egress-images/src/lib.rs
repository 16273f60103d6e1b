//! Helpers for the image tests: the image definitions (`docker/<name>.image`), the contents
//! reports `make images` writes (`target/images/<name>.contents.md`), the places where our
//! code and the chart execute programs, and the gate of the tests that need built images.
//! The tests themselves are in `tests/`.

pub mod contents;
pub mod definition;
pub mod execs;

use std::path::PathBuf;

/// Every image, as named by `docker/<name>.image`, the archives and the chart.
pub const IMAGES: [&str; 4] = [
    "egress-operator",
    "egress-gateway-daemon",
    "egress-cni-manager",
    "kube-egress-cni",
];

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Where `make images` writes the archives and reports (`IMAGES_OUT` as for hack/images.sh).
pub fn images_dir() -> PathBuf {
    std::env::var_os("IMAGES_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/images"))
}

/// The workspace version (the images' tag and the chart's appVersion).
pub fn workspace_version() -> String {
    let text = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

/// Whether the tests on built images may run: true when every archive and report is in
/// [`images_dir`]. Otherwise prints `SKIPPED` with how to build them — or, with `CI=true`
/// (where `make test` builds them first), panics, so a broken set-up never passes silently.
pub fn built_images() -> bool {
    let dir = images_dir();
    let missing: Vec<String> = IMAGES
        .iter()
        .flat_map(|n| [format!("{n}.tar"), format!("{n}.contents.md")])
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "no built images in {} (missing {}): run `make images` first",
        dir.display(),
        missing.join(", ")
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("SKIPPED: {why}");
    false
}
