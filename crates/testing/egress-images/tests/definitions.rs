//! The image definitions against everything that must agree with them, without building an
//! image: the generated Dockerfiles, docker/debian.lock, the chart's default image references
//! and init-container scripts, every program the code and the chart execute, and the
//! contents recorded in docs/install.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use egress_images::contents;
use egress_images::definition::Definition;
use egress_images::execs::{self, EXEC_SITES};
use egress_images::{IMAGES, workspace_root, workspace_version};
use egress_install_tests::helm;
use egress_install_tests::manifests;
use serde_json::Value;

fn definitions() -> Vec<Definition> {
    IMAGES
        .iter()
        .map(|n| Definition::load(&workspace_root(), n).unwrap())
        .collect()
}

#[test]
fn dockerfiles_are_rendered_from_the_image_definitions() {
    for name in IMAGES {
        let out = Command::new("bash")
            .arg(workspace_root().join("hack/images.sh"))
            .args(["dockerfile", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = workspace_root().join(format!("docker/{name}.Dockerfile"));
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            committed == String::from_utf8_lossy(&out.stdout),
            "{} differs from docker/{name}.image: run `make dockerfiles`",
            path.display()
        );
    }
}

fn lock() -> BTreeMap<String, Vec<(String, String)>> {
    let text = std::fs::read_to_string(workspace_root().join("docker/debian.lock")).unwrap();
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 5, "bad lock line {line:?}");
        assert_eq!(f[4].len(), 64, "not a SHA-256 in {line:?}");
        out.entry(f[0].into())
            .or_default()
            .push((f[1].into(), f[2].into()));
    }
    out
}

#[test]
fn the_lock_resolves_every_package_each_definition_asks_for() {
    let lock = lock();
    assert_eq!(
        lock.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut v = IMAGES.to_vec();
            v.sort();
            v
        },
        "docker/debian.lock lists other images than docker/*.image: run `make images-lock`"
    );
    for d in definitions() {
        let locked: BTreeSet<&str> = lock[&d.name].iter().map(|(p, _)| p.as_str()).collect();
        for p in d
            .debian_packages
            .iter()
            .chain(["base-files".to_string()].iter())
        {
            assert!(
                locked.contains(p.as_str()),
                "{}: {p} is not in docker/debian.lock: run `make images-lock`",
                d.name
            );
        }
    }
}

fn rendered() -> Vec<Value> {
    helm::template_with_required(&["gatewayDaemon.gatewayNetns=gw-under-test"]).unwrap()
}

/// (workload, container, image reference, command) of every container the chart renders.
fn containers(objs: &[Value]) -> Vec<(String, String, String, Vec<String>)> {
    let mut out = Vec::new();
    for kind in ["Deployment", "DaemonSet"] {
        for obj in manifests::all(objs, kind) {
            let spec = manifests::pod_spec(obj);
            for list in ["initContainers", "containers"] {
                for c in spec[list].as_array().into_iter().flatten() {
                    let command = c["command"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|w| w.as_str().map(str::to_string))
                        .collect();
                    out.push((
                        manifests::name(obj).to_string(),
                        c["name"].as_str().unwrap().to_string(),
                        c["image"].as_str().unwrap().to_string(),
                        command,
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn the_chart_defaults_name_the_images_and_the_tag_make_images_builds() {
    let chart =
        std::fs::read_to_string(egress_install_tests::chart_dir().join("Chart.yaml")).unwrap();
    assert!(
        chart.contains(&format!("appVersion: \"{}\"", workspace_version())),
        "the chart's appVersion (the default tag) must be the workspace version {}",
        workspace_version()
    );
    let refs: BTreeSet<String> = containers(&rendered())
        .into_iter()
        .map(|(_, _, image, _)| image)
        .collect();
    let built: BTreeSet<String> = IMAGES
        .iter()
        .map(|n| format!("{n}:{}", workspace_version()))
        .collect();
    assert_eq!(
        refs, built,
        "the chart's default images are what `make images` tags"
    );
}

#[test]
fn the_simulator_runs_the_charts_init_container_scripts() {
    let all = containers(&rendered());
    let script = |container: &str| {
        let (_, _, _, command) = all.iter().find(|c| c.1 == container).unwrap();
        assert_eq!(command[..2], ["/bin/sh", "-ec"], "{container}");
        command[2].clone()
    };
    assert_eq!(
        script("install-plugin"),
        egress_sim::images::INSTALL_PLUGIN_SCRIPT
    );
    assert_eq!(
        script("gateway-netns"),
        egress_sim::images::gateway_netns_script("gw-under-test")
    );
}

/// Per image: the programs its containers execute (code exec sites and chart scripts).
fn required_programs() -> BTreeMap<String, BTreeSet<String>> {
    let mut need: BTreeMap<String, BTreeSet<String>> = IMAGES
        .iter()
        .map(|n| (n.to_string(), BTreeSet::new()))
        .collect();
    for (_, program, images) in EXEC_SITES {
        for image in images {
            need.get_mut(*image).unwrap().insert(program.to_string());
        }
    }
    for (_, name, image, command) in containers(&rendered()) {
        let image = image.split(':').next().unwrap().to_string();
        let programs = match command.as_slice() {
            [] => vec![],
            [sh, flag, script] if flag == "-ec" || flag == "-c" => {
                let mut p = execs::script_programs(script);
                p.push(sh.rsplit('/').next().unwrap().to_string());
                p
            }
            other => panic!("{name}: a command the test cannot read: {other:?}"),
        };
        need.get_mut(&image)
            .unwrap_or_else(|| panic!("{name} runs an image we do not build: {image}"))
            .extend(programs);
    }
    need
}

/// Per image: the commands its definition puts on PATH, without busybox-style multi-call
/// binaries that only serve as link targets, and without the component's own binary.
fn provided_programs(d: &Definition) -> BTreeSet<String> {
    let targets: BTreeSet<&str> = d.links.iter().map(|(_, t)| t.as_str()).collect();
    let binary = d.install_path.rsplit('/').next().unwrap();
    d.command_names()
        .into_iter()
        .filter(|n| !targets.contains(n.as_str()) && n != binary)
        .collect()
}

#[test]
fn every_process_the_code_starts_is_a_known_exec_site() {
    let found = execs::files_that_exec(&workspace_root());
    let known: Vec<String> = EXEC_SITES.iter().map(|(f, _, _)| f.to_string()).collect();
    assert_eq!(
        found, known,
        "production code starts processes in other places than egress_images::execs::EXEC_SITES: \
         list each with its program and image, and add the program to that image"
    );
    // Only the daemon (and the plugin, on the node) run the data plane's executors.
    let toml = std::fs::read_to_string(workspace_root().join("crates/egress-operator/Cargo.toml"))
        .unwrap();
    assert!(
        !toml.contains("egress-dataplane"),
        "egress-operator now links egress-dataplane: its image needs the data plane's programs"
    );
    // The cni-manager links it for gateway failover only: reading pod tunnels and re-peering
    // them (observe, set_peer_keepalive), which start no process. Creating a device (which
    // starts wireguard-go) or any nftables executor would need programs its image lacks.
    let src = workspace_root().join("crates/egress-cni-manager/src");
    let users: Vec<String> = execs::rust_files_below(&src)
        .into_iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains("egress_dataplane")
        })
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert_eq!(
        users,
        ["failover/tunnels.rs"],
        "egress-cni-manager uses egress-dataplane in new places: check the programs its image needs"
    );
    // Attaching running pods (running/) builds pod tunnels through egress-pod-tunnel, whose
    // data plane runs `nft` (and wireguard-go with the userspace backend): the chart attaches
    // running pods by default, so the manager's image provides both.
    let attach_on = rendered()
        .iter()
        .any(|o| o.to_string().contains("--attach-running-pods=true"));
    assert!(attach_on, "the chart attaches running pods by default");
    let manager = definitions()
        .into_iter()
        .find(|d| d.install_path.ends_with("/egress-cni-manager"))
        .unwrap();
    for program in ["nft", "wireguard-go"] {
        assert!(
            provided_programs(&manager).contains(program),
            "the chart attaches running pods, but the egress-cni-manager image has no {program}"
        );
    }
    let tunnels = std::fs::read_to_string(src.join("failover/tunnels.rs")).unwrap();
    for forbidden in [".create(", "Nft", "Dataplane::"] {
        assert!(
            !tunnels.contains(forbidden),
            "egress-cni-manager's failover now calls {forbidden}: its image needs the data plane's programs"
        );
    }
}

#[test]
fn each_definition_provides_exactly_the_programs_its_containers_execute() {
    let need = required_programs();
    assert_eq!(
        need["egress-gateway-daemon"],
        ["ip", "nft", "sh", "wireguard-go"].map(String::from).into(),
        "what the daemon's code and init container run (a change here is a change of the image)"
    );
    for d in definitions() {
        assert_eq!(
            provided_programs(&d),
            need[&d.name],
            "docker/{}.image must put on PATH exactly what its containers execute",
            d.name
        );
    }
}

/// The generated section of docs/install.md, split per image.
fn docs_sections() -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/install.md")).unwrap();
    contents::docs_sections(&doc)
        .expect("docs/install.md has the <!-- images:begin/end --> section")
}

#[test]
fn docs_record_every_locked_package_of_every_image() {
    let sections = docs_sections();
    let lock = lock();
    for name in IMAGES {
        let body = sections
            .get(name)
            .unwrap_or_else(|| panic!("docs/install.md has no section for {name}"));
        let c = contents::parse(body);
        assert_eq!(
            c.packages, lock[name],
            "docs/install.md lists other packages for {name} than docker/debian.lock: \
             run `make images` and `hack/images.sh docs`"
        );
        assert_eq!(c.reference, format!("{name}:{}", workspace_version()));
        assert!(!c.entries.is_empty(), "{name}: no file list in docs");
    }
}
