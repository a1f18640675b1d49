//! The initial cluster members, one documented form used by `raft.peers`, `RAFTMQ_RAFT_PEERS`
//! and `--peers`: comma-separated `ID=RAFT_ADDR/MQTT_ADDR/ADMIN_ADDR`, for example
//! `1=10.0.0.1:7946/10.0.0.1:1883/10.0.0.1:8081,2=10.0.0.2:7946/10.0.0.2:1883/10.0.0.2:8081`.
//! MQTT and admin addresses are the ones clients and operators dial (advertised).

use std::collections::BTreeMap;

use raftmq_raft::{Member, NodeId};

use super::ConfigError;

const KEY: &str = "raft.peers";

pub fn parse(text: &str) -> Result<BTreeMap<NodeId, Member>, ConfigError> {
    let mut members = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addrs) = item.split_once('=').ok_or_else(|| {
            ConfigError::invalid(KEY, format!("{item:?}: expected ID=RAFT/MQTT/ADMIN"))
        })?;
        let id: u64 = id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
            ConfigError::invalid(KEY, format!("{item:?}: the id must be a number from 1"))
        })?;
        let parts: Vec<&str> = addrs.split('/').map(str::trim).collect();
        let [raft, mqtt, admin] = parts[..] else {
            return Err(ConfigError::invalid(
                KEY,
                format!("{item:?}: expected three addresses RAFT/MQTT/ADMIN"),
            ));
        };
        for (what, addr) in [("raft", raft), ("mqtt", mqtt), ("admin", admin)] {
            if !looks_like_host_port(addr) {
                return Err(ConfigError::invalid(
                    KEY,
                    format!("{item:?}: {what} address {addr:?} is not HOST:PORT"),
                ));
            }
        }
        let member = Member {
            raft_addr: raft.to_owned(),
            mqtt_addr: mqtt.to_owned(),
            admin_addr: admin.to_owned(),
        };
        if members.insert(NodeId(id), member).is_some() {
            return Err(ConfigError::invalid(
                KEY,
                format!("node {id} is listed twice"),
            ));
        }
    }
    Ok(members)
}

fn looks_like_host_port(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_form() {
        let m = parse("1=10.0.0.1:7946/10.0.0.1:1883/10.0.0.1:8081, 2=h2:7946/h2:1883/h2:8081")
            .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&NodeId(2)].mqtt_addr, "h2:1883");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_key_and_the_item() {
        for bad in [
            "1=a:1/b:2",
            "x=a:1/b:2/c:3",
            "0=a:1/b:2/c:3",
            "1=a:1/b:2/c",
            "1=a:1/b:2/c:3,1=a:1/b:2/c:3",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("raft.peers"), "{bad}: {e}");
        }
    }
}
