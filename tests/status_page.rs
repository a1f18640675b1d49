//! The status page at `/` of the admin listener, rendered by a real browser: headless
//! Chromium (Debian's `chromium`) loads the leader's page of a three-node cluster, runs its
//! script, and the DOM it leaves shows the leader, the members, the lease and the message
//! rates; its screenshot is a real 1200x900 PNG with content.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::admin::{eventually_async, Admin};
use common::client::{connect_v4, drive};
use common::cluster::Cluster;
use common::require;
use reqwest::Method;
use rumqttc::QoS;

/// Run chromium headless on `url` with `mode` (`--dump-dom` or `--screenshot=FILE`),
/// giving the page's script 5 s of virtual time; its stdout.
fn chromium(url: &str, mode: &str, profile: &Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1200,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text content of the element with `id` in serialized HTML.
fn element_text<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\"");
    let at = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in\n{dom}"));
    let rest = &dom[at..];
    let start = rest.find('>').map_or(0, |i| i + 1);
    let end = rest[start..].find('<').map_or(rest.len(), |i| start + i);
    &rest[start..end]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_the_live_cluster_in_chromium() {
    require("chromium");
    let cluster = Cluster::start("status-page");
    let leader = cluster.leader().await;
    let admin_port = cluster.node(leader).admin_port;
    let admin = Admin::new(admin_port);

    // Traffic so the rate chart has something to draw.
    let (client, ev, _) = connect_v4(cluster.mqtt_port(leader), "page-pub", true).await;
    let _driver = drive(ev);
    client
        .subscribe("page/#", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    let publisher = client.clone();
    let traffic = tokio::spawn(async move {
        loop {
            if publisher
                .publish("page/t", QoS::AtLeastOnce, false, vec![0u8; 32])
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    eventually_async(
        "a non-zero rate in /status/series",
        Duration::from_secs(20),
        || async {
            let r = admin.call(Method::GET, "/status/series", None, None).await;
            let points = r.json["points"].as_array().cloned().unwrap_or_default();
            (points.len() >= 2
                && points
                    .iter()
                    .any(|p| p["received_per_sec"].as_f64() > Some(1.0)))
            .then_some(())
        },
    )
    .await;
    // Every follower replicates, as the page will show.
    eventually_async(
        "three replicating members",
        Duration::from_secs(20),
        || async {
            let r = admin.call(Method::GET, "/status/summary", None, None).await;
            let members = r.json["members"].as_array().cloned().unwrap_or_default();
            (members.len() == 3 && members.iter().all(|m| m["replicating"] == true)).then_some(())
        },
    )
    .await;

    let page = admin.call(Method::GET, "/", None, None).await;
    assert_eq!(page.status, 200);
    for external in [
        "<script src",
        "<link",
        "<img",
        "@import",
        "url(",
        "https://",
    ] {
        assert!(
            !page.text.contains(external),
            "the page must load nothing from elsewhere: {external}"
        );
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("http://127.0.0.1:{admin_port}/");
    let dom = chromium(&url, "--dump-dom", &tmp.path().join("profile-dom"));
    assert_eq!(
        element_text(&dom, "leader"),
        format!("node {leader}"),
        "{dom}"
    );
    assert_eq!(element_text(&dom, "node"), leader.to_string());
    assert_eq!(element_text(&dom, "role"), "leader");
    assert_eq!(element_text(&dom, "lease"), "held");
    for id in cluster.ids() {
        let row = format!("id=\"member-{id}\"");
        assert!(dom.contains(&row), "no row for node {id} in\n{dom}");
    }
    assert!(
        !dom.contains(">no<"),
        "a member shown as not replicating:\n{dom}"
    );
    let rate = element_text(&dom, "rate-in");
    assert!(rate.ends_with("/s"), "no received rate: {rate:?}");
    assert!(dom.contains("<path"), "no rate lines in the chart:\n{dom}");
    assert!(
        dom.contains(&format!("<td>node {leader}</td>")),
        "no leader change to node {leader}:\n{dom}"
    );

    let shot = tmp.path().join("status.png");
    chromium(
        &url,
        &format!("--screenshot={}", shot.display()),
        &tmp.path().join("profile-shot"),
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 900));
    // A blank 1200x900 page compresses to a few KB; text, tables and a chart do not.
    assert!(png.len() > 30_000, "screenshot only {} bytes", png.len());
    if let Ok(dir) = std::env::var("STATUS_PAGE_SCREENSHOT_DIR") {
        std::fs::copy(&shot, Path::new(&dir).join("status-page.png")).expect("keep screenshot");
    }
    traffic.abort();
}
