//! The invariants `run` checks. A failed check panics, which libFuzzer reports as a crash
//! with the input that caused it.

use std::collections::{BTreeMap, BTreeSet};

use raftmq_raft::{
    ClientId, Command, ConnId, Delivery, Effect, Op, PacketId, QoS, Reply, Response, State,
};

/// Everything applying one command gives, as compared between runs.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub response: Response,
    pub effects: Vec<Effect>,
    pub snapshot: Vec<u8>,
}

impl Outcome {
    pub fn of(state: &mut State, command: &Command) -> Outcome {
        let (response, effects) = state.apply(command);
        Outcome {
            response,
            effects,
            snapshot: snapshot(state),
        }
    }
}

fn snapshot(state: &State) -> Vec<u8> {
    match state.to_snapshot_bytes() {
        Ok(bytes) => bytes,
        Err(e) => panic!("state does not serialize: {e}"),
    }
}

/// One reply per op, each of the kind its op gets.
pub fn replies(command: &Command, response: &Response) {
    assert_eq!(
        command.ops.len(),
        response.replies.len(),
        "one reply per op"
    );
    for (op, reply) in command.ops.iter().zip(&response.replies) {
        let fits = match (op, reply) {
            (Op::Connect(_), Reply::Connected { .. }) => true,
            (Op::Disconnect { .. }, Reply::Disconnected) => true,
            (Op::Publish { .. }, Reply::Published { .. } | Reply::Duplicate) => true,
            (Op::PubRel { .. }, Reply::Released { .. }) => true,
            (Op::Subscribe { requests, .. }, Reply::Subscribed(r)) => r.len() == requests.len(),
            (Op::Unsubscribe { filters, .. }, Reply::Unsubscribed(e)) => e.len() == filters.len(),
            (
                Op::Disconnect { .. }
                | Op::Publish { .. }
                | Op::PubRel { .. }
                | Op::Subscribe { .. }
                | Op::Unsubscribe { .. },
                Reply::NotOwner,
            ) => true,
            (Op::Acks(_), Reply::Acked) => true,
            (Op::Tick, Reply::Ticked) => true,
            (Op::ResetConnections, Reply::ConnectionsReset { .. }) => true,
            (Op::Ban { .. }, Reply::Banned { .. }) => true,
            (Op::Unban { .. }, Reply::Unbanned { .. }) => true,
            _ => false,
        };
        assert!(fits, "{op:?} answered {reply:?}");
    }
}

pub fn effect(effect: &Effect) {
    if let Effect::Deliver { delivery, .. } = effect {
        delivery_shape(delivery);
    }
}

/// A packet id exactly on QoS 1/2 (never 0), and never more than the publisher's QoS.
fn delivery_shape(d: &Delivery) {
    match (d.qos, d.packet_id) {
        (QoS::AtMostOnce, None) => {}
        (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(id)) if id.0 != 0 => {}
        (qos, id) => panic!("delivery at {qos:?} with packet id {id:?}"),
    }
    assert!(
        d.qos <= d.message.qos,
        "delivered at {:?}, published at {:?}",
        d.qos,
        d.message.qos
    );
    assert!(!d.dup || d.qos != QoS::AtMostOnce, "DUP on QoS 0");
}

/// In-memory QoS 0 routing: QoS 0 deliveries, only to sessions online on that connection.
pub fn transient(state: &State, deliveries: &[(ClientId, ConnId, Delivery)]) {
    for (client, conn, d) in deliveries {
        delivery_shape(d);
        assert_eq!(d.qos, QoS::AtMostOnce, "transient delivery above QoS 0");
        assert_eq!(
            state.session_conn(client),
            Some(*conn),
            "transient delivery to a connection that does not own {client}"
        );
    }
}

/// Per session: in-flight packet ids unique and non-zero; of them, those sent on the
/// current connection (PUBLISH or PUBREL) never more than its receive maximum.
pub fn windows(state: &State, sent: &BTreeMap<ConnId, BTreeSet<PacketId>>) {
    for info in state.sessions() {
        let ids = state.inflight_ids(info.client);
        assert_eq!(ids.len(), info.inflight, "{}: in-flight count", info.client);
        let unique: BTreeSet<PacketId> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{}: packet ids in flight twice: {ids:?}",
            info.client
        );
        assert!(
            !unique.contains(&PacketId(0)),
            "{}: packet id 0 in flight",
            info.client
        );
        let Some(conn) = info.conn else {
            continue;
        };
        let outstanding = sent
            .get(&conn)
            .map_or(0, |s| unique.intersection(s).count());
        let window = usize::from(info.receive_maximum.max(1));
        assert!(
            outstanding <= window,
            "{}: {outstanding} deliveries outstanding on {conn}, receive maximum {window} \
             (in flight: {ids:?})",
            info.client
        );
    }
}

/// The snapshot and the mirror both rebuild the live state, and the rebuilt states go on
/// exactly like it.
pub fn persistence(live: &mut State, mirror: &BTreeMap<Vec<u8>, Vec<u8>>, now_ms: u64) {
    let bytes = snapshot(live);
    let mut from_snapshot = match State::from_snapshot_bytes(&bytes) {
        Ok(s) => s,
        Err(e) => panic!("own snapshot refused: {e}"),
    };
    let entries = mirror.iter().map(|(k, v)| (k.clone(), v.clone()));
    let mut from_mirror = match State::from_mirror(entries) {
        Ok(s) => s,
        Err(e) => panic!("own mirror refused: {e}"),
    };
    for (what, rebuilt) in [("snapshot", &from_snapshot), ("mirror", &from_mirror)] {
        assert_eq!(
            snapshot(rebuilt),
            bytes,
            "state rebuilt from the {what} differs"
        );
        assert_eq!(
            rebuilt.stats(),
            live.stats(),
            "stats rebuilt from the {what} differ"
        );
    }
    // Every timer and index rebuilt: connections reset, then wills and expiries due.
    let later = Command {
        now_ms: now_ms + 48 * 3_600_000,
        ops: vec![Op::ResetConnections, Op::Tick],
    };
    let expected = Outcome::of(live, &later);
    assert_eq!(
        Outcome::of(&mut from_snapshot, &later),
        expected,
        "the state rebuilt from the snapshot went on differently"
    );
    assert_eq!(
        Outcome::of(&mut from_mirror, &later),
        expected,
        "the state rebuilt from the mirror went on differently"
    );
}
