//! The broker as a process: kill -9 and restart with Mosquitto's clients, SIGTERM, and the
//! command line's answers to bad configuration.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rumqttc::QoS;

use crate::common::{eventually, mosquitto, require, Broker};
use crate::peer::Peer;
use crate::WAIT;

/// The README's quick start: a persistent mosquitto_sub session, a message queued while it is
/// away, kill -9 of the broker, and the message delivered after the restart.
#[test]
fn mosquitto_quick_start_survives_kill9() {
    require("mosquitto_sub");
    require("mosquitto_pub");
    let mut broker = Broker::start();
    // Create the persistent session and its subscription first (-E: exit once subscribed),
    // so that nothing depends on when the background subscriber gets connected.
    let session = ["-t", "a/#", "-q", "1", "-c", "-i", "s1"];
    let (status, lines) =
        mosquitto::Sub::spawn(broker.port, &[&session[..], &["-E"]].concat()).finish(WAIT);
    assert!(status.success(), "mosquitto_sub -E failed: {lines:#?}");

    let format = ["-F", "%q %r %t %p", "-C", "1", "-W", "10"];
    let sub = mosquitto::Sub::spawn(broker.port, &[&session[..], &format[..]].concat());
    mosquitto::publish(broker.port, &["-t", "a/b", "-m", "hi", "-q", "1"]);
    let (status, lines) = sub.finish(Duration::from_secs(15));
    assert!(status.success(), "mosquitto_sub failed: {lines:#?}");
    assert_eq!(lines, ["1 0 a/b hi"], "QoS, retain, topic, payload");
    // mosquitto_sub sent PUBACK and DISCONNECT; the broker has recorded both once it logs
    // the end of that connection (the second of session s1).
    eventually("the end of the second s1 connection", WAIT, || {
        (broker
            .log()
            .matches("client disconnected client=s1 ")
            .count()
            >= 2)
            .then_some(())
    });

    mosquitto::publish(
        broker.port,
        &["-t", "a/b", "-m", "while you were away", "-q", "1"],
    );
    broker.kill9();
    broker.restart();

    let sub = mosquitto::Sub::spawn(broker.port, &[&session[..], &format[..]].concat());
    let (status, lines) = sub.finish(Duration::from_secs(15));
    assert!(status.success(), "mosquitto_sub failed: {lines:#?}");
    assert_eq!(lines, ["1 0 a/b while you were away"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly_and_keeps_acked_messages() {
    let mut broker = Broker::start();
    let (mut s, _) = Peer::connect(broker.port, "term-sub", false).await;
    s.subscribe("term/#", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let (mut p, _) = Peer::connect(broker.port, "term-pub", true).await;
    p.publish("term/t", QoS::AtLeastOnce, false, "acked before shutdown")
        .await;

    let status = broker.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    drop(p);

    broker.restart();
    let (mut s, ack) = Peer::connect(broker.port, "term-sub", false).await;
    assert!(ack.session_present);
    let m = s.expect("term/t", "acked before shutdown").await;
    assert_eq!(m.qos, QoS::AtLeastOnce);
}

/// Runs the binary to completion (killed if still running after `WAIT`).
fn run_raftmq(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raftmq"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn raftmq");
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "raftmq {args:?} still running after {WAIT:?}:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `raftmq serve --config <file with toml>` must exit 2 naming `key` on stderr.
fn assert_config_error(toml: &str, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("raftmq.toml");
    std::fs::write(&file, toml).unwrap();
    let data = dir.path().join("data");
    let out = run_raftmq(
        &[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--mqtt-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(key),
        "stderr does not name {key:?}: {stderr}"
    );
}

#[test]
fn config_file_with_a_value_of_the_wrong_type_exits_2() {
    assert_config_error("[limits]\nmax_inflight = \"many\"\n", "max_inflight");
}

#[test]
fn config_file_with_an_invalid_value_exits_2() {
    assert_config_error("[limits]\nmax_inflight = 0\n", "limits.max_inflight");
}

#[test]
fn config_file_with_an_unknown_key_exits_2() {
    assert_config_error("[limits]\nmax_inflihgt = 5\n", "max_inflihgt");
}

#[test]
fn invalid_listen_address_in_the_environment_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_raftmq(
        &["serve", "--data-dir", data.to_str().unwrap()],
        &[("RAFTMQ_MQTT_LISTEN", "127.0.0.1:notaport")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("mqtt.listen"), "{stderr}");
}

#[test]
fn help_describes_the_config_flag() {
    let out = run_raftmq(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("--config"), "{stdout}");
}
