//! The images `make images` built (target/images): they hold exactly the programs their
//! components execute, carry the reference, user, entrypoint and labels of their definition,
//! match what docs/install.md records, skopeo reads and copies them keeping their digests, and
//! rebuilding from the same inputs gives the same digest while another input gives another. Without built images these print SKIPPED (and
//! fail when CI=true: `make test` builds the images first).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use egress_images::contents::{self, Contents};
use egress_images::definition::Definition;
use egress_images::{IMAGES, built_images, images_dir, workspace_root, workspace_version};
use serde_json::Value;

fn report(name: &str) -> Contents {
    contents::parse(
        &std::fs::read_to_string(images_dir().join(format!("{name}.contents.md"))).unwrap(),
    )
}

/// A file of an OCI archive (`tar -xO`).
fn archive_file(archive: &Path, member: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .unwrap();
    assert!(out.status.success(), "{member} of {}", archive.display());
    out.stdout
}

fn blob(archive: &Path, digest: &str) -> Value {
    let member = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&archive_file(archive, &member)).unwrap()
}

#[test]
fn every_program_on_path_is_one_the_image_definition_lists_and_resolves() {
    if !built_images() {
        return;
    }
    for name in IMAGES {
        let d = Definition::load(&workspace_root(), name).unwrap();
        let c = report(name);
        let on_path = c.path_commands();
        for (cmd, path, ok) in &on_path {
            assert!(ok, "{name}: {path} ({cmd}) is not an executable file");
        }
        let names: Vec<String> = on_path.iter().map(|(n, _, _)| n.clone()).collect();
        assert_eq!(
            names,
            d.command_names(),
            "{name}: the image's PATH holds other programs than docker/{name}.image lists"
        );
        assert!(
            c.resolve(&d.install_path)
                .is_some_and(contents::Entry::is_executable_file),
            "{name}: no {}",
            d.install_path
        );
        let shells: BTreeSet<&str> = ["sh", "bash", "dash", "ash"].into();
        let package_managers: BTreeSet<&str> = ["dpkg", "apt", "apt-get"].into();
        assert!(
            !names.iter().any(|n| package_managers.contains(n.as_str())),
            "{name}: a package manager in {names:?}"
        );
        if d.links.is_empty() {
            assert!(
                !names.iter().any(|n| shells.contains(n.as_str())),
                "{name} needs no shell but has one: {names:?}"
            );
        }
    }
}

#[test]
fn the_reports_match_the_file_lists_recorded_in_the_docs() {
    if !built_images() {
        return;
    }
    let doc = std::fs::read_to_string(workspace_root().join("docs/install.md")).unwrap();
    let sections = contents::docs_sections(&doc).expect("the generated section of docs/install.md");
    for name in IMAGES {
        let built = report(name);
        let recorded = contents::parse(sections.get(name).map_or("", String::as_str));
        let paths = |c: &Contents| -> Vec<(String, String, Option<String>)> {
            c.entries
                .iter()
                .map(|e| (e.mode.clone(), e.path.clone(), e.target.clone()))
                .collect()
        };
        assert_eq!(
            paths(&recorded),
            paths(&built),
            "{name}: docs/install.md records other files than the built image: run `hack/images.sh docs`"
        );
    }
}

#[test]
fn archives_carry_the_reference_user_entrypoint_and_labels_of_their_definition() {
    if !built_images() {
        return;
    }
    for name in IMAGES {
        let d = Definition::load(&workspace_root(), name).unwrap();
        let archive = images_dir().join(format!("{name}.tar"));
        let index: Value = serde_json::from_slice(&archive_file(&archive, "index.json")).unwrap();
        let entry = &index["manifests"][0];
        assert_eq!(
            index["manifests"].as_array().unwrap().len(),
            1,
            "{name}: one image per archive"
        );
        let reference = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap();
        assert!(
            reference.ends_with(&format!("{name}:{}", workspace_version())),
            "{name}: tagged {reference}"
        );
        let digest = entry["digest"].as_str().unwrap();
        let recorded =
            std::fs::read_to_string(images_dir().join(format!("{name}.digest"))).unwrap();
        assert_eq!(recorded.trim(), digest, "{name}: .digest file");
        let manifest = blob(&archive, digest);
        let config = blob(&archive, manifest["config"]["digest"].as_str().unwrap());
        let cfg = &config["config"];
        assert_eq!(cfg["User"], d.run_as.as_str(), "{name}");
        assert_eq!(cfg["Entrypoint"], serde_json::json!(d.entrypoint), "{name}");
        let labels = &cfg["Labels"];
        let label = |k: &str| labels[format!("org.opencontainers.image.{k}")].as_str();
        assert_eq!(label("version"), Some(workspace_version().as_str()));
        assert!(label("source").unwrap().starts_with("https://github.com/"));
        assert!(label("licenses").unwrap().starts_with("Apache-2.0"));
        let revision = label("revision").unwrap();
        assert!(
            revision.len() >= 40 && revision[..40].chars().all(|c| c.is_ascii_hexdigit()),
            "{name}: revision {revision}"
        );
        assert_eq!(
            manifest["annotations"], *labels,
            "{name}: manifest annotations"
        );
        assert_eq!(config["created"].as_str(), label("created"), "{name}");
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1, "{name}");
    }
}

/// `hack/images.sh build egress-cni-manager` into `out` with these inputs; the digest.
fn build(out: &Path, epoch: &str) -> String {
    let status = Command::new("bash")
        .arg(workspace_root().join("hack/images.sh"))
        .args(["build", "egress-cni-manager"])
        .env("IMAGES_OUT", out)
        .env("SOURCE_DATE_EPOCH", epoch)
        .env("IMAGE_REVISION", "0123456789abcdef0123456789abcdef01234567")
        .env("IMAGE_TAG", "0.0.0-test")
        .status()
        .unwrap();
    assert!(status.success(), "hack/images.sh build failed");
    std::fs::read_to_string(out.join("egress-cni-manager.digest"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn the_same_inputs_give_the_same_digest_and_another_timestamp_another() {
    if !built_images() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = build(&tmp.path().join("a"), "1700000000");
    let b = build(&tmp.path().join("b"), "1700000000");
    let c = build(&tmp.path().join("c"), "1700000001");
    assert_eq!(a, b, "two builds from the same inputs");
    assert_ne!(a, c, "SOURCE_DATE_EPOCH is an input: the check can fail");
    let archive =
        |d: &str| std::fs::read(tmp.path().join(d).join("egress-cni-manager.tar")).unwrap();
    assert!(
        archive("a") == archive("b"),
        "the archives are byte-identical"
    );
}

#[test]
fn skopeo_copies_the_archives_with_their_digests() {
    if !built_images() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for name in IMAGES {
        let digest = std::fs::read_to_string(images_dir().join(format!("{name}.digest")))
            .unwrap()
            .trim()
            .to_string();
        let archive = format!(
            "oci-archive:{}",
            images_dir().join(format!("{name}.tar")).display()
        );
        let inspect = Command::new("skopeo")
            .args(["inspect", "--format", "{{.Digest}}", &archive])
            .output()
            .expect("skopeo is missing: make deps");
        assert!(inspect.status.success(), "{inspect:?}");
        assert_eq!(
            String::from_utf8_lossy(&inspect.stdout).trim(),
            digest,
            "{name}"
        );
        // The push of docs/install.md, to a local OCI layout instead of a registry.
        let dest = format!(
            "oci:{}:{}",
            tmp.path().join(name).display(),
            workspace_version()
        );
        let copy = Command::new("skopeo")
            .args(["copy", "--quiet", "--preserve-digests", &archive, &dest])
            .output()
            .unwrap();
        assert!(copy.status.success(), "{copy:?}");
        let index: Value = serde_json::from_slice(
            &std::fs::read(tmp.path().join(name).join("index.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(index["manifests"][0]["digest"], digest.as_str(), "{name}");
    }
}
