#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn timing() -> Timing {
    Timing {
        spread: ms(200),
        spread_per_tunnel: ms(100),
        retry: ms(300),
        retry_max: ms(800),
        dead_after: ms(1000),
        settle: ms(10_000),
        poll_reset: ms(50),
        poll_watch: ms(200),
        poll_quiet: ms(400),
        poll_spared: ms(1000),
    }
}

fn sgc() -> SgcRef {
    SgcRef::new("ns", "gw")
}

/// Jitter that always answers `v` (0.5 makes every jittered delay its nominal value).
fn fixed(v: f64) -> impl FnMut() -> f64 {
    move || v
}

fn stats(handshake: bool, rx: u64, tx: u64) -> Option<TunnelStats> {
    Some(TunnelStats { handshake, rx, tx })
}

fn started(ids: &[&str]) -> (Episodes, Instant) {
    let mut e = Episodes::new(timing());
    let t0 = Instant::now();
    let mut j = fixed(0.5);
    let out = e.start(&sgc(), true, ids.iter().map(|s| s.to_string()), t0, &mut j);
    assert!(out.is_empty());
    (e, t0)
}

#[test]
fn resets_are_spread_and_lazy() {
    let mut e = Episodes::new(timing());
    let t0 = Instant::now();
    let mut values = [0.0, 0.99, 0.99].into_iter();
    let mut j = move || values.next().unwrap_or(0.0);
    // Three tunnels: spread over 200 ms (the cap), not 3 x 100 ms.
    e.start(
        &sgc(),
        true,
        ["a".to_string(), "b".to_string(), "c".to_string()],
        t0,
        &mut j,
    );
    assert_eq!(
        e.due_resets(t0),
        vec![("a".into(), Action::Reset { kick: false })]
    );
    assert!(e.due_resets(t0 + ms(100)).is_empty());
    assert_eq!(e.due_resets(t0 + ms(199)).len(), 2);
    // Idle tunnels (nothing sent since the reset) are never kicked: their next packet
    // starts the handshake through the load balancer's current choice.
    let mut j = fixed(0.5);
    for step in 1..100 {
        let now = t0 + ms(200 + step * 50);
        for id in e.due_polls(now) {
            assert_eq!(e.on_stats(&id, stats(false, 0, 0), now, &mut j), None);
        }
    }
    assert!(e.expire(t0 + ms(10_000)).is_empty(), "no keepalive to undo");
    assert!(e.is_idle());
    // A lone tunnel waits one share at most.
    let mut e = Episodes::new(timing());
    let mut j = fixed(0.99);
    e.start(&sgc(), true, ["a".to_string()], t0, &mut j);
    assert_eq!(e.due_resets(t0 + ms(99)).len(), 1);
}

#[test]
fn an_unanswered_initiation_is_retried_with_backoff_until_the_handshake_and_the_keepalive_goes_off()
{
    let (mut e, t0) = started(&["a"]);
    let mut j = fixed(0.5);
    e.due_resets(t0 + ms(100));
    // Nothing sent yet: read again a poll later.
    assert_eq!(
        e.on_stats("a", stats(false, 0, 0), t0 + ms(100), &mut j),
        None
    );
    assert_eq!(e.next_due(), Some(t0 + ms(150)));
    // The pod sent (an initiation went to the dead gateway): the next read is the retry,
    // 300 ms later, and kicks.
    let t1 = t0 + ms(150);
    assert_eq!(e.on_stats("a", stats(false, 0, 148), t1, &mut j), None);
    assert_eq!(e.next_due(), Some(t1 + ms(300)));
    assert_eq!(
        e.on_stats("a", stats(false, 0, 148), t1 + ms(299), &mut j),
        None
    );
    assert_eq!(
        e.on_stats("a", stats(false, 0, 148), t1 + ms(300), &mut j),
        Some(Action::Reset { kick: true })
    );
    // Still no answer: kicked again, each wait twice the last, at most `retry_max`.
    let mut at = t1 + ms(300);
    for wait in [600, 800, 800] {
        assert_eq!(e.next_due(), Some(at + ms(wait)));
        assert_eq!(
            e.on_stats("a", stats(false, 0, 148), at + ms(wait - 1), &mut j),
            None
        );
        at += ms(wait);
        assert_eq!(
            e.on_stats("a", stats(false, 0, 148), at, &mut j),
            Some(Action::Reset { kick: true })
        );
    }
    // The load balancer moved the flow: the handshake completes, the keepalive goes off.
    assert_eq!(
        e.on_stats("a", stats(true, 92, 148), at + ms(50), &mut j),
        Some(Action::KeepaliveOff)
    );
    assert_eq!(
        e.on_stats("a", stats(true, 500, 900), at + ms(300), &mut j),
        None
    );
    assert!(
        e.expire(t0 + ms(10_000)).is_empty(),
        "keepalive already off"
    );
}

#[test]
fn kick_waits_are_jittered_around_the_backed_off_value() {
    let t = timing();
    let mut lo = fixed(0.0);
    let mut hi = fixed(1.0);
    assert_eq!(retry_delay(&t, 0, &mut lo), ms(225));
    assert_eq!(retry_delay(&t, 1, &mut hi), ms(750));
    assert_eq!(retry_delay(&t, 5, &mut hi), ms(1_000));
    assert_eq!(retry_delay(&t, u32::MAX, &mut lo), ms(600));
    // A cap below the first wait never shortens it.
    let t = Timing {
        retry_max: ms(100),
        ..timing()
    };
    assert_eq!(retry_delay(&t, 3, &mut lo), ms(225));
}

#[test]
fn a_prompt_handshake_needs_no_kick() {
    let (mut e, t0) = started(&["a"]);
    let mut j = fixed(0.5);
    e.due_resets(t0 + ms(100));
    assert_eq!(
        e.on_stats("a", stats(false, 0, 148), t0 + ms(150), &mut j),
        None
    );
    assert_eq!(
        e.on_stats("a", stats(true, 92, 400), t0 + ms(200), &mut j),
        None
    );
}

#[test]
fn a_session_moved_away_after_the_handshake_is_kicked_when_sends_go_unanswered() {
    let (mut e, t0) = started(&["a"]);
    let mut j = fixed(0.5);
    e.due_resets(t0 + ms(100));
    e.on_stats("a", stats(true, 92, 148), t0 + ms(150), &mut j);
    // Traffic both ways: fine.
    assert_eq!(
        e.on_stats("a", stats(true, 900, 700), t0 + ms(400), &mut j),
        None
    );
    // Later the load balancer re-hashes the flow to a gateway without the session: sends,
    // nothing back.
    assert_eq!(
        e.on_stats("a", stats(true, 900, 800), t0 + ms(600), &mut j),
        None
    );
    assert_eq!(
        e.on_stats("a", stats(true, 900, 900), t0 + ms(1_000), &mut j),
        None
    );
    assert_eq!(
        e.on_stats("a", stats(true, 900, 900), t0 + ms(1_400), &mut j),
        None
    );
    assert_eq!(
        e.on_stats("a", stats(true, 900, 1_000), t0 + ms(1_600), &mut j),
        Some(Action::Reset { kick: true })
    );
    // The new session's sends go unanswered too (a one-way flow): the next kick waits
    // twice as long.
    e.on_stats("a", stats(true, 92, 148), t0 + ms(1_700), &mut j);
    assert_eq!(
        e.on_stats("a", stats(true, 92, 300), t0 + ms(1_800), &mut j),
        None
    );
    assert_eq!(
        e.on_stats("a", stats(true, 92, 400), t0 + ms(2_900), &mut j),
        None
    );
    assert_eq!(
        e.on_stats("a", stats(true, 92, 500), t0 + ms(3_800), &mut j),
        Some(Action::Reset { kick: true })
    );
    // An answer in time clears the suspicion.
    let (mut e, t0) = started(&["b"]);
    e.due_resets(t0 + ms(100));
    e.on_stats("b", stats(true, 92, 148), t0 + ms(150), &mut j);
    e.on_stats("b", stats(true, 92, 300), t0 + ms(400), &mut j);
    assert_eq!(
        e.on_stats("b", stats(true, 200, 400), t0 + ms(1_300), &mut j),
        None
    );
    assert_eq!(
        e.on_stats("b", stats(true, 200, 500), t0 + ms(1_500), &mut j),
        None
    );
}

#[test]
fn losing_every_gateway_ends_the_watch_and_undoes_keepalives() {
    let (mut e, t0) = started(&["a", "b"]);
    let mut j = fixed(0.5);
    e.due_resets(t0 + ms(200));
    e.on_stats("a", stats(false, 0, 148), t0 + ms(250), &mut j);
    assert_eq!(
        e.on_stats("a", stats(false, 0, 148), t0 + ms(550), &mut j),
        Some(Action::Reset { kick: true })
    );
    let out = e.start(&sgc(), false, ["a".to_string()], t0 + ms(600), &mut j);
    assert_eq!(out, vec![("a".into(), Action::KeepaliveOff)]);
    assert!(e.is_idle() && !e.active(&sgc()));
}

#[test]
fn expiry_undoes_keepalives_and_a_new_change_restarts_the_episode() {
    let (mut e, t0) = started(&["a"]);
    let mut j = fixed(0.5);
    e.due_resets(t0 + ms(100));
    e.on_stats("a", stats(false, 0, 148), t0 + ms(150), &mut j);
    e.on_stats("a", stats(false, 0, 148), t0 + ms(450), &mut j);
    // A second change while the first is running: reset again, the kick's keepalive is
    // still remembered so that it is switched off in the end.
    e.start(&sgc(), true, ["a".to_string()], t0 + ms(500), &mut j);
    assert_eq!(e.next_due(), Some(t0 + ms(550)));
    assert!(
        e.expire(t0 + ms(10_000)).is_empty(),
        "the episode was restarted"
    );
    assert_eq!(
        e.expire(t0 + ms(10_500)),
        vec![("a".into(), Action::KeepaliveOff)]
    );
    assert!(e.is_idle());
}

#[test]
fn tunnels_added_during_an_episode_are_watched_and_gone_ones_forgotten() {
    let (mut e, t0) = started(&["a"]);
    let mut j = fixed(0.5);
    e.adopt(&sgc(), "new", t0);
    e.adopt(&SgcRef::new("ns", "other"), "elsewhere", t0);
    assert_eq!(e.due_polls(t0), vec!["new".to_string()]);
    assert_eq!(e.on_stats("new", stats(true, 10, 10), t0, &mut j), None);
    assert_eq!(e.on_stats("new", None, t0 + ms(200), &mut j), None);
    assert!(e.due_polls(t0 + ms(1_000)).is_empty());
}

#[test]
fn watched_tunnels_are_read_often_only_while_their_sends_go_unanswered() {
    let (mut e, t0) = started(&["a"]);
    let mut j = fixed(0.5);
    e.due_resets(t0 + ms(100));
    let t1 = t0 + ms(150);
    e.on_stats("a", stats(true, 92, 148), t1, &mut j);
    // Answers (or silence): the quiet interval.
    assert_eq!(e.next_due(), Some(t1 + ms(400)));
    let t2 = t1 + ms(400);
    e.on_stats("a", stats(true, 300, 300), t2, &mut j);
    assert_eq!(e.next_due(), Some(t2 + ms(400)));
    // Sends without an answer: read at the watch interval until it is decided.
    let t3 = t2 + ms(400);
    e.on_stats("a", stats(true, 300, 400), t3, &mut j);
    assert_eq!(e.next_due(), Some(t3 + ms(200)));
    // An answer: quiet again.
    let t4 = t3 + ms(200);
    e.on_stats("a", stats(true, 400, 400), t4, &mut j);
    assert_eq!(e.next_due(), Some(t4 + ms(400)));
}

#[test]
fn spared_tunnels_are_read_seldom_until_their_sends_go_unanswered() {
    let (mut e, t0) = started(&["a"]);
    let mut j = fixed(0.5);
    e.spare(&sgc(), "kept", t0);
    // Not read while the resets of the change are going out: its baseline comes later.
    for t in [t0, t0 + ms(999)] {
        let due = e.due_polls(t);
        assert!(!due.contains(&"kept".to_string()), "{due:?}");
    }
    let t0 = t0 + ms(1000);
    assert!(e.due_polls(t0).contains(&"kept".to_string()));
    assert_eq!(e.on_stats("kept", stats(true, 100, 100), t0, &mut j), None);
    let next = e.due_polls(t0 + ms(999));
    assert!(!next.contains(&"kept".to_string()), "{next:?}");
    let t1 = t0 + ms(1000);
    assert!(e.due_polls(t1).contains(&"kept".to_string()));
    // Sends without an answer: the watch interval, and a kick after dead_after.
    assert_eq!(e.on_stats("kept", stats(true, 100, 200), t1, &mut j), None);
    assert!(e.due_polls(t1 + ms(200)).contains(&"kept".to_string()));
    assert_eq!(
        e.on_stats("kept", stats(true, 100, 300), t1 + ms(1000), &mut j),
        Some(Action::Reset { kick: true })
    );
}
