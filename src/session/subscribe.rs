//! SUBSCRIBE and UNSUBSCRIBE: proposed, answered after commit. Retained messages from the
//! replicated store come as effects of the commit; this node's `$SYS` values are appended
//! after the SUBACK.

use raftmq_raft::{Op, QoS, Reply, SubResult, SubscribeRequest};

use super::{propose, Close, Session, Step};
use crate::codec::{reason, Packet, Protocol, SubAck, Subscribe, UnsubAck, Unsubscribe};

impl Session {
    pub(super) fn on_subscribe(&mut self, s: Subscribe) -> Result<Step, Close> {
        let mut requests = Vec::with_capacity(s.filters.len());
        for (filter, mut options) in s.filters {
            if options.no_local && filter.starts_with("$share/") {
                return Err(Close::error(
                    reason::PROTOCOL_ERROR,
                    "no local on a shared subscription",
                ));
            }
            options.subscription_id = s.subscription_id;
            requests.push(SubscribeRequest { filter, options });
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
        let packet_id = s.packet_id;
        let v4 = self.protocol == Protocol::V4;
        Ok(Step::Wait(Box::pin(async move {
            let reply = propose(&cluster, op).await?;
            let results = match reply {
                Reply::Subscribed(r) => r,
                _ => return Err(Close::unexpected()),
            };
            let codes = results
                .iter()
                .map(|r| match r {
                    SubResult::Granted(q) => *q as u8,
                    SubResult::Invalid if v4 => reason::UNSPECIFIED_ERROR,
                    SubResult::Invalid => reason::TOPIC_FILTER_INVALID,
                })
                .collect();
            let mut out = vec![Packet::SubAck(SubAck {
                packet_id,
                codes,
                reason_string: None,
            })];
            for (filter, _, retain_handling) in sys_filters {
                if retain_handling != 2 {
                    out.extend(sys.retained_for(&filter).into_iter().map(Packet::Publish));
                }
            }
            Ok(out)
        })))
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
