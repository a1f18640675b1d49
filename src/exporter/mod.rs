//! The Prometheus exporter behind `GET /metrics` (prometheus-client, OpenMetrics text).
//! Nothing is copied into prometheus-client's own metric types: two `Collector`s read the
//! broker's atomics, the replicated state's totals and this node's Raft view at scrape
//! time, so a scrape always shows the same values as `$SYS` and `/cluster/status`.
//!
//! Naming: prefix `raftmq_`, units in names (`_seconds`, `_bytes`, `_entries`), counters
//! end in `_total` (the encoder appends it). Metrics only the leader knows (commit index,
//! follower lag, nodes alive) are exposed by the leader alone.
//!
//! # Layout
//! - `mod.rs`: `Exporter` (the registry) and the encoding helpers both collectors share.
//! - `broker`: `Metrics` (connections, messages, refusals, disconnects, latencies).
//! - `cluster`: the replicated state's totals and Raft: term, leader, indexes, lag, lease.

mod broker;
mod cluster;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::cluster::{Cluster, StatusTracker};
use crate::latency::LatencyHistogram;
use crate::metrics::Metrics;
use crate::vip::VipHandle;

/// The `Content-Type` of `Exporter::encode`'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the exporter reads at each scrape.
pub struct Sources {
    pub metrics: Arc<Metrics>,
    pub cluster: Cluster,
    pub tracker: StatusTracker,
    pub vip: VipHandle,
    /// `raft.lease_ms`.
    pub lease: Duration,
}

pub struct Exporter {
    registry: Registry,
}

impl Exporter {
    pub fn new(sources: Sources) -> Exporter {
        let mut registry = Registry::with_prefix("raftmq");
        registry.register_collector(Box::new(broker::BrokerCollector::new(
            sources.metrics.clone(),
        )));
        registry.register_collector(Box::new(cluster::ClusterCollector::new(sources)));
        Exporter { registry }
    }

    /// The exposition text of every metric, read now.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let c = ConstCounter::new(value);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge<N>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: N,
) -> fmt::Result
where
    N: prometheus_client::encoding::EncodeGaugeValue,
{
    let g = ConstGauge::new(value);
    g.encode(e.encode_descriptor(name, help, unit, g.metric_type())?)
}

/// One metric with a single label: one sample per (label value, value).
fn labelled(
    e: &mut DescriptorEncoder,
    (name, help, unit, kind): (&str, &str, Option<&Unit>, MetricType),
    label: &'static str,
    samples: impl IntoIterator<Item = (String, u64)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, unit, kind)?;
    for (value, n) in samples {
        let labels = [(label, value)];
        let sample = m.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(n).encode(sample)?,
            _ => ConstGauge::new(n).encode(sample)?,
        }
    }
    Ok(())
}

fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &LatencyHistogram,
) -> fmt::Result {
    let s = h.snapshot();
    e.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(s.sum_seconds, s.count, &s.buckets, None)
}
