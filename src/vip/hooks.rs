//! Hook commands, like keepalived's notify scripts: for deployments where the broker must not
//! hold CAP_NET_ADMIN, an operator's script (sudo, a cloud API call, a router update) moves
//! the VIP. Each runs as `sh -c COMMAND` with the VIP's details in its environment, a timeout,
//! and its exit status and standard error logged.

use std::process::Stdio;
use std::time::Duration;

use raftmq_raft::NodeId;
use tokio::process::Command;

use super::VipError;

/// Which transition a hook announces (`RAFTMQ_VIP_EVENT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Up,
    Down,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Up => "up",
            Event::Down => "down",
        }
    }
}

/// What a hook is told, through its environment.
#[derive(Clone, Debug)]
pub struct HookEnv {
    pub address: String,
    pub interface: String,
    pub node_id: NodeId,
}

impl HookEnv {
    /// The variables a hook sees, besides the broker's own environment.
    pub fn vars(&self, event: Event) -> [(&'static str, String); 4] {
        [
            ("RAFTMQ_VIP", self.address.clone()),
            ("RAFTMQ_INTERFACE", self.interface.clone()),
            ("RAFTMQ_NODE_ID", self.node_id.to_string()),
            ("RAFTMQ_VIP_EVENT", event.as_str().to_owned()),
        ]
    }
}

/// How a hook that ran to its end went.
#[derive(Debug)]
pub struct HookOutcome {
    pub stderr: String,
}

/// Most of a hook's standard error that goes into a log line.
const STDERR_LOG_LIMIT: usize = 2048;

/// Run `command` for `event`; `Ok` only when it exits with status 0 within `timeout`. The
/// child is killed if it overruns or if the returned future is dropped (a step-down that
/// interrupts an up hook).
pub async fn run(
    command: &str,
    env: &HookEnv,
    event: Event,
    timeout: Duration,
) -> Result<HookOutcome, VipError> {
    let failed = |message: String| VipError::Hook {
        event: event.as_str(),
        message,
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.vars(event))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| failed(format!("cannot start sh: {e}")))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(failed(format!("waiting for it failed: {e}"))),
        // Dropping the future dropped the child, which kill_on_drop kills.
        Err(_) => {
            return Err(failed(format!(
                "killed after {timeout:?} (vip.hook_timeout_ms)"
            )))
        }
    };
    let stderr = tail(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        Ok(HookOutcome { stderr })
    } else {
        let mut message = format!("exited with {}", output.status);
        if !stderr.is_empty() {
            message.push_str(": ");
            message.push_str(&stderr);
        }
        Err(failed(message))
    }
}

/// The end of `text`, trimmed, at most `STDERR_LOG_LIMIT` bytes (the end says what failed).
fn tail(text: &str) -> String {
    let text = text.trim();
    if text.len() <= STDERR_LOG_LIMIT {
        return text.to_owned();
    }
    let mut start = text.len() - STDERR_LOG_LIMIT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HookEnv {
        HookEnv {
            address: "10.0.0.100/24".into(),
            interface: "eth0".into(),
            node_id: NodeId(7),
        }
    }

    #[test]
    fn environment_names_the_vip_interface_node_and_event() {
        let vars = env().vars(Event::Down);
        assert_eq!(
            vars,
            [
                ("RAFTMQ_VIP", "10.0.0.100/24".to_owned()),
                ("RAFTMQ_INTERFACE", "eth0".to_owned()),
                ("RAFTMQ_NODE_ID", "7".to_owned()),
                ("RAFTMQ_VIP_EVENT", "down".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn hook_sees_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let cmd = format!(
            "echo \"$RAFTMQ_VIP_EVENT $RAFTMQ_VIP $RAFTMQ_INTERFACE $RAFTMQ_NODE_ID\" > {}; \
             echo note >&2",
            out.display()
        );
        let outcome = run(&cmd, &env(), Event::Up, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(outcome.stderr, "note");
        let written = std::fs::read_to_string(&out).unwrap();
        assert_eq!(written, "up 10.0.0.100/24 eth0 7\n");
    }

    #[tokio::test]
    async fn failure_reports_status_and_stderr() {
        let err = run(
            "echo 'ip: RTNETLINK answers: Operation not permitted' >&2; exit 2",
            &env(),
            Event::Up,
            Duration::from_secs(10),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("up hook"), "{err}");
        assert!(err.contains("exit status: 2"), "{err}");
        assert!(err.contains("Operation not permitted"), "{err}");
    }

    #[tokio::test]
    async fn overrunning_hook_is_killed() {
        let started = std::time::Instant::now();
        let err = run("sleep 30", &env(), Event::Down, Duration::from_millis(200))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("killed after"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn long_stderr_keeps_its_end() {
        let long = format!("{}END", "x".repeat(5000));
        let t = tail(&long);
        assert!(t.ends_with("END"));
        assert!(t.len() <= STDERR_LOG_LIMIT + 3);
    }
}
