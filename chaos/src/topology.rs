//! Where the nodes of the compose deployment are. The addresses are the ones
//! `docker-compose.yml` fixes; `Topology::check` confirms them against Docker at start.

use std::net::{Ipv4Addr, SocketAddr};

pub const NODES: [u8; 3] = [1, 2, 3];
pub const VIP: Ipv4Addr = Ipv4Addr::new(172, 28, 0, 100);
pub const MQTT_PORT: u16 = 1883;
pub const ADMIN_PORT: u16 = 8081;

pub fn node_ip(node: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 28, 0, 10 + node)
}

pub fn mqtt_addr(node: u8) -> SocketAddr {
    SocketAddr::from((node_ip(node), MQTT_PORT))
}

pub fn admin_url(node: u8) -> String {
    format!("http://{}:{ADMIN_PORT}", node_ip(node))
}

pub fn vip_addr() -> SocketAddr {
    SocketAddr::from((VIP, MQTT_PORT))
}

/// The compose service of a node.
pub fn service(node: u8) -> String {
    format!("raftmq{node}")
}
