//! The checker against hand-made histories: each promise broken once, and a clean run.

use super::*;
use crate::history::{Ack, Delivery, FaultRecord, RetainedRead};

fn key(publisher: &str, seq: u64) -> MsgKey {
    MsgKey {
        publisher: publisher.into(),
        seq,
    }
}

fn ack(publisher: &str, seq: u64, qos: u8, acked_at: f64) -> Ack {
    Ack {
        key: key(publisher, seq),
        qos,
        topic: format!("chaos/q{qos}/{publisher}"),
        sent_at: acked_at - 5.0,
        acked_at,
        direct_node: None,
    }
}

fn delivery(publisher: &str, seq: u64, qos: u8) -> Delivery {
    Delivery {
        subscriber: "sub-0".into(),
        key: key(publisher, seq),
        qos,
        dup: false,
        at: 0.0,
    }
}

fn fault(started_at: f64, healed_at: f64, minority: Option<u8>) -> FaultRecord {
    FaultRecord {
        name: "test fault".into(),
        node: minority,
        started_at,
        effective_at: started_at,
        healed_at,
        minority,
        disruptive: true,
    }
}

/// Three QoS 1 and three QoS 2 messages, acknowledged and delivered once each, and a fault
/// with a 400 ms gap in acknowledgements.
fn clean() -> History {
    let mut h = History {
        subscribers: vec!["sub-0".into()],
        ..History::default()
    };
    for (seq, at) in [(1, 100.0), (2, 200.0), (3, 600.0)] {
        for (name, qos) in [("q1-0", 1), ("q2-0", 2)] {
            let a = ack(name, seq, qos, at);
            h.sent.push((a.key.clone(), a.topic.clone()));
            h.acks.push(a);
            h.deliveries.push(delivery(name, seq, qos));
        }
    }
    let mut w = ack("retain", 1, 1, 50.0);
    w.topic = "chaos/retained/0".into();
    h.sent.push((w.key.clone(), w.topic.clone()));
    h.acks.push(w);
    for (started_at, final_read) in [(60.0, false), (900.0, true)] {
        h.retained_reads.push(RetainedRead {
            topic: "chaos/retained/0".into(),
            seq: 1,
            started_at,
            final_read,
        });
    }
    h.faults.push(fault(200.0, 300.0, None));
    h
}

/// `clean()` plus a fault and an acknowledgement through the VIP after its heal.
fn after_fault(f: FaultRecord) -> History {
    let mut h = clean();
    let a = ack("q1-0", 4, 1, f.healed_at + 500.0);
    h.sent.push((a.key.clone(), a.topic.clone()));
    h.acks.push(a);
    h.deliveries.push(delivery("q1-0", 4, 1));
    h.faults.push(f);
    h
}

#[test]
fn a_clean_history_passes_and_measures_the_gap() {
    let v = check("t", &clean(), Vec::new());
    assert!(v.passed(), "{:?}", v.violations);
    assert_eq!((v.acked, v.lost, v.duplicates_qos2), (7, 0, 0));
    assert_eq!(v.unavailability_max_ms, Some(400.0));
}

#[test]
fn an_acknowledged_message_never_delivered_is_lost() {
    let mut h = clean();
    h.deliveries.retain(|d| d.key != key("q1-0", 2));
    let v = check("t", &h, Vec::new());
    assert_eq!(v.lost, 1);
    assert!(!v.passed());
}

#[test]
fn qos2_twice_is_a_violation_and_qos1_twice_is_counted() {
    let mut h = clean();
    h.deliveries.push(delivery("q1-0", 1, 1));
    let v = check("t", &h, Vec::new());
    assert!(v.passed(), "{:?}", v.violations);
    assert_eq!(v.duplicates_qos1, 1);
    h.deliveries.push(delivery("q2-0", 1, 2));
    let v = check("t", &h, Vec::new());
    assert_eq!(v.duplicates_qos2, 1);
    assert!(!v.passed());
}

#[test]
fn a_delivery_never_sent_is_a_phantom() {
    let mut h = clean();
    h.deliveries.push(delivery("q1-0", 99, 1));
    assert!(!check("t", &h, Vec::new()).passed());
}

#[test]
fn a_retained_read_older_than_an_acknowledged_write_is_stale() {
    let mut h = clean();
    for (seq, at) in [(2, 100.0), (3, 200.0)] {
        let mut a = ack("retain", seq, 1, at);
        a.topic = "chaos/retained/1".into();
        h.sent.push((a.key.clone(), a.topic.clone()));
        h.acks.push(a);
    }
    let read = |seq, started_at, final_read| RetainedRead {
        topic: "chaos/retained/1".into(),
        seq,
        started_at,
        final_read,
    };
    // Seeing 2 is fine for a read that started before 3 was acknowledged.
    h.retained_reads.push(read(2, 150.0, false));
    h.retained_reads.push(read(3, 900.0, true));
    assert!(check("t", &h, Vec::new()).passed());
    h.retained_reads.push(read(2, 250.0, false));
    assert!(!check("t", &h, Vec::new()).passed());
}

#[test]
fn a_node_cut_off_must_not_acknowledge_or_accept() {
    let mut h = after_fault(fault(1000.0, 5000.0, Some(2)));
    let mut a = ack("minority-1", 1, 1, 990.0);
    a.direct_node = Some(2);
    a.sent_at = 980.0;
    h.acks.push(a.clone());
    h.deliveries.push(delivery("minority-1", 1, 1));
    h.sent.push((a.key.clone(), a.topic.clone()));
    assert!(
        check("t", &h, Vec::new()).passed(),
        "an ack before the cut is fine"
    );
    a.key = key("minority-1", 2);
    a.sent_at = 2000.0;
    a.acked_at = 2010.0;
    h.acks.push(a.clone());
    h.deliveries.push(delivery("minority-1", 2, 1));
    h.sent.push((a.key.clone(), a.topic.clone()));
    assert!(!check("t", &h, Vec::new()).passed());

    let mut h = after_fault(fault(1000.0, 5000.0, Some(2)));
    h.probes.push(Probe {
        node: 2,
        sent_at: 3000.0,
        done_at: 3002.0,
        code: Some(0),
    });
    assert!(!check("t", &h, Vec::new()).passed());
}

#[test]
fn a_leader_accepting_after_another_took_over_is_two_active_nodes() {
    let probe = |node, sent_at: f64| Probe {
        node,
        sent_at,
        done_at: sent_at + 2.0,
        code: Some(0),
    };
    let mut h = clean();
    h.probes = vec![probe(1, 1000.0), probe(2, 1100.0), probe(1, 1200.0)];
    assert!(!check("t", &h, Vec::new()).passed());
    // A handover and, much later, a handover back is normal.
    h.probes = vec![probe(1, 1000.0), probe(2, 1100.0), probe(1, 3000.0)];
    assert!(check("t", &h, Vec::new()).passed());
}

#[test]
fn probes_refused_by_a_ban_make_the_run_fail() {
    let mut h = clean();
    for (node, code) in [(1, 3), (2, 0)] {
        h.probes.push(Probe {
            node,
            sent_at: 100.0,
            done_at: 101.0,
            code: Some(code),
        });
    }
    assert!(check("t", &h, Vec::new()).passed(), "followers answer 3");
    h.probes.push(Probe {
        node: 1,
        sent_at: 200.0,
        done_at: 201.0,
        code: Some(5),
    });
    assert!(!check("t", &h, Vec::new()).passed());
}
