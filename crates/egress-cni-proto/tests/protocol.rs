//! Wire format and client behaviour: round trips, the exact JSON shape, limits, and what the
//! plugin sees when the manager is absent, refuses, or speaks another version.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use egress_cni_proto::codec::{self, CodecError};
use egress_cni_proto::*;

const KEY: &str = "YIcWu/Y0dLUPnF9kH9xIHJjpL3bL+SIqf1mMq3XpVlI=";

fn add_request() -> AddRequest {
    AddRequest {
        pod: PodRef {
            namespace: "ns1".into(),
            name: "web-0".into(),
            uid: Some("uid-1".into()),
        },
        container_id: "abcdef0123".into(),
        pod_ip: "10.244.1.10".parse().unwrap(),
        public_key: WireKey::parse(KEY).unwrap(),
        pod_ipv6: None,
    }
}

#[test]
fn requests_round_trip_and_carry_version_and_op() {
    for req in [
        Request::Add(add_request()),
        Request::Del(DelRequest {
            pod: add_request().pod,
            container_id: "c1".into(),
        }),
        Request::PodGateway {
            pod: add_request().pod,
        },
    ] {
        let line = codec::encode(&RequestEnvelope::new(req.clone())).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["op"], req.op());
        let back: RequestEnvelope = codec::decode(&line[..line.len() - 1]).unwrap();
        assert_eq!(back.request, req);
    }
}

#[test]
fn add_reply_json_shape_is_stable() {
    let reply = ReplyEnvelope::new(Reply::Added(AddReply {
        gateway: "sgc1".into(),
        endpoint: "10.0.0.5:6000".parse().unwrap(),
        gateway_public_key: WireKey::parse(KEY).unwrap(),
        default_route: DefaultRoute::AzureNetworking,
        exclude_cidrs: vec!["192.0.2.0/24".parse().unwrap()],
        ipv6: false,
    }));
    let v: serde_json::Value = serde_json::from_slice(&codec::encode(&reply).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "version": 1, "result": "added", "gateway": "sgc1", "endpoint": "10.0.0.5:6000",
            "gatewayPublicKey": KEY, "defaultRoute": "azureNetworking",
            "excludeCidrs": ["192.0.2.0/24"]
        })
    );
    let back: ReplyEnvelope = codec::decode(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(back, reply);
}

/// Dual-stack fields are additive within version 1: an IPv4-only exchange is byte for byte
/// what it was (the shape test above), the new fields appear only when set, and either side
/// ignores fields it does not know, so an older manager or plugin keeps working for IPv4.
#[test]
fn dual_stack_fields_are_optional_in_both_directions() {
    let mut req = add_request();
    let v4_only = serde_json::to_value(RequestEnvelope::new(Request::Add(req.clone()))).unwrap();
    assert!(v4_only.get("podIpv6").is_none(), "{v4_only}");
    req.pod_ipv6 = Some("fd00:10:244:1::a".parse().unwrap());
    let v = serde_json::to_value(RequestEnvelope::new(Request::Add(req.clone()))).unwrap();
    assert_eq!(v["podIpv6"], "fd00:10:244:1::a");
    // What an older plugin sends decodes with no IPv6.
    let old: RequestEnvelope = codec::decode(&serde_json::to_vec(&v4_only).unwrap()).unwrap();
    assert!(matches!(
        old.request,
        Request::Add(AddRequest { pod_ipv6: None, .. })
    ));

    let reply = serde_json::json!({
        "version": 1, "result": "added", "gateway": "sgc1", "endpoint": "10.0.0.5:6000",
        "gatewayPublicKey": KEY, "defaultRoute": "staticEgressGateway",
        "excludeCidrs": ["192.0.2.0/24", "2001:db8:e::/48"], "ipv6": true,
        "someFutureField": {"x": 1}
    });
    let back: ReplyEnvelope = codec::decode(&serde_json::to_vec(&reply).unwrap()).unwrap();
    let Reply::Added(added) = back.reply else {
        panic!("{back:?}")
    };
    assert!(added.ipv6);
    assert_eq!(added.exclude_cidrs.len(), 2);
    let mut from_old_manager = reply.clone();
    from_old_manager.as_object_mut().unwrap().remove("ipv6");
    let back: ReplyEnvelope =
        codec::decode(&serde_json::to_vec(&from_old_manager).unwrap()).unwrap();
    assert!(matches!(
        back.reply,
        Reply::Added(AddReply { ipv6: false, .. })
    ));
}

#[test]
fn malformed_keys_are_rejected_with_the_reason() {
    for bad in [
        "",
        "short=",
        "YIcWu/Y0dLUPnF9kH9xIHJjpL3bL+SIqf1mMq3XpVlI",
        "YIcWu/Y0dLUPnF9kH9xIHJjpL3bL+SIqf1mMq3XpVlJ=",
        "YIcWu/Y0dLUPnF9kH9xIHJjpL3bL+SIqf1mMq3Xp!lI=",
    ] {
        let err = WireKey::parse(bad).unwrap_err();
        assert!(err.contains("not a base64 WireGuard key"), "{err}");
    }
    let mut v = serde_json::to_value(RequestEnvelope::new(Request::Add(add_request()))).unwrap();
    v["publicKey"] = "nope".into();
    let err = codec::decode::<RequestEnvelope>(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("not a base64 WireGuard key"),
        "{err}"
    );
}

#[test]
fn unknown_op_and_oversized_messages_fail() {
    let err = codec::decode::<RequestEnvelope>(br#"{"version":1,"op":"explode"}"#).unwrap_err();
    assert!(matches!(err, CodecError::Decode(_)), "{err}");
    let big = vec![b'x'; MAX_MESSAGE_BYTES + 10];
    assert!(matches!(
        codec::read_line(&big[..]).unwrap_err(),
        CodecError::TooLong
    ));
    assert!(matches!(
        codec::read_line(&b"{\"no\":\"newline\"}"[..]).unwrap_err(),
        CodecError::Truncated
    ));
}

/// Serves `answers` (one per connection) and returns the requests it saw.
fn serve(answers: Vec<String>) -> (tempfile::TempDir, std::thread::JoinHandle<Vec<String>>) {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(dir.path().join("s.sock")).unwrap();
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for answer in answers {
            let (mut s, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            seen.push(line);
            s.write_all(answer.as_bytes()).unwrap();
        }
        seen
    });
    (dir, h)
}

#[test]
fn client_returns_replies_and_refusals() {
    let refusal = ReplyEnvelope::new(Reply::Error(ErrorReply {
        kind: ErrorKind::GatewayNotReady,
        message: "StaticGatewayConfiguration ns1/sgc1 is not ready: status.egressIpPrefix is empty"
            .into(),
    }));
    let ok = ReplyEnvelope::new(Reply::PodGateway(PodGatewayReply {
        gateway: Some("sgc1".into()),
    }));
    let (dir, h) = serve(vec![
        String::from_utf8(codec::encode(&ok).unwrap()).unwrap(),
        String::from_utf8(codec::encode(&refusal).unwrap()).unwrap(),
        "{\"version\":7,\"result\":\"somethingNew\"}\n".into(),
    ]);
    let client = Client::new(dir.path().join("s.sock"), Duration::from_secs(5));
    let got = client.pod_gateway(add_request().pod).unwrap();
    assert_eq!(got.gateway.as_deref(), Some("sgc1"));
    match client.add(add_request()).unwrap_err() {
        ClientError::Refused(e) => {
            assert_eq!(e.kind, ErrorKind::GatewayNotReady);
            assert!(e.kind.is_transient());
        }
        other => panic!("{other}"),
    }
    let err = client.del(DelRequest {
        pod: add_request().pod,
        container_id: "c".into(),
    });
    assert!(
        matches!(err, Err(ClientError::Version { theirs: 7 })),
        "{err:?}"
    );
    let seen = h.join().unwrap();
    assert!(seen[1].contains("\"op\":\"add\""));
}

#[test]
fn client_names_the_socket_when_no_manager_listens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sock");
    let started = std::time::Instant::now();
    let err = Client::new(&path, Duration::from_millis(500))
        .pod_gateway(add_request().pod)
        .unwrap_err();
    // Asked again until the deadline (a restarting manager), then named.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(600),
        "{took:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("failed to connect to egress-cni-manager"),
        "{text}"
    );
    assert!(text.contains(path.to_str().unwrap()), "{text}");
}

#[test]
fn client_times_out_on_a_silent_manager() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let _listener = UnixListener::bind(&path).unwrap();
    let started = std::time::Instant::now();
    let err = Client::new(&path, Duration::from_millis(200))
        .pod_gateway(add_request().pod)
        .unwrap_err();
    assert!(matches!(err, ClientError::Io { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn busy_line() -> String {
    let busy = ReplyEnvelope::new(Reply::Error(ErrorReply {
        kind: ErrorKind::Busy,
        message: "egress-cni-manager is busy: 16 plugin connections open (limit 16)".into(),
    }));
    String::from_utf8(codec::encode(&busy).unwrap()).unwrap()
}

#[test]
fn busy_answers_are_retried_within_the_deadline() {
    let ok = ReplyEnvelope::new(Reply::PodGateway(PodGatewayReply { gateway: None }));
    let (dir, h) = serve(vec![
        busy_line(),
        busy_line(),
        String::from_utf8(codec::encode(&ok).unwrap()).unwrap(),
    ]);
    let started = std::time::Instant::now();
    let got = Client::new(dir.path().join("s.sock"), Duration::from_secs(5))
        .pod_gateway(add_request().pod)
        .unwrap();
    assert_eq!(got.gateway, None);
    assert_eq!(h.join().unwrap().len(), 3, "asked three times");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_manager_busy_until_the_deadline_is_reported_as_busy() {
    let (dir, _h) = serve(vec![busy_line(); 200]);
    let started = std::time::Instant::now();
    let err = Client::new(dir.path().join("s.sock"), Duration::from_millis(600))
        .pod_gateway(add_request().pod)
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(700), "{took:?}");
    match &err {
        ClientError::Busy { attempts, last, .. } => {
            assert!(*attempts > 2, "{err}");
            assert_eq!(last.kind, ErrorKind::Busy);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("stayed busy for 0."), "{err}");
}

#[test]
fn a_manager_that_comes_back_within_the_deadline_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.sock");
    let p = path.clone();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let listener = UnixListener::bind(&p).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        let ok = ReplyEnvelope::new(Reply::PodGateway(PodGatewayReply {
            gateway: Some("sgc1".into()),
        }));
        s.write_all(&codec::encode(&ok).unwrap()).unwrap();
    });
    let got = Client::new(&path, Duration::from_secs(5))
        .pod_gateway(add_request().pod)
        .unwrap();
    assert_eq!(got.gateway.as_deref(), Some("sgc1"));
    h.join().unwrap();
}

#[test]
fn unknown_error_kinds_of_a_newer_manager_still_carry_their_message() {
    let line = br#"{"version":1,"result":"error","kind":"somethingNew","message":"why"}"#;
    let env: ReplyEnvelope = codec::decode(line).unwrap();
    assert_eq!(
        env.reply,
        Reply::Error(ErrorReply {
            kind: ErrorKind::Unknown,
            message: "why".into()
        })
    );
    let busy: serde_json::Value = serde_json::from_str(&busy_line()).unwrap();
    assert_eq!(busy["kind"], "busy");
}

#[test]
fn report_has_a_pinned_shape_and_an_old_manager_rejects_it_as_bad_request() {
    let report = Request::Report(ReportRequest {
        pod: PodRef {
            namespace: "ns".into(),
            name: "web".into(),
            uid: None,
        },
        container_id: "c1".into(),
        failed_phase: Some(AddPhase::Handshake),
        phases: vec![PhaseTiming {
            phase: AddPhase::Register,
            seconds: 0.5,
        }],
        routes: None,
    });
    let line = codec::encode(&RequestEnvelope::new(report.clone())).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "op": "report",
            "pod": {"namespace": "ns", "name": "web"}, "containerId": "c1",
            "failedPhase": "handshake", "phases": [{"phase": "register", "seconds": 0.5}]})
    );
    let back: RequestEnvelope = codec::decode(&line[..line.len() - 1]).unwrap();
    assert_eq!(back.request, report);
    // A manager of the previous release knows no `report` op: the request does not decode,
    // so it answers badRequest and the plugin (which ignores report failures) goes on.
    #[derive(serde::Deserialize)]
    #[serde(tag = "op", rename_all = "camelCase")]
    #[allow(dead_code)]
    enum OldRequest {
        PodGateway { pod: PodRef },
        Add(AddRequest),
        Del(DelRequest),
    }
    assert!(serde_json::from_value::<OldRequest>(v).is_err());
    let ok: ReplyEnvelope =
        codec::decode(br#"{"version":1,"result":"reported","recorded":true}"#).unwrap();
    assert_eq!(ok.reply, Reply::Reported(ReportReply { recorded: true }));
}
