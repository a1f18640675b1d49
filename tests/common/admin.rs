//! The admin API from the tests: find a broker's admin port in its log, call the routes
//! with or without the token, run `raftmq ctl`.

use std::process::{Command, Output};
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;

use super::{parse_port, Broker, READY};

/// The admin token test brokers get.
pub const TOKEN: &str = "test-admin-token";

/// A broker serving its admin API on an ephemeral port, protected by `TOKEN`.
pub fn start_broker() -> Broker {
    Broker::builder().env("RAFTMQ_ADMIN_TOKEN", TOKEN).start()
}

/// The admin port the broker logged (`admin API listening addr=...`).
pub fn admin_port(broker: &Broker) -> u16 {
    let line = broker.wait_log("admin API listening", READY);
    parse_port(&line).expect("port in the admin listening line")
}

/// One answer: status, headers, and the body as JSON (`Value::Null` if it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// The `error` message of an error answer.
    pub fn error(&self) -> &str {
        self.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {} {:?}", self.status, self.text))
    }
}

/// A client of one node's admin API.
pub struct Admin {
    base: String,
    client: reqwest::Client,
}

impl Admin {
    pub fn new(port: u16) -> Admin {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(90))
            .build()
            .expect("http client");
        Admin {
            base: format!("http://127.0.0.1:{port}"),
            client,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request with `Authorization: <auth>` when given, and a raw JSON body when given
    /// (raw, so tests can send malformed JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            req = req.header(AUTHORIZATION, auth);
        }
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let resp = req.send().await.expect("admin API reachable");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// GET with the test token.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(&bearer()), None).await
    }

    /// POST a raw JSON body with the test token.
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.call(Method::POST, path, Some(&bearer()), Some(body))
            .await
    }

    /// DELETE with the test token.
    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, Some(&bearer()), None).await
    }

    /// `GET /cluster/status`, asserting it succeeds.
    pub async fn status(&self) -> Value {
        let r = self.get("/cluster/status").await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json
    }
}

pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// `raftmq ctl --admin http://127.0.0.1:<port> <args>`, with `RAFTMQ_ADMIN_TOKEN` set to
/// `token` (or unset).
pub fn ctl(port: u16, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raftmq"));
    cmd.arg("ctl")
        .arg("--admin")
        .arg(format!("http://127.0.0.1:{port}"))
        .args(args)
        .env_remove("RAFTMQ_ADMIN_TOKEN");
    if let Some(token) = token {
        cmd.env("RAFTMQ_ADMIN_TOKEN", token);
    }
    cmd.output().expect("run raftmq ctl")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `f` until it returns `Some`, or panic after `timeout` (the async `eventually`).
pub async fn eventually_async<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
