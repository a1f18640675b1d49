//! Bans: flapping detection sets one, CONNECTs matching one are refused (5.0: 0x8A, 3.1.1:
//! 5), the admin API and `raftmq ctl bans` list, add and lift them, and a ban survives a
//! leader failover because it is replicated.

mod common;

use common::admin::{admin_port, ctl, stdout, Admin, TOKEN};
use common::cluster::Cluster;
use common::raw::{connect_raw, connect_v4, connect_v5, Body, Raw, WITHIN};
use common::Broker;

const BANNED: u8 = 0x8A;

/// The CONNACK (session present, code) `port` answers a 5.0 CONNECT of `client` with.
async fn connack_v5(port: u16, client: &str) -> (bool, u8) {
    let mut raw = Raw::dial(port).await;
    raw.send(&connect_v5(client)).await;
    raw.frame(WITHIN).await.connack().expect("a CONNACK")
}

fn flapping_broker() -> Broker {
    Broker::builder()
        .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
        .env("RAFTMQ_FLAPPING_ENABLED", "true")
        .env("RAFTMQ_FLAPPING_MAX_CONNECTS", "3")
        .env("RAFTMQ_FLAPPING_WINDOW_SECS", "60")
        .env("RAFTMQ_FLAPPING_BAN_SECS", "600")
        .start()
}

#[tokio::test]
async fn a_flapping_client_is_banned_listed_and_lifted() {
    let broker = flapping_broker();
    for _ in 0..3 {
        assert_eq!(connack_v5(broker.port, "flappy").await, (false, 0));
    }
    // The fourth connect within the window is one too many.
    assert_eq!(connack_v5(broker.port, "flappy").await.1, BANNED);
    assert_eq!(connack_v5(broker.port, "flappy").await.1, BANNED);
    // 3.1.1 has no "banned": 5, not authorized.
    let mut raw = Raw::dial(broker.port).await;
    raw.send(&connect_v4("flappy")).await;
    assert_eq!(raw.frame(WITHIN).await.body, [0, 5]);
    // Others are not affected.
    assert_eq!(connack_v5(broker.port, "steady").await, (false, 0));

    let port = admin_port(&broker);
    let admin = Admin::new(port);
    let list = admin.get("/bans").await;
    assert_eq!(list.status, 200, "{}", list.text);
    let bans = list.json["bans"].as_array().expect("bans").clone();
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0]["kind"], "clientid");
    assert_eq!(bans[0]["value"], "flappy");
    assert!(bans[0]["reason"].as_str().unwrap().contains("flapping"));

    let out = ctl(port, Some(TOKEN), &["bans", "list"]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("flappy"), "{}", stdout(&out));

    let out = ctl(port, Some(TOKEN), &["bans", "lift", "clientid", "flappy"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(connack_v5(broker.port, "flappy").await, (false, 0));
    // Lifting again: nothing to lift.
    let out = ctl(port, Some(TOKEN), &["bans", "lift", "clientid", "flappy"]);
    assert!(!out.status.success());
    let out = ctl(port, Some(TOKEN), &["bans", "list"]);
    assert_eq!(stdout(&out), "no bans\n");
}

#[tokio::test]
async fn admin_bans_by_client_id_username_and_ip() {
    let broker = Broker::builder().env("RAFTMQ_ADMIN_TOKEN", TOKEN).start();
    let port = admin_port(&broker);
    let admin = Admin::new(port);

    let out = ctl(
        port,
        Some(TOKEN),
        &[
            "bans",
            "add",
            "clientid",
            "bad client/1",
            "--secs",
            "600",
            "--reason",
            "test",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("banned clientid bad client/1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(connack_v5(broker.port, "bad client/1").await.1, BANNED);

    let r = admin
        .post(
            "/bans",
            r#"{"kind": "username", "value": "mallory", "secs": 600}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A CONNECT with user name "mallory" (flag 0x80) is refused before any password check.
    let with_user = connect_raw(
        "MQTT",
        5,
        0x82,
        Body::new().no_props().str("someone").str("mallory"),
    );
    let mut raw = Raw::dial(broker.port).await;
    raw.send(&with_user).await;
    assert_eq!(raw.frame(WITHIN).await.connack().map(|a| a.1), Some(BANNED));

    // Bad requests name the field.
    let r = admin
        .post("/bans", r#"{"kind": "ip", "value": "nope", "secs": 5}"#)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("value"), "{}", r.text);
    let r = admin
        .post("/bans", r#"{"kind": "ip", "value": "10.0.0.1", "secs": 0}"#)
        .await;
    assert_eq!(r.status, 400);
    let r = admin.delete("/bans/planet/x").await;
    assert_eq!(r.status, 400);
    let r = admin.call(reqwest::Method::GET, "/bans", None, None).await;
    assert_eq!(r.status, 401);

    // Banning the loopback address refuses every new client from it.
    let r = admin
        .post(
            "/bans",
            r#"{"kind": "ip", "value": "127.0.0.1", "secs": 600}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(connack_v5(broker.port, "anyone").await.1, BANNED);
    let r = admin.delete("/bans/ip/127.0.0.1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(connack_v5(broker.port, "anyone").await, (false, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_survives_a_leader_failover() {
    let mut cluster = Cluster::builder("bans_failover")
        .nodes(3)
        .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
        .start();
    let leader = cluster.leader().await;
    let admin = Admin::new(cluster.node(leader).admin_port);
    let r = admin
        .post(
            "/bans",
            r#"{"kind": "clientid", "value": "evil", "secs": 600, "reason": "failover test"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        connack_v5(cluster.mqtt_port(leader), "evil").await.1,
        BANNED
    );

    // A follower answers writes with 421 and the leader; ctl follows it.
    let follower = cluster.others(leader)[0];
    let f_admin = Admin::new(cluster.node(follower).admin_port);
    let r = f_admin
        .post(
            "/bans",
            r#"{"kind": "clientid", "value": "other", "secs": 600}"#,
        )
        .await;
    assert_eq!(r.status, 421, "{}", r.text);
    let out = ctl(
        cluster.node(follower).admin_port,
        Some(TOKEN),
        &["bans", "add", "clientid", "other", "--secs", "600"],
    );
    assert!(out.status.success(), "{out:?}");

    cluster.kill9(leader);
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    let port = cluster.mqtt_port(new_leader);
    assert_eq!(connack_v5(port, "evil").await.1, BANNED);
    assert_eq!(connack_v5(port, "other").await.1, BANNED);
    assert_eq!(connack_v5(port, "innocent").await, (false, 0));
    let list = Admin::new(cluster.node(new_leader).admin_port)
        .get("/bans")
        .await;
    let bans = list.json["bans"].as_array().expect("bans").clone();
    assert_eq!(bans.len(), 2, "{bans:?}");
    assert!(bans
        .iter()
        .any(|b| b["value"] == "evil" && b["reason"] == "failover test"));
}
