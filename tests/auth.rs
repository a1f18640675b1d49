//! Authentication and authorization with clients this project did not write: password files
//! made by the real `mosquitto_passwd` and ACL files in Mosquitto's format used as they are,
//! `mosquitto_pub`/`mosquitto_sub` with `-u/-P` and client certificates, rumqttc for the 5.0
//! reason codes; reloads by SIGHUP and through the admin API; the auth rate limit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::admin::{admin_port, Admin, TOKEN};
use common::mosquitto::{publish, Sub};
use common::{eventually, parse_port, pki, require, Broker};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError};

const WAIT: Duration = Duration::from_secs(10);

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn raftmq_passwd(args: &[&str]) -> Output {
    let mut all = vec!["passwd"];
    all.extend_from_slice(args);
    run(env!("CARGO_BIN_EXE_raftmq"), &all)
}

/// `mosquitto_pub` to completion; returns whether it succeeded and what it printed.
fn try_publish(port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run mosquitto_pub");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.to_lowercase())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A password file made by mosquitto_passwd: `(user, password)` pairs.
fn mosquitto_password_file(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let file = dir.join("passwords");
    for (i, (user, pw)) in users.iter().enumerate() {
        let mut args = vec!["-b"];
        if i == 0 {
            args.insert(0, "-c");
        }
        args.extend([path(&file), user, pw]);
        run_ok("mosquitto_passwd", &args);
    }
    file
}

fn start(env: &[(&str, &str)]) -> Broker {
    let mut b = Broker::builder().env("RAFTMQ_ADMIN_TOKEN", TOKEN);
    for (k, v) in env {
        b = b.env(k, v);
    }
    b.start()
}

fn metrics(broker: &Broker) -> String {
    let admin = Admin::new(admin_port(broker));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(admin.get("/metrics")).text
}

fn metric(broker: &Broker, series: &str) -> u64 {
    let text = metrics(broker);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn mosquitto_password_file_users_and_refusals() {
    require("mosquitto_passwd");
    require("mosquitto_pub");
    let tmp = tempfile::tempdir().unwrap();
    let file = mosquitto_password_file(tmp.path(), &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    // raftmq passwd edits the same file: adds carol, adds then deletes dave.
    for args in [
        vec!["-b", path(&file), "carol", "carol-pw"],
        vec!["-b", path(&file), "dave", "dave-pw"],
        vec!["-D", path(&file), "dave"],
    ] {
        let out = raftmq_passwd(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.lines().all(|l| !l.starts_with("dave:")), "{text}");
    assert!(text.contains("alice:$7$"), "{text}");

    let broker = Broker::builder()
        .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
        .arg("--password-file")
        .arg(path(&file))
        .start();
    let port = broker.port;
    for (user, pw) in [
        ("alice", "alice-pw"),
        ("bob", "bob-pw"),
        ("carol", "carol-pw"),
    ] {
        for v in ["mqttv311", "mqttv5"] {
            publish(port, &["-V", v, "-u", user, "-P", pw, "-t", "t", "-m", "x"]);
        }
    }
    let refused = [
        (
            vec!["-u", "alice", "-P", "wrong"],
            "bad user name or password",
        ),
        (
            vec!["-u", "dave", "-P", "dave-pw"],
            "bad user name or password",
        ),
        (vec![], "not authori"),
    ];
    for (creds, expect) in &refused {
        for v in ["mqttv311", "mqttv5"] {
            let mut args = vec!["-V", v, "-t", "t", "-m", "x"];
            args.extend(creds);
            let (ok, out) = try_publish(port, &args);
            assert!(!ok, "{args:?} was let in");
            assert!(out.contains(expect), "{args:?}: {out}");
        }
    }
    assert_eq!(
        metric(
            &broker,
            "raftmq_auth_failures_total{reason=\"bad_credentials\"}"
        ),
        4
    );
    assert_eq!(
        metric(
            &broker,
            "raftmq_auth_failures_total{reason=\"not_authorized\"}"
        ),
        2
    );
}

/// The hash `raftmq passwd` writes is one Mosquitto itself accepts.
#[test]
fn mosquitto_accepts_raftmq_passwd_hashes() {
    require("mosquitto");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("passwords");
    let out = raftmq_passwd(&["-c", "-b", path(&file), "erin", "erin-pw"]);
    assert!(out.status.success(), "{out:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let conf = tmp.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            // `user root`: as root, Mosquitto would switch to its own user, which cannot
            // read the owner-only file.
            "user root\nlistener {port} 127.0.0.1\npassword_file {}\nallow_anonymous false\n",
            path(&file)
        ),
    )
    .unwrap();
    let mut mosquitto = KillOnDrop(
        Command::new("mosquitto")
            .args(["-c", path(&conf)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto"),
    );
    eventually("mosquitto to accept erin", WAIT, || {
        let (ok, out) = try_publish(port, &["-u", "erin", "-P", "erin-pw", "-t", "t", "-m", "x"]);
        assert!(!out.contains("bad user name"), "{out}");
        ok.then_some(())
    });
    let (ok, _) = try_publish(port, &["-u", "erin", "-P", "nope", "-t", "t", "-m", "x"]);
    assert!(!ok);
    let _ = mosquitto.0.kill();
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const ACL: &str = "\
# Mosquitto ACL file. Nothing for anonymous clients.
user admin
topic readwrite #
topic read $SYS/#

user alice
topic readwrite alice/#
topic deny alice/secret
topic read $SYS/broker/uptime

user bob
topic read alice/#

# Every client owns its own branch; users read their inbox.
pattern readwrite clients/%c/#
pattern read inbox/%u
";

fn acl_broker(tmp: &Path) -> Broker {
    let users = [
        ("admin", "admin-pw"),
        ("alice", "alice-pw"),
        ("bob", "bob-pw"),
    ];
    let file = mosquitto_password_file(tmp, &users);
    let acl = tmp.join("acl");
    std::fs::write(&acl, ACL).unwrap();
    Broker::builder()
        .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
        .env("RAFTMQ_SYS_INTERVAL_SECS", "1")
        .arg("--password-file")
        .arg(path(&file))
        .arg("--acl-file")
        .arg(path(&acl))
        .start()
}

fn as_user<'a>(user: &'a str, pw: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-u", user, "-P", pw];
    args.extend_from_slice(rest);
    args
}

#[test]
fn acl_file_denies_publish_subscribe_retained_and_wills() {
    require("mosquitto_passwd");
    require("mosquitto_sub");
    let tmp = tempfile::tempdir().unwrap();
    let broker = acl_broker(tmp.path());
    let port = broker.port;
    let admin = |rest: &[&'static str]| as_user("admin", "admin-pw", rest);

    // Retained: alice may read alice/open, not alice/secret (a deny inside her branch).
    publish(
        port,
        &admin(&["-q", "1", "-r", "-t", "alice/open", "-m", "r-open"]),
    );
    publish(
        port,
        &admin(&["-q", "1", "-r", "-t", "alice/secret", "-m", "r-secret"]),
    );
    let alice = Sub::spawn(
        port,
        &as_user("alice", "alice-pw", &["-q", "1", "-v", "-t", "alice/#"]),
    );
    alice.wait_line("retained alice/open", WAIT, |l| l == "alice/open r-open");
    let everything = Sub::spawn(port, &admin(&["-q", "1", "-v", "-t", "#"]));
    eventually("the admin subscription", WAIT, || {
        publish(
            port,
            &admin(&["-q", "1", "-t", "everything/ready", "-m", "1"]),
        );
        let out = everything.output();
        out.iter().any(|l| l == "everything/ready 1").then_some(())
    });

    // Publish: bob may only read alice/#; his QoS 1 publish is acked (3.1.1) and dropped.
    publish(
        port,
        &as_user(
            "bob",
            "bob-pw",
            &["-q", "1", "-t", "alice/x", "-m", "from-bob"],
        ),
    );
    publish(
        port,
        &admin(&["-q", "1", "-t", "alice/secret", "-m", "live-secret"]),
    );
    publish(port, &admin(&["-q", "2", "-t", "alice/x", "-m", "after"]));
    alice.wait_line("the admin's publish", WAIT, |l| l == "alice/x after");
    everything.wait_line("the admin's publish", WAIT, |l| l == "alice/x after");

    // Patterns: %c and %u.
    let bob_as = |id: &'static str, topic: &'static str| {
        publish(
            port,
            &as_user(
                "bob",
                "bob-pw",
                &["-i", id, "-q", "1", "-t", topic, "-m", id],
            ),
        );
    };
    bob_as("dev2", "clients/dev1/a");
    bob_as("dev1", "clients/dev1/a");
    everything.wait_line("dev1's own topic", WAIT, |l| l == "clients/dev1/a dev1");
    let inbox = Sub::spawn(
        port,
        &as_user("bob", "bob-pw", &["-C", "1", "-v", "-t", "inbox/bob"]),
    );
    eventually("bob reading his inbox", WAIT, || {
        publish(port, &admin(&["-t", "inbox/bob", "-m", "hi"]));
        inbox
            .output()
            .iter()
            .any(|l| l == "inbox/bob hi")
            .then_some(())
    });

    // Wills: checked when stored. alice's will on bob/will is dropped, alice/will fires.
    let denied = Sub::spawn(
        port,
        &as_user(
            "alice",
            "alice-pw",
            &[
                "-i",
                "w1",
                "-t",
                "alice/#",
                "--will-topic",
                "bob/will",
                "--will-payload",
                "no",
            ],
        ),
    );
    broker.wait_log("will not stored", WAIT);
    drop(denied);
    let allowed = Sub::spawn(
        port,
        &as_user(
            "alice",
            "alice-pw",
            &[
                "-i",
                "w2",
                "-t",
                "alice/#",
                "--will-topic",
                "alice/will",
                "--will-payload",
                "yes",
            ],
        ),
    );
    eventually("the second will to be stored", WAIT, || {
        broker.log().contains("client=w2").then_some(())
    });
    drop(allowed);
    everything.wait_line("the allowed will", WAIT, |l| l == "alice/will yes");

    let seen = alice.output();
    assert!(!seen.iter().any(|l| l.contains("secret")), "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("from-bob")), "{seen:?}");
    let all = everything.output();
    assert!(!all.iter().any(|l| l.contains("from-bob")), "{all:?}");
    assert!(
        !all.iter().any(|l| l.contains("clients/dev1/a dev2")),
        "{all:?}"
    );
    assert!(!all.iter().any(|l| l.starts_with("bob/will")), "{all:?}");
    // `#` never matched $SYS for the admin's plain `#` subscription.
    assert!(!all.iter().any(|l| l.starts_with("$SYS")), "{all:?}");

    // $SYS: alice reads the one topic she is given, bob none.
    let uptime = Sub::spawn(
        port,
        &as_user(
            "alice",
            "alice-pw",
            &["-C", "1", "-v", "-t", "$SYS/broker/uptime"],
        ),
    );
    let (_, out) = uptime.finish(WAIT);
    assert!(
        out.iter().any(|l| l.starts_with("$SYS/broker/uptime ")),
        "{out:?}"
    );
    let bob_sys = Sub::spawn(
        port,
        &as_user(
            "bob",
            "bob-pw",
            &["-V", "mqttv5", "-C", "1", "-v", "-t", "$SYS/#"],
        ),
    );
    let (_, out) = bob_sys.finish(WAIT);
    assert!(
        out.iter().any(|l| l.to_lowercase().contains("denied")),
        "{out:?}"
    );

    for (series, at_least) in [
        ("raftmq_acl_denied_total{action=\"publish\"}", 2),
        ("raftmq_acl_denied_total{action=\"subscribe\"}", 1),
        ("raftmq_acl_denied_total{action=\"deliver\"}", 2),
        ("raftmq_acl_denied_total{action=\"will\"}", 1),
    ] {
        let n = metric(&broker, series);
        assert!(n >= at_least, "{series} = {n}");
    }
}

/// 5.0 reason codes: PUBACK 0x87 for a denied publish, SUBACK 0x87 per denied filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_denials_carry_5_0_reason_codes() {
    require("mosquitto_passwd");
    let tmp = tempfile::tempdir().unwrap();
    let broker = acl_broker(tmp.path());
    let mut o = common::client5::options(broker.port, "bob-v5");
    o.set_credentials("bob", "bob-pw");
    let (client, mut ev, ack) = common::client5::connect(o).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);

    client
        .subscribe_many([
            rumqttc::v5::mqttbytes::v5::Filter::new("alice/#", QoS::AtLeastOnce),
            rumqttc::v5::mqttbytes::v5::Filter::new("secret/#", QoS::AtLeastOnce),
            rumqttc::v5::mqttbytes::v5::Filter::new("$SYS/#", QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    let codes = common::client5::wait_for(&mut ev, "SUBACK", |p| match p {
        Packet::SubAck(s) => Some(s.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        codes,
        vec![
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::NotAuthorized,
            SubscribeReasonCode::NotAuthorized,
        ]
    );
    client
        .publish("alice/x", QoS::AtLeastOnce, false, "from-bob")
        .await
        .unwrap();
    let reason = common::client5::wait_for(&mut ev, "PUBACK", |p| match p {
        Packet::PubAck(a) => Some(a.reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, PubAckReason::NotAuthorized);

    let mut o = common::client5::options(broker.port, "mallory");
    o.set_credentials("alice", "guess");
    let (_c, mut ev) = AsyncClient::new(o, 10);
    match ev.poll().await {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, ConnectReturnCode::BadUserNamePassword)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let (_c, mut ev) = AsyncClient::new(common::client5::options(broker.port, "anon"), 10);
    match ev.poll().await {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, ConnectReturnCode::NotAuthorized)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(broker);
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A CA, a server certificate for 127.0.0.1, and client certificates: `alice` (CN) and
/// `san` (no CN, SAN DNS name `sensor-7`).
fn make_pki(dir: &Path) {
    pki::make_ca(dir, "raftmq auth test CA");
    let certs = [
        ("server", "/CN=server", "subjectAltName=IP:127.0.0.1\n"),
        ("alice", "/CN=alice", "extendedKeyUsage=clientAuth\n"),
        (
            "san",
            "/O=raftmq tests",
            "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:sensor-7\n",
        ),
    ];
    for (name, subj, ext) in certs {
        pki::sign(dir, name, subj, ext);
    }
}

#[test]
fn tls_certificate_identity_is_the_username() {
    require("openssl");
    require("mosquitto_pub");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir);
    let acl = dir.join("acl");
    std::fs::write(
        &acl,
        "user alice\ntopic readwrite alice/#\nuser sensor-7\ntopic write sensors/7\ntopic read alice/#\n",
    )
    .unwrap();
    let p = |f: &str| path(&dir.join(f)).to_owned();
    let broker = Broker::builder()
        .arg("--tls-listen")
        .arg("127.0.0.1:0")
        .arg("--acl-file")
        .arg(path(&acl))
        .env("RAFTMQ_TLS_CERT_FILE", &p("server.pem"))
        .env("RAFTMQ_TLS_KEY_FILE", &p("server.key"))
        .env("RAFTMQ_TLS_CLIENT_CA_FILE", &p("ca.pem"))
        .env("RAFTMQ_AUTH_USE_IDENTITY_AS_USERNAME", "true")
        .start();
    let line = broker.wait_log("MQTT over TLS listening", WAIT);
    let tls_port = parse_port(&line).expect("TLS port");
    let (ca, alice_cert, alice_key, san_cert, san_key) = (
        p("ca.pem"),
        p("alice.pem"),
        p("alice.key"),
        p("san.pem"),
        p("san.key"),
    );
    let tls = |cert: &str, key: &str| -> Vec<String> {
        let mut v = vec!["--cafile".to_owned(), ca.clone()];
        if !cert.is_empty() {
            v.extend([
                "--cert".to_owned(),
                cert.to_owned(),
                "--key".into(),
                key.to_owned(),
            ]);
        }
        v
    };

    let alice_tls = tls(&alice_cert, &alice_key);
    let mut sub_args = strs(&alice_tls);
    sub_args.extend(["-v", "-t", "alice/#", "-t", "sensors/#"]);
    let sub = Sub::spawn(tls_port, &sub_args);
    // sensors/# is not alice's to read: her subscription to it is refused, alice/# stands.
    let san_tls = tls(&san_cert, &san_key);
    eventually("alice's subscription", WAIT, || {
        let mut args = strs(&alice_tls);
        args.extend(["-t", "alice/ping", "-m", "1"]);
        publish(tls_port, &args);
        sub.output()
            .iter()
            .any(|l| l == "alice/ping 1")
            .then_some(())
    });
    // The SAN identity `sensor-7` may write sensors/7 only.
    for (topic, msg) in [("alice/x", "from-sensor"), ("sensors/7", "reading")] {
        let mut args = strs(&san_tls);
        args.extend(["-q", "1", "-t", topic, "-m", msg]);
        publish(tls_port, &args);
    }
    let mut args = strs(&alice_tls);
    args.extend(["-q", "1", "-t", "alice/done", "-m", "1"]);
    publish(tls_port, &args);
    sub.wait_line("alice's last message", WAIT, |l| l == "alice/done 1");
    let seen = sub.output();
    assert!(!seen.iter().any(|l| l.contains("from-sensor")), "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("reading")), "{seen:?}");

    // A TLS client without a certificate has no identity: not authorized.
    let no_cert = tls("", "");
    let mut args = strs(&no_cert);
    args.extend(["-t", "alice/x", "-m", "x"]);
    let (ok, out) = try_publish(tls_port, &args);
    assert!(!ok && out.contains("not authori"), "{out}");
}

#[test]
fn reload_by_sighup_and_admin_api_keeps_sessions() {
    require("mosquitto_passwd");
    require("mosquitto_sub");
    let tmp = tempfile::tempdir().unwrap();
    let file = mosquitto_password_file(tmp.path(), &[("alice", "alice-pw")]);
    let broker = start(&[("RAFTMQ_AUTH_PASSWORD_FILE", path(&file))]);
    let port = broker.port;
    let sub = Sub::spawn(
        port,
        &as_user("alice", "alice-pw", &["-q", "1", "-v", "-t", "t/#"]),
    );
    eventually("alice's subscription", WAIT, || {
        publish(
            port,
            &as_user("alice", "alice-pw", &["-t", "t/ping", "-m", "1"]),
        );
        sub.output().iter().any(|l| l == "t/ping 1").then_some(())
    });
    let carol = as_user(
        "carol",
        "carol-pw",
        &["-q", "1", "-t", "t/carol", "-m", "hello"],
    );
    assert!(!try_publish(port, &carol).0, "carol before she exists");

    // SIGHUP after adding carol with mosquitto_passwd.
    run_ok(
        "mosquitto_passwd",
        &["-b", path(&file), "carol", "carol-pw"],
    );
    run_ok("kill", &["-HUP", &broker.pid().to_string()]);
    broker.wait_log("password and ACL files reloaded", WAIT);
    publish(port, &carol);
    sub.wait_line("carol's message on the same connection", WAIT, |l| {
        l == "t/carol hello"
    });

    // A file that does not parse: 422, the previous users stay.
    let admin = Admin::new(admin_port(&broker));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}mallory:not-a-hash\n")).unwrap();
    let r = rt.block_on(admin.post("/auth/reload", "{}"));
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.error().contains("line 3"), "{}", r.text);
    publish(port, &carol);
    let r = rt.block_on(admin.call(reqwest::Method::POST, "/auth/reload", None, None));
    assert_eq!(r.status, 401, "{}", r.text);

    // Fixed, and carol removed: 200, carol is out, alice's session never dropped.
    text = text
        .lines()
        .filter(|l| !l.starts_with("carol:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
    let r = rt.block_on(admin.post("/auth/reload", "{}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["users"], 1, "{}", r.text);
    assert!(!try_publish(port, &carol).0, "carol after removal");
    publish(
        port,
        &as_user("alice", "alice-pw", &["-t", "t/end", "-m", "1"]),
    );
    sub.wait_line("alice still subscribed", WAIT, |l| l == "t/end 1");
    assert_eq!(metric(&broker, "raftmq_auth_reload_failures_total"), 1);
}

#[test]
fn auth_rate_limit_is_hit_and_recovers() {
    require("mosquitto_passwd");
    require("mosquitto_pub");
    let tmp = tempfile::tempdir().unwrap();
    let file = mosquitto_password_file(tmp.path(), &[("alice", "alice-pw")]);
    let broker = start(&[
        ("RAFTMQ_AUTH_PASSWORD_FILE", path(&file)),
        ("RAFTMQ_AUTH_ATTEMPTS_PER_SEC", "4"),
    ]);
    let port = broker.port;
    let mut quota = 0;
    for _ in 0..12 {
        let (ok, out) = try_publish(
            port,
            &[
                "-V", "mqttv5", "-u", "alice", "-P", "guess", "-t", "t", "-m", "x",
            ],
        );
        assert!(!ok);
        if out.contains("quota exceeded") {
            quota += 1;
        }
    }
    assert!(quota > 0, "no attempt was rate limited");
    assert_eq!(
        metric(
            &broker,
            "raftmq_auth_failures_total{reason=\"rate_limited\"}"
        ),
        quota
    );
    broker.wait_log("authentication rate limit", WAIT);
    // Other usernames are not affected, and alice gets back in once her bucket refills.
    eventually("alice to be let in again", WAIT, || {
        let (ok, out) = try_publish(
            port,
            &["-u", "alice", "-P", "alice-pw", "-t", "t", "-m", "x"],
        );
        assert!(ok || out.contains("bad user name or password"), "{out}");
        ok.then_some(())
    });
}
