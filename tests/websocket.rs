//! MQTT over WebSocket: paho-mqtt (`transport="websockets"`) over ws:// and wss:// on
//! `/mqtt` with QoS 1 and a persistent session (`tests/paho/ws_session.py`), and the HTTP
//! upgrade itself spoken by hand: the path, the subprotocol answer, refusals.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{parse_port, pki, require, Broker};

const LISTEN_WAIT: Duration = Duration::from_secs(10);

/// A broker with a WebSocket listener on an ephemeral port; returns it and that port.
fn ws_broker() -> (Broker, u16) {
    let broker = Broker::builder()
        .arg("--ws-listen")
        .arg("127.0.0.1:0")
        .start();
    let line = broker.wait_log("MQTT over WebSocket listening", LISTEN_WAIT);
    let port = parse_port(&line).expect("port in the listening line");
    (broker, port)
}

fn paho_ws(port: u16, protocol: &str, ca: Option<&Path>) {
    require("python3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/paho/ws_session.py");
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(script)
        .arg(port.to_string())
        .arg(protocol);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = cmd.output().expect("run python3");
    assert!(
        out.status.success(),
        "ws_session.py {protocol} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Send an upgrade request for `path` offering `protocols`; the response head, lowercased.
fn upgrade(port: u16, path: &str, protocols: Option<&str>) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(LISTEN_WAIT)).unwrap();
    let offer = protocols.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{offer}\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

#[test]
fn paho_over_websocket_v5_keeps_a_persistent_session() {
    let (_broker, port) = ws_broker();
    paho_ws(port, "v5", None);
}

#[test]
fn paho_over_websocket_v311_keeps_a_persistent_session() {
    let (_broker, port) = ws_broker();
    paho_ws(port, "v311", None);
}

#[test]
fn the_upgrade_answers_mqtt_on_mqtt_only() {
    let (_broker, port) = ws_broker();
    let ok = upgrade(port, "/mqtt", Some("mqtt"));
    assert!(ok.starts_with("http/1.1 101"), "{ok}");
    assert!(ok.contains("sec-websocket-protocol: mqtt\r\n"), "{ok}");

    // Older clients offer mqttv3.1, which Mosquitto accepts too; mqtt is preferred.
    let old = upgrade(port, "/mqtt", Some("mqttv3.1"));
    assert!(
        old.contains("sec-websocket-protocol: mqttv3.1\r\n"),
        "{old}"
    );
    let both = upgrade(port, "/mqtt", Some("mqttv3.1, mqtt"));
    assert!(both.contains("sec-websocket-protocol: mqtt\r\n"), "{both}");

    for path in ["/", "/ws", "/mqtt/x"] {
        let refused = upgrade(port, path, Some("mqtt"));
        assert!(refused.starts_with("http/1.1 404"), "{path}: {refused}");
    }
    let other = upgrade(port, "/mqtt", Some("chat"));
    assert!(other.starts_with("http/1.1 400"), "{other}");
}

#[test]
fn paho_over_websocket_over_tls() {
    require("openssl");
    let dir = tempfile::tempdir().unwrap();
    pki::openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
    );
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let broker = Broker::builder()
        .env("RAFTMQ_TLS_CERT_FILE", cert.to_str().unwrap())
        .env("RAFTMQ_TLS_KEY_FILE", key.to_str().unwrap())
        .env("RAFTMQ_TLS_LISTEN", "127.0.0.1:0")
        .arg("--wss-listen")
        .arg("127.0.0.1:0")
        .start();
    let line = broker.wait_log("MQTT over WebSocket over TLS listening", LISTEN_WAIT);
    let port = parse_port(&line).expect("port in the listening line");
    paho_ws(port, "v5", Some(&cert));
}

#[test]
fn wss_without_a_certificate_is_a_configuration_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_raftmq"))
        .args(["--wss-listen", "127.0.0.1:0", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .expect("run raftmq");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mqtt.wss_listen"), "{err}");
}
