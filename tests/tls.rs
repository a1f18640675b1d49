//! MQTT over TLS with mosquitto_pub/mosquitto_sub: server certificates, and client
//! certificates verified against a CA when configured.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{parse_port, pki, require, Broker};

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all PEM.
fn make_pki(dir: &Path) {
    pki::make_ca(dir, "raftmq test CA");
    pki::sign(
        dir,
        "server",
        "/CN=server",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    );
    pki::sign(dir, "client", "/CN=client", "extendedKeyUsage=clientAuth\n");
}

fn start_tls(pki: &Path, client_ca: bool) -> (Broker, u16) {
    let p = |f: &str| pki.join(f).to_string_lossy().into_owned();
    let mut b = Broker::builder()
        .arg("--tls-listen")
        .arg("127.0.0.1:0")
        .env("RAFTMQ_TLS_CERT_FILE", &p("server.pem"))
        .env("RAFTMQ_TLS_KEY_FILE", &p("server.key"));
    if client_ca {
        b = b
            .env("RAFTMQ_TLS_CLIENT_CA_FILE", &p("ca.pem"))
            .env("RAFTMQ_TLS_REQUIRE_CLIENT_CERT", "true");
    }
    let broker = b.start();
    let line = broker.wait_log("MQTT over TLS listening", Duration::from_secs(10));
    let port = parse_port(&line).expect("TLS port");
    (broker, port)
}

/// Subscribe over TLS for one message while publishing it over TLS; returns what arrived.
fn round_trip(port: u16, pki: &Path, client_cert: bool) -> Option<String> {
    let p = |f: &str| pki.join(f).to_string_lossy().into_owned();
    let port = port.to_string();
    let mut tls = vec![
        "-h".to_owned(),
        "127.0.0.1".into(),
        "-p".into(),
        port,
        "--cafile".into(),
        p("ca.pem"),
    ];
    if client_cert {
        tls.extend([
            "--cert".into(),
            p("client.pem"),
            "--key".into(),
            p("client.key"),
        ]);
    }
    let sub = Command::new("mosquitto_sub")
        .args(&tls)
        .args(["-t", "tls/t", "-q", "1", "-C", "1", "-W", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    // Publish until the subscriber has what it needs (it may not have subscribed yet).
    let output = {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut sub = sub;
        loop {
            let _ = Command::new("mosquitto_pub")
                .args(&tls)
                .args(["-t", "tls/t", "-q", "1", "-m", "over tls"])
                .stderr(Stdio::null())
                .status();
            if let Some(_status) = sub.try_wait().expect("wait") {
                break sub.wait_with_output().expect("output");
            }
            if std::time::Instant::now() > deadline {
                let _ = sub.kill();
                break sub.wait_with_output().expect("output");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[test]
fn mosquitto_clients_over_tls() {
    require("mosquitto_sub");
    require("openssl");
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (_broker, port) = start_tls(pki.path(), false);
    assert_eq!(
        round_trip(port, pki.path(), false).as_deref(),
        Some("over tls")
    );
}

#[test]
fn client_certificates_are_required_when_configured() {
    require("mosquitto_sub");
    require("openssl");
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (_broker, port) = start_tls(pki.path(), true);
    assert_eq!(
        round_trip(port, pki.path(), true).as_deref(),
        Some("over tls")
    );
    let refused = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
        .arg(pki.path().join("ca.pem"))
        .args(["-t", "tls/t", "-q", "1", "-m", "no cert"])
        .stderr(Stdio::null())
        .status()
        .expect("mosquitto_pub");
    assert!(
        !refused.success(),
        "a client without a certificate was accepted"
    );
}
