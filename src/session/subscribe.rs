//! SUBSCRIBE and UNSUBSCRIBE: proposed, answered after commit. Retained messages from the
//! replicated store come as effects of the commit; this node's `$SYS` values are appended
//! after the SUBACK. Filters the ACL denies are not proposed and get 0x80 (3.1.1) or 0x87
//! Not authorized (5.0) in their place in the SUBACK.

use raftmq_raft::{Op, QoS, Reply, SubResult, SubscribeRequest};

use super::{propose, Close, Session, Step};
use crate::auth::Access;
use crate::codec::{reason, Packet, Protocol, SubAck, Subscribe, UnsubAck, Unsubscribe};
use crate::limits;
use crate::metrics::Metrics;

impl Session {
    pub(super) fn on_subscribe(&mut self, s: Subscribe) -> Result<Step, Close> {
        let mut requests = Vec::with_capacity(s.filters.len());
        // Per filter in order: whether the ACL let it through to the proposal.
        let mut allowed = Vec::with_capacity(s.filters.len());
        // Per filter in order: the code of a filter over a limit (never proposed).
        let mut over_limit = Vec::with_capacity(s.filters.len());
        let (mut held, _) = self
            .broker
            .cluster
            .state()
            .read()
            .subscriptions_of(&self.client, "");
        let mut counted = Vec::new();
        for (filter, mut options) in s.filters {
            let code = self.limit_code(&filter, &mut held, &mut counted);
            over_limit.push(code);
            if code.is_some() {
                allowed.push(false);
                continue;
            }
            if options.no_local && filter.starts_with("$share/") {
                return Err(Close::error(
                    reason::PROTOCOL_ERROR,
                    "no local on a shared subscription",
                ));
            }
            if !self.broker.auth.may_subscribe(&mut self.acl, &filter) {
                Metrics::add(&self.broker.metrics.acl_denied_subscribe, 1);
                allowed.push(false);
                continue;
            }
            allowed.push(true);
            options.subscription_id = s.subscription_id;
            requests.push(SubscribeRequest { filter, options });
        }
        let denied = if self.protocol == Protocol::V4 {
            reason::UNSPECIFIED_ERROR
        } else {
            reason::NOT_AUTHORIZED
        };
        if requests.is_empty() {
            return Ok(Step::Send(vec![Packet::SubAck(SubAck {
                packet_id: s.packet_id,
                codes: over_limit.iter().map(|c| c.unwrap_or(denied)).collect(),
                reason_string: self.reason_string(if over_limit.iter().all(Option::is_some) {
                    "over the subscription or topic limits"
                } else {
                    "not authorized by the ACL"
                }),
            })]));
        }
        let sys_filters: Vec<(String, QoS, u8)> = requests
            .iter()
            .filter(|r| r.filter.starts_with("$SYS"))
            .map(|r| (r.filter.clone(), r.options.qos, r.options.retain_handling))
            .collect();
        let op = Op::Subscribe {
            client: self.client.clone(),
            conn: self.conn,
            requests,
        };
        let cluster = self.broker.cluster.clone();
        let sys = self.broker.sys.clone();
        let acl = self.broker.auth.rules(&mut self.acl);
        let packet_id = s.packet_id;
        let v4 = self.protocol == Protocol::V4;
        Ok(Step::Wait(Box::pin(async move {
            let reply = propose(&cluster, op).await?;
            let results = match reply {
                Reply::Subscribed(r) => r,
                _ => return Err(Close::unexpected()),
            };
            let mut results = results.iter();
            let codes = allowed
                .iter()
                .zip(&over_limit)
                .map(|(ok, limit)| match ok.then(|| results.next()).flatten() {
                    None => limit.unwrap_or(denied),
                    Some(SubResult::Granted(q)) => *q as u8,
                    Some(SubResult::Invalid) if v4 => reason::UNSPECIFIED_ERROR,
                    Some(SubResult::Invalid) => reason::TOPIC_FILTER_INVALID,
                })
                .collect();
            let mut out = vec![Packet::SubAck(SubAck {
                packet_id,
                codes,
                reason_string: None,
            })];
            for (filter, _, retain_handling) in sys_filters {
                if retain_handling != 2 {
                    out.extend(
                        sys.retained_for(&filter)
                            .into_iter()
                            .filter(|p| {
                                acl.as_ref()
                                    .is_none_or(|a| a.allows(&p.topic, Access::Read))
                            })
                            .map(Packet::Publish),
                    );
                }
            }
            Ok(out)
        })))
    }

    /// The SUBACK code for a filter over the topic limits or beyond
    /// `limits.max_subscriptions` (`held` counts the session's subscriptions, this
    /// SUBSCRIBE's included, its new filters in `counted`), or `None` when it is within them.
    fn limit_code(&self, filter: &str, held: &mut usize, counted: &mut Vec<String>) -> Option<u8> {
        let v4 = self.protocol == Protocol::V4;
        let metrics = &self.broker.metrics;
        if limits::check_topic(filter, &self.broker.config.limits).is_err() {
            Metrics::add(&metrics.topics_refused, 1);
            return Some(if v4 {
                reason::UNSPECIFIED_ERROR
            } else {
                reason::TOPIC_FILTER_INVALID
            });
        }
        let (_, exists) = self
            .broker
            .cluster
            .state()
            .read()
            .subscriptions_of(&self.client, filter);
        if exists || counted.iter().any(|f| f == filter) {
            return None;
        }
        if *held >= self.broker.config.limits.max_subscriptions as usize {
            Metrics::add(&metrics.subscriptions_refused, 1);
            return Some(if v4 {
                reason::UNSPECIFIED_ERROR
            } else {
                reason::QUOTA_EXCEEDED
            });
        }
        *held += 1;
        counted.push(filter.to_owned());
        None
    }

    pub(super) fn on_unsubscribe(&mut self, u: Unsubscribe) -> Step {
        let op = Op::Unsubscribe {
            client: self.client.clone(),
            conn: self.conn,
            filters: u.filters,
        };
        let cluster = self.broker.cluster.clone();
        let v5 = self.protocol == Protocol::V5;
        let packet_id = u.packet_id;
        Step::Wait(Box::pin(async move {
            let reply = propose(&cluster, op).await?;
            let existed = match reply {
                Reply::Unsubscribed(e) => e,
                _ => return Err(Close::unexpected()),
            };
            let codes = if v5 {
                existed
                    .iter()
                    .map(|e| {
                        if *e {
                            reason::SUCCESS
                        } else {
                            reason::NO_SUBSCRIPTION_EXISTED
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Ok(vec![Packet::UnsubAck(UnsubAck {
                packet_id,
                codes,
                reason_string: None,
            })])
        }))
    }
}
