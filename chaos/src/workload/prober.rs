//! Probes every node on its own address (not the VIP) with a clean CONNECT several times a
//! second: which nodes accept MQTT, and when. Only the leader holding its lease may; the
//! others must answer 3 (server unavailable) or nothing.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

use super::Rounds;
use crate::clock::Clock;
use crate::history::{Probe, Recorder};
use crate::mqtt::{Conn, Refused};

pub async fn run(
    node: u8,
    addr: SocketAddr,
    period: Duration,
    clock: Clock,
    rec: Recorder,
    mut stop: watch::Receiver<bool>,
) {
    let mut rounds = Rounds::new(period);
    while let Some(round) = rounds.next(&mut stop).await {
        // A fresh client id each time: one id connecting ten times a second is exactly what
        // the broker's flapping detection bans.
        let client_id = format!("chaos-probe-{node}-{round}");
        let sent_at = clock.now();
        let code = match Conn::connect(addr, &client_id, true, Duration::from_millis(500)).await {
            Ok(c) => {
                c.conn.close().await;
                Some(0)
            }
            Err(e) => e.downcast_ref::<Refused>().map(|r| r.0),
        };
        rec.lock().probes.push(Probe {
            node,
            sent_at,
            done_at: clock.now(),
            code,
        });
    }
}
