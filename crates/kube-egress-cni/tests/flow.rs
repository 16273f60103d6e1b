//! The plugin's ADD/DEL/CHECK logic with a fake data plane and a scripted manager: pass-through
//! without any manager call, success only after a handshake, clean-up on every failure,
//! idempotent DEL, drift reporting, and the CNI error codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use egress_cni_proto::codec;
use egress_cni_proto::*;
use egress_pod_tunnel::sandbox::SandboxRecord;
use kube_egress_cni::cni::EgressCni;
use kube_egress_cni::tunnel::{PodTunnel, TunnelError, TunnelSpec};
use rscni_plugin::cni::Cni;
use rscni_plugin::error::Error as CniError;
use rscni_plugin::test_util::ArgsBuilder;

const KEY: &str = "YIcWu/Y0dLUPnF9kH9xIHJjpL3bL+SIqf1mMq3XpVlI=";
const GW_KEY: &str = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gISE=";
const PREV: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"veth1","mac":"aa:bb:cc:dd:ee:01"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:02","sandbox":"/run/netns/p1"}],"ips":[{"interface":1,"address":"10.244.1.10/24","gateway":"10.244.1.1"}],"routes":[{"dst":"0.0.0.0/0"}]}"#;

#[derive(Default)]
struct FakeTunnel {
    log: RefCell<Vec<String>>,
    handshake_after_polls: Option<usize>,
    polls: RefCell<usize>,
    fail_setup: bool,
    fail_route: bool,
    drift: Vec<String>,
}

impl PodTunnel for FakeTunnel {
    type Key = String;
    fn generate_key(&self) -> Result<(String, WireKey), TunnelError> {
        Ok(("private".into(), WireKey::parse(KEY).unwrap()))
    }
    fn setup(&self, spec: &TunnelSpec, key: &String) -> Result<(), TunnelError> {
        self.log
            .borrow_mut()
            .push(format!("setup {} {key}", spec.gateway));
        if self.fail_setup {
            return Err(TunnelError(
                "failed to add route 0.0.0.0/0 dev wg0: boom".into(),
            ));
        }
        Ok(())
    }
    fn latest_handshake(&self, _: &TunnelSpec) -> Result<Option<SystemTime>, TunnelError> {
        *self.polls.borrow_mut() += 1;
        Ok(self
            .handshake_after_polls
            .filter(|n| *self.polls.borrow() >= *n)
            .map(|_| SystemTime::now()))
    }
    fn retry_handshake(&self, _: &TunnelSpec) -> Result<(), TunnelError> {
        self.log.borrow_mut().push("retry".into());
        Ok(())
    }
    fn route(&self, spec: &TunnelSpec, _: &String) -> Result<(), TunnelError> {
        self.log
            .borrow_mut()
            .push(format!("route {:?}", spec.routed_cidrs()));
        if self.fail_route {
            return Err(TunnelError("failed to add rule: boom".into()));
        }
        Ok(())
    }
    fn teardown(
        &self,
        spec: Option<&TunnelSpec>,
        netns: &Path,
        id: &str,
        _state_dir: &Path,
    ) -> Result<(), TunnelError> {
        self.log.borrow_mut().push(format!(
            "teardown {} {} {id}",
            spec.is_some(),
            netns.display()
        ));
        Ok(())
    }
    fn detach(&self, spec: &TunnelSpec) -> Result<(), TunnelError> {
        self.log
            .borrow_mut()
            .push(format!("detach {}", spec.sandbox.container_id));
        Ok(())
    }
    fn drift(&self, _: &TunnelSpec) -> Result<Vec<String>, TunnelError> {
        Ok(self.drift.clone())
    }
}

/// A manager that answers every connection with `answer(request)`; returns the requests seen.
struct FakeManager {
    dir: tempfile::TempDir,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

impl FakeManager {
    fn start(answer: fn(&Request) -> Reply) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("m.sock")).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                let mut line = String::new();
                BufReader::new(&s).read_line(&mut line).unwrap();
                let env: RequestEnvelope = codec::decode(line.trim_end().as_bytes()).unwrap();
                let reply = answer(&env.request);
                seen2.lock().unwrap().push(env.request);
                let _ = s.write_all(&codec::encode(&ReplyEnvelope::new(reply)).unwrap());
            }
        });
        Self { dir, seen }
    }
    fn socket(&self) -> PathBuf {
        self.dir.path().join("m.sock")
    }
    fn ops(&self) -> Vec<&'static str> {
        self.seen.lock().unwrap().iter().map(Request::op).collect()
    }
}

fn added(r: &Request) -> Reply {
    match r.op() {
        "podGateway" => Reply::PodGateway(PodGatewayReply {
            gateway: Some("sgc1".into()),
        }),
        "add" => Reply::Added(AddReply {
            gateway: "sgc1".into(),
            endpoint: "10.0.0.5:6000".parse().unwrap(),
            gateway_public_key: WireKey::parse(GW_KEY).unwrap(),
            default_route: DefaultRoute::StaticEgressGateway,
            exclude_cidrs: vec!["192.0.2.0/24".parse().unwrap()],
            ipv6: false,
        }),
        _ => Reply::Deleted(DelReply { deleted: true }),
    }
}

/// A manager of a dual-stack gateway (it says IPv6 only to a request that has one).
fn added_dual(r: &Request) -> Reply {
    match (added(r), r) {
        (Reply::Added(mut a), Request::Add(req)) => {
            a.exclude_cidrs.push("2001:db8:e::/48".parse().unwrap());
            a.ipv6 = req.pod_ipv6.is_some();
            Reply::Added(a)
        }
        (other, _) => other,
    }
}

fn config(socket: &Path, state: &Path, extra: &str) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"k8s","type":"kube-egress-cni","socketPath":"{}","stateDir":"{}",
            "excludedCIDRs":["169.254.169.254/32"],"handshakeTimeoutSeconds":0.3,"prevResult":{PREV}{extra}}}"#,
        socket.display(),
        state.display()
    )
}

fn args(conf: &str) -> rscni_plugin::types::Args {
    args_on(conf, "eth0")
}

fn args_on(conf: &str, ifname: &str) -> rscni_plugin::types::Args {
    ArgsBuilder::default()
        .container_id("ctr1234567890abcdef")
        .unwrap()
        .netns("/run/netns/p1")
        .ifname(ifname)
        .unwrap()
        .args("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web")
        .path("/opt/cni/bin")
        .config(conf)
        .unwrap()
        .build()
        .unwrap()
}

fn code(e: &CniError) -> u32 {
    u32::from(e)
}

/// What a manager that saw the SGCs publishes: the namespaces with a `podSelector`.
fn publish_selector_namespaces(socket: &Path, namespaces: &[&str]) {
    SelectorNamespaces {
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
    }
    .save(&selectors::path(socket))
    .unwrap();
}

#[test]
fn pods_without_the_annotation_pass_through_without_asking_the_manager() {
    let state = tempfile::tempdir().unwrap();
    let absent = state.path().join("no-manager.sock");
    publish_selector_namespaces(&absent, &["other"]);
    let extra = r#","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"app":"web"}}"#;
    let tunnel = FakeTunnel::default();
    let cni = EgressCni::new(tunnel);
    let result = cni
        .add(args(&config(&absent, state.path(), extra)))
        .unwrap();
    let prev: rscni_plugin::types::CNIResult = serde_json::from_str(PREV).unwrap();
    assert_eq!(result, prev);
    // The sandbox is recorded (the manager attaches it if the pod is annotated later).
    let sandbox = SandboxRecord::load(state.path(), "ctr1234567890abcdef")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            sandbox.netns.to_str(),
            sandbox.eth.as_str(),
            sandbox.pod_ip.to_string()
        ),
        (Some("/run/netns/p1"), "eth0", "10.244.1.10".to_string())
    );
    cni.del(args(&config(&absent, state.path(), extra)))
        .unwrap();
    assert_eq!(
        SandboxRecord::load(state.path(), "ctr1234567890abcdef").unwrap(),
        None
    );
    assert_eq!(SandboxRecord::list(state.path()).unwrap(), vec![]);
    cni.check(args(&config(&absent, state.path(), extra)))
        .unwrap();
}

#[test]
fn a_plain_pod_starts_even_when_its_sandbox_cannot_be_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the state directory should be: nothing can be written under it.
    let state = dir.path().join("not-a-dir");
    std::fs::write(&state, "").unwrap();
    let absent = dir.path().join("no-manager.sock");
    publish_selector_namespaces(&absent, &[]);
    let extra = r#","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"app":"web"}}"#;
    let cni = EgressCni::new(FakeTunnel::default());
    let result = cni.add(args(&config(&absent, &state, extra))).unwrap();
    let prev: rscni_plugin::types::CNIResult = serde_json::from_str(PREV).unwrap();
    assert_eq!(result, prev);
    cni.del(args(&config(&absent, &state, extra))).unwrap();
}

#[test]
fn a_pod_without_the_annotation_asks_the_manager_where_selectors_may_pick_it() {
    let extra = r#","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"app":"web"}}"#;
    // ns1 has a podSelector (or nothing was published yet): the manager decides, and a
    // selected pod gets its tunnel before ADD returns, as an annotated one.
    for published in [Some(&["ns1"][..]), None] {
        let m = FakeManager::start(added);
        if let Some(ns) = published {
            publish_selector_namespaces(&m.socket(), ns);
        }
        let state = tempfile::tempdir().unwrap();
        let cni = EgressCni::new(FakeTunnel {
            handshake_after_polls: Some(1),
            ..Default::default()
        });
        let result = cni
            .add(args(&config(&m.socket(), state.path(), extra)))
            .unwrap();
        assert_eq!(
            result.interfaces.last().unwrap().name,
            "wg0",
            "{published:?}"
        );
        assert_eq!(m.ops(), ["podGateway", "add", "report"], "{published:?}");
        // DEL sees the tunnel record and removes tunnel and PodEndpoint.
        cni.del(args(&config(&m.socket(), state.path(), extra)))
            .unwrap();
        assert_eq!(
            m.ops(),
            ["podGateway", "add", "report", "del"],
            "{published:?}"
        );
    }
}

#[test]
fn annotated_pod_succeeds_after_the_handshake_and_del_cleans_up() {
    let m = FakeManager::start(added);
    let state = tempfile::tempdir().unwrap();
    let cni = EgressCni::new(FakeTunnel {
        handshake_after_polls: Some(3),
        ..Default::default()
    });
    let result = cni
        .add(args(&config(&m.socket(), state.path(), "")))
        .unwrap();
    let wg = result.interfaces.last().unwrap();
    assert_eq!(
        (wg.name.as_str(), wg.sandbox.as_deref()),
        ("wg0", Some("/run/netns/p1"))
    );
    assert_eq!(result.interfaces.len(), 3);
    assert_eq!(m.ops(), ["podGateway", "add", "report"]);
    // Routes change only after the handshake; nothing is torn down.
    assert_eq!(
        *cni.tunnel().log.borrow(),
        [
            "setup sgc1 private",
            "route [169.254.169.254/32, 192.0.2.0/24]"
        ]
    );
    let add = m.seen.lock().unwrap()[1].clone();
    let Request::Add(add) = add else { panic!() };
    // The phase timings and the routes go to the manager after the routes are in place.
    let Request::Report(report) = m.seen.lock().unwrap()[2].clone() else {
        panic!()
    };
    let phases: Vec<AddPhase> = report.phases.iter().map(|p| p.phase).collect();
    assert_eq!(phases, AddPhase::ALL);
    assert_eq!(report.failed_phase, None);
    assert_eq!(report.container_id, "ctr1234567890abcdef");
    let routes = report.routes.unwrap();
    assert_eq!(
        routes.node_exclude_cidrs[0].to_string(),
        "169.254.169.254/32"
    );
    assert_eq!(add.pod_ip.to_string(), "10.244.1.10");
    assert_eq!(add.public_key.as_str(), KEY);
    // The record DEL/CHECK use holds the routing inputs, never the private key.
    let record =
        std::fs::read_to_string(TunnelSpec::record_path(state.path(), "ctr1234567890abcdef"))
            .unwrap();
    assert!(record.contains("192.0.2.0/24") && record.contains("169.254.169.254/32"));
    assert!(!record.contains("private"));
    assert!(
        SandboxRecord::load(state.path(), "ctr1234567890abcdef")
            .unwrap()
            .is_some()
    );
    cni.check(args(&config(&m.socket(), state.path(), "")))
        .unwrap();

    cni.del(args(&config(&m.socket(), state.path(), "")))
        .unwrap();
    assert!(!TunnelSpec::record_path(state.path(), "ctr1234567890abcdef").exists());
    assert_eq!(SandboxRecord::list(state.path()).unwrap(), vec![]);
    assert_eq!(m.ops(), ["podGateway", "add", "report", "del"]);
    // DEL again: still success.
    cni.del(args(&config(&m.socket(), state.path(), "")))
        .unwrap();
}

const PREV_DUAL: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/p1"}],"ips":[{"interface":0,"address":"10.244.1.10/24","gateway":"10.244.1.1"},{"interface":0,"address":"fd00:10:244:1::a/64","gateway":"fd00:10:244:1::1"}],"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]}"#;

#[test]
fn a_dual_stack_pod_sends_its_ipv6_and_routes_ipv6_when_the_manager_says_so() {
    for (answer, prev, ipv6) in [
        (added_dual as fn(&Request) -> Reply, PREV_DUAL, true),
        // An IPv4-only gateway (or an older manager): IPv6 is left alone.
        (added, PREV_DUAL, false),
        // An IPv4-only pod of a dual-stack gateway works as IPv4-only.
        (added_dual, PREV, false),
    ] {
        let m = FakeManager::start(answer);
        let state = tempfile::tempdir().unwrap();
        let cni = EgressCni::new(FakeTunnel {
            handshake_after_polls: Some(1),
            ..Default::default()
        });
        let conf = config(&m.socket(), state.path(), "").replace(PREV, prev);
        cni.add(args(&conf)).unwrap();
        let Request::Add(add) = m.seen.lock().unwrap()[1].clone() else {
            panic!()
        };
        assert_eq!(
            add.pod_ipv6.map(|a| a.to_string()),
            (prev == PREV_DUAL).then(|| "fd00:10:244:1::a".to_owned())
        );
        let spec = TunnelSpec::load(state.path(), "ctr1234567890abcdef")
            .unwrap()
            .unwrap();
        assert_eq!(spec.ipv6, ipv6, "{prev} {spec:?}");
        let Request::Report(report) = m.seen.lock().unwrap()[2].clone() else {
            panic!()
        };
        let routes = report.routes.unwrap();
        assert_eq!(routes.ipv6, ipv6);
        // The report lists the CIDRs that took effect.
        assert_eq!(
            routes.exclude_cidrs.iter().any(|c| c.addr().is_ipv6()),
            ipv6,
            "{:?}",
            routes.exclude_cidrs
        );
        if prev == PREV_DUAL {
            assert_eq!(
                spec.sandbox.eth_ipv6_gateway,
                Some("fd00:10:244:1::1".parse().unwrap())
            );
        }
    }
}

#[test]
fn handshake_timeout_undoes_everything_with_code_103() {
    let m = FakeManager::start(added);
    let state = tempfile::tempdir().unwrap();
    let cni = EgressCni::new(FakeTunnel::default());
    let started = std::time::Instant::now();
    let err = cni
        .add(args(&config(&m.socket(), state.path(), "")))
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(code(&err), 103, "{err}");
    assert!(
        err.to_string()
            .contains("no WireGuard handshake with gateway sgc1 at 10.0.0.5:6000 within 0.3s"),
        "{err}"
    );
    assert_eq!(m.ops(), ["podGateway", "add", "del", "report"]);
    assert!(!TunnelSpec::record_path(state.path(), "ctr1234567890abcdef").exists());
    assert_eq!(SandboxRecord::list(state.path()).unwrap(), vec![]);
    let Request::Report(report) = m.seen.lock().unwrap()[3].clone() else {
        panic!()
    };
    assert_eq!(report.failed_phase, Some(AddPhase::Handshake));
    assert!(report.routes.is_none());
    // The pod's routing was never touched; the tunnel was removed.
    let log = cni.tunnel().log.borrow();
    assert_eq!(log.first().unwrap(), "setup sgc1 private");
    assert_eq!(
        log.last().unwrap(),
        "teardown true /run/netns/p1 ctr1234567890abcdef"
    );
    assert!(!log.iter().any(|l| l.starts_with("route")), "{log:?}");
}

#[test]
fn route_failure_is_code_104_cleaned_by_the_step_and_unregisters_the_pod() {
    let m = FakeManager::start(added);
    let state = tempfile::tempdir().unwrap();
    let cni = EgressCni::new(FakeTunnel {
        handshake_after_polls: Some(1),
        fail_route: true,
        ..Default::default()
    });
    let err = cni
        .add(args(&config(&m.socket(), state.path(), "")))
        .unwrap_err();
    assert_eq!(code(&err), 104, "{err}");
    assert!(
        err.to_string().contains("failed to add rule: boom"),
        "{err}"
    );
    assert_eq!(m.ops(), ["podGateway", "add", "del", "report"]);
    // The failed step restored the routes itself; a second teardown could undo that.
    let log = cni.tunnel().log.borrow();
    assert!(!log.iter().any(|l| l.starts_with("teardown")), "{log:?}");
    assert!(!TunnelSpec::record_path(state.path(), "ctr1234567890abcdef").exists());
}

#[test]
fn setup_failure_is_code_104_and_unregisters_the_pod() {
    let m = FakeManager::start(added);
    let state = tempfile::tempdir().unwrap();
    let cni = EgressCni::new(FakeTunnel {
        fail_setup: true,
        ..Default::default()
    });
    let err = cni
        .add(args(&config(&m.socket(), state.path(), "")))
        .unwrap_err();
    assert_eq!(code(&err), 104);
    assert!(
        err.to_string()
            .contains("failed to add route 0.0.0.0/0 dev wg0"),
        "{err}"
    );
    assert_eq!(m.ops(), ["podGateway", "add", "del", "report"]);
}

#[test]
fn manager_refusals_map_to_cni_codes_and_touch_nothing() {
    fn refuse(r: &Request) -> Reply {
        let (kind, message) = match r.op() {
            "podGateway" => {
                return Reply::PodGateway(PodGatewayReply {
                    gateway: Some("x".into()),
                });
            }
            _ => (
                ErrorKind::GatewayNotReady,
                "StaticGatewayConfiguration ns1/x is not ready: status.egressIpPrefix not set yet",
            ),
        };
        Reply::Error(ErrorReply {
            kind,
            message: message.into(),
        })
    }
    let m = FakeManager::start(refuse);
    let state = tempfile::tempdir().unwrap();
    let cni = EgressCni::new(FakeTunnel::default());
    let err = cni
        .add(args(&config(&m.socket(), state.path(), "")))
        .unwrap_err();
    assert_eq!(code(&err), 11);
    assert!(
        err.to_string()
            .contains("ns1/x is not ready: status.egressIpPrefix"),
        "{err}"
    );
}

#[test]
fn check_reports_drift_with_code_105() {
    let m = FakeManager::start(added);
    let state = tempfile::tempdir().unwrap();
    let ok = EgressCni::new(FakeTunnel {
        handshake_after_polls: Some(1),
        ..Default::default()
    });
    ok.add(args(&config(&m.socket(), state.path(), "")))
        .unwrap();
    let drifted = EgressCni::new(FakeTunnel {
        drift: vec!["route 0.0.0.0/0 dev wg0 is missing".into()],
        ..Default::default()
    });
    let err = drifted
        .check(args(&config(&m.socket(), state.path(), "")))
        .unwrap_err();
    assert_eq!(code(&err), 105);
    assert!(
        err.to_string()
            .contains("route 0.0.0.0/0 dev wg0 is missing"),
        "{err}"
    );
}

#[test]
fn del_succeeds_when_the_manager_is_gone() {
    let state = tempfile::tempdir().unwrap();
    let cni = EgressCni::new(FakeTunnel::default());
    cni.del(args(&config(
        &state.path().join("dead.sock"),
        state.path(),
        "",
    )))
    .unwrap();
}

#[test]
fn an_interface_missing_from_prev_result_fails_at_once_with_code_7() {
    let m = FakeManager::start(added);
    let state = tempfile::tempdir().unwrap();
    let cni = EgressCni::new(FakeTunnel::default());
    let started = std::time::Instant::now();
    let err = cni
        .add(args_on(&config(&m.socket(), state.path(), ""), "net1"))
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_millis(200));
    assert_eq!(code(&err), 7, "{err}");
    assert!(
        err.to_string()
            .contains("prevResult has no interface net1 (CNI_IFNAME); it lists veth1, eth0"),
        "{err}"
    );
    // Nothing registered, nothing built: eth0's address was not borrowed.
    assert_eq!(m.ops(), ["podGateway"]);
    assert!(cni.tunnel().log.borrow().is_empty());
}
