//! The checker: reads a scenario's history and holds it to the promises.
//! - acknowledged means delivered: every acknowledged QoS 1/2 message reaches every
//!   persistent subscriber (lost must be 0); nothing is delivered that was never sent;
//! - QoS 2 is exactly once (duplicates must be 0); QoS 1 duplicates are counted;
//! - retained state: every read started after an acknowledged write sees it or a later one,
//!   and the read after the heal has every topic's last acknowledged write;
//! - persistent sessions survive (no `session present = 0` once a session existed);
//! - one active node: no node accepts a CONNECT while another does, and a node cut off from
//!   the quorum accepts nothing and acknowledges nothing after its lease ran out;
//! - unavailability per fault: the longest stretch without any acknowledgement through the VIP.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::history::{History, MsgKey, Probe};

/// The lease is 300 ms; a cut-off leader may go on accepting until it notices. This bound
/// is the lease plus the time a probe's CONNECT may have been in flight.
pub const LEASE_GRACE_MS: f64 = 600.0;
/// A leader can only come back after another held the lease and lost it: two handovers
/// within the minimum election timeout (400 ms) are two nodes active at once.
pub const FLIP_WINDOW_MS: f64 = 400.0;
/// Messages sent this long before a cut may still be acknowledged by the node cut off.
pub const IN_FLIGHT_MS: f64 = 50.0;
/// After a fault is healed, its unavailability window goes on until this much later.
pub const RECOVERY_MS: f64 = 10_000.0;

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub scenario: String,
    pub faults: Vec<String>,
    pub acked: usize,
    pub acked_qos1: usize,
    pub acked_qos2: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicates_qos1: usize,
    pub duplicates_qos2: usize,
    pub retained_reads: usize,
    pub probes: usize,
    pub probes_accepted: usize,
    pub unavailability_ms: Vec<f64>,
    pub unavailability_p50_ms: Option<f64>,
    pub unavailability_max_ms: Option<f64>,
    pub violations: Vec<String>,
    pub notes: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Keep the verdict readable: the first few examples of each violation.
const EXAMPLES: usize = 5;

pub fn check(scenario: &str, h: &History, harness: Vec<String>) -> Verdict {
    let mut v = Verdict {
        scenario: scenario.to_string(),
        faults: h.faults.iter().map(|f| f.name.clone()).collect(),
        acked: h.acks.len(),
        acked_qos1: h.acks.iter().filter(|a| a.qos == 1).count(),
        acked_qos2: h.acks.iter().filter(|a| a.qos == 2).count(),
        delivered: h.deliveries.len(),
        lost: 0,
        duplicates_qos1: 0,
        duplicates_qos2: 0,
        retained_reads: h.retained_reads.len(),
        probes: h.probes.len(),
        probes_accepted: h.probes.iter().filter(|p| p.code == Some(0)).count(),
        unavailability_ms: Vec::new(),
        unavailability_p50_ms: None,
        unavailability_max_ms: None,
        violations: harness,
        notes: h.notes.clone(),
    };
    deliveries(h, &mut v);
    retained(h, &mut v);
    for loss in &h.session_losses {
        v.violations.push(format!(
            "session lost: {} reconnected at {:.0} ms and got session present = 0",
            loss.client, loss.at
        ));
    }
    refused_probes(h, &mut v);
    single_active(h, &mut v);
    minority(h, &mut v);
    unavailability(h, &mut v);
    v
}

fn deliveries(h: &History, v: &mut Verdict) {
    let acked = h.acked_for_subscribers();
    let sent: BTreeSet<&MsgKey> = h.sent.iter().map(|(k, _)| k).collect();
    let mut lost: BTreeSet<&MsgKey> = BTreeSet::new();
    for sub in &h.subscribers {
        let mut count: BTreeMap<&MsgKey, (u8, usize)> = BTreeMap::new();
        for d in h.deliveries.iter().filter(|d| &d.subscriber == sub) {
            count.entry(&d.key).or_insert((d.qos, 0)).1 += 1;
        }
        lost.extend(acked.iter().filter(|k| !count.contains_key(*k)));
        for (key, (qos, n)) in &count {
            if *n > 1 && *qos == 2 {
                v.duplicates_qos2 += n - 1;
                if v.duplicates_qos2 <= EXAMPLES {
                    v.violations.push(format!(
                        "QoS 2 duplicate: {sub} got {}:{} {n} times",
                        key.publisher, key.seq
                    ));
                }
            } else if *n > 1 {
                v.duplicates_qos1 += n - 1;
            }
            if !sent.contains(key) {
                v.violations.push(format!(
                    "phantom: {sub} got {}:{}, which was never sent",
                    key.publisher, key.seq
                ));
            }
        }
    }
    v.lost = lost.len();
    if !lost.is_empty() {
        let examples: Vec<String> = lost
            .iter()
            .take(EXAMPLES)
            .map(|k| format!("{}:{}", k.publisher, k.seq))
            .collect();
        v.violations.push(format!(
            "{} acknowledged messages lost (never delivered to every subscriber), e.g. {}",
            lost.len(),
            examples.join(", ")
        ));
    }
}

fn retained(h: &History, v: &mut Verdict) {
    // Acknowledged retained writes per topic, in ack order.
    let mut writes: BTreeMap<&str, Vec<(f64, u64)>> = BTreeMap::new();
    for a in h.acks.iter().filter(|a| a.key.publisher == "retain") {
        writes
            .entry(&a.topic)
            .or_default()
            .push((a.acked_at, a.key.seq));
    }
    let sent: BTreeSet<(&str, u64)> = h
        .sent
        .iter()
        .filter(|(k, _)| k.publisher == "retain")
        .map(|(k, t)| (t.as_str(), k.seq))
        .collect();
    let must_see = |topic: &str, started_at: f64| -> Option<u64> {
        writes
            .get(topic)?
            .iter()
            .filter(|(at, _)| *at < started_at)
            .map(|(_, seq)| *seq)
            .max()
    };
    let mut stale = 0;
    for r in &h.retained_reads {
        if !sent.contains(&(r.topic.as_str(), r.seq)) {
            v.violations.push(format!(
                "retained {} holds {}, which was never written there",
                r.topic, r.seq
            ));
        }
        if let Some(want) = must_see(&r.topic, r.started_at) {
            if r.seq < want {
                stale += 1;
                if stale <= EXAMPLES {
                    v.violations.push(format!(
                        "stale retained read{}: {} gave {} at {:.0} ms, but {} was acknowledged before",
                        if r.final_read { " after the heal" } else { "" },
                        r.topic,
                        r.seq,
                        r.started_at,
                        want
                    ));
                }
            }
        }
    }
    for m in &h.retained_missing {
        if let Some(want) = must_see(&m.topic, m.started_at) {
            v.violations.push(format!(
                "retained {} missing{} at {:.0} ms, though {} was acknowledged before",
                m.topic,
                if m.final_read { " after the heal" } else { "" },
                m.started_at,
                want
            ));
        }
    }
    if !h.retained_reads.iter().any(|r| r.final_read) && !writes.is_empty() {
        v.violations
            .push("no retained read after the heal: retained state unchecked".into());
    }
}

/// A node answers a CONNECT with success (the active one) or 3, server unavailable (the
/// others). Anything else (a ban, a limit) means the probes stopped testing what they are
/// for, and the run proves less than it claims.
fn refused_probes(h: &History, v: &mut Verdict) {
    let mut other: BTreeMap<u8, usize> = BTreeMap::new();
    for p in &h.probes {
        if let Some(code) = p.code.filter(|&c| c != 0 && c != 3) {
            *other.entry(code).or_default() += 1;
        }
    }
    for (code, n) in other {
        v.violations.push(format!(
            "{n} probes refused with CONNACK {code}: the harness was refused, not fenced"
        ));
    }
    if !h.probes.is_empty() && !h.probes.iter().any(|p| p.code == Some(0)) {
        v.violations
            .push("no probe was ever accepted: the single-active check saw nothing".into());
    }
    if !h.acks.is_empty() && !h.retained_reads.iter().any(|r| !r.final_read) {
        v.violations
            .push("no retained read during the run: retained reads unchecked".into());
    }
}

/// No interleaving A, B, A of accepted probes within `FLIP_WINDOW_MS`: that is A still
/// accepting after B took over.
fn single_active(h: &History, v: &mut Verdict) {
    let mut accepted: Vec<&Probe> = h.probes.iter().filter(|p| p.code == Some(0)).collect();
    accepted.sort_by(|a, b| a.sent_at.total_cmp(&b.sent_at));
    let mut reported = 0;
    for (i, a1) in accepted.iter().enumerate() {
        let later = accepted[i + 1..]
            .iter()
            .take_while(|p| p.done_at - a1.sent_at < FLIP_WINDOW_MS);
        let mut other: Option<&Probe> = None;
        for p in later {
            match other {
                None if p.node != a1.node && p.sent_at > a1.done_at => other = Some(p),
                Some(b) if p.node == a1.node && p.sent_at > b.done_at => {
                    reported += 1;
                    if reported <= EXAMPLES {
                        v.violations.push(format!(
                            "two active nodes: node {} accepted at {:.0} ms, node {} at {:.0} ms, node {} again at {:.0} ms",
                            a1.node, a1.done_at, b.node, b.done_at, p.node, p.done_at
                        ));
                    }
                    break;
                }
                _ => {}
            }
        }
    }
}

/// A node cut off from the quorum (or frozen) must not accept a CONNECT once its lease is
/// over, nor acknowledge a publish sent after the cut, until the fault is healed (for a
/// thawed leader: until it has had time to see it lost).
fn minority(h: &History, v: &mut Verdict) {
    for f in &h.faults {
        let Some(node) = f.minority else { continue };
        let until = f.healed_at + 1000.0;
        let probes = h.probes.iter().filter(|p| {
            p.node == node
                && p.code == Some(0)
                && p.sent_at > f.effective_at + LEASE_GRACE_MS
                && p.sent_at < f.healed_at
        });
        for p in probes.take(EXAMPLES) {
            v.violations.push(format!(
                "node {node} accepted a CONNECT at {:.0} ms while cut off ({}, from {:.0} ms)",
                p.done_at, f.name, f.effective_at
            ));
        }
        let acks = h.acks.iter().filter(|a| {
            a.direct_node == Some(node)
                && a.sent_at > f.effective_at + IN_FLIGHT_MS
                && a.acked_at < until
        });
        for a in acks.take(EXAMPLES) {
            v.violations.push(format!(
                "minority acknowledgement: node {node} acknowledged {}:{} at {:.0} ms while cut off ({}, from {:.0} ms)",
                a.key.publisher, a.key.seq, a.acked_at, f.name, f.effective_at
            ));
        }
    }
}

/// For each fault: the longest time without an acknowledgement through the VIP, from the
/// fault until `RECOVERY_MS` after its heal or the next fault, whichever comes first.
fn unavailability(h: &History, v: &mut Verdict) {
    let mut acks: Vec<f64> = h
        .acks
        .iter()
        .filter(|a| a.direct_node.is_none())
        .map(|a| a.acked_at)
        .collect();
    acks.sort_by(f64::total_cmp);
    for (i, f) in h.faults.iter().enumerate() {
        let next = h.faults.get(i + 1).map_or(f64::INFINITY, |n| n.started_at);
        let end = (f.healed_at + RECOVERY_MS).min(next);
        let mut prev = f.started_at;
        let mut worst: f64 = 0.0;
        let mut any = false;
        for &t in acks.iter().filter(|&&t| t > f.started_at && t <= end) {
            worst = worst.max(t - prev);
            prev = t;
            any = true;
        }
        if !any {
            v.violations.push(format!(
                "no acknowledgement through the VIP from {} at {:.0} ms until {:.0} ms",
                f.name, f.started_at, end
            ));
            worst = end - f.started_at;
        }
        v.unavailability_ms.push(worst);
    }
    let mut sorted = v.unavailability_ms.clone();
    sorted.sort_by(f64::total_cmp);
    if !sorted.is_empty() {
        v.unavailability_p50_ms = Some(sorted[(sorted.len() - 1) / 2]);
        v.unavailability_max_ms = sorted.last().copied();
    }
}

#[cfg(test)]
mod tests;
