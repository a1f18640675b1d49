//! The `[vip]` section: the virtual IP the active node holds, and how it is managed.
//! Parsing and validation live here so every error names its key; `crate::vip` only runs it.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// How the VIP is managed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VipMode {
    /// `hooks` when a hook command is set, else `netlink` when an address is set, else `off`.
    #[default]
    Auto,
    /// The broker adds and removes the address itself and announces it with gratuitous ARP
    /// (needs CAP_NET_ADMIN and CAP_NET_RAW).
    Netlink,
    /// The broker runs `up_command` / `down_command` and touches no interface itself.
    Hooks,
    /// No VIP, even if an address is configured.
    Off,
}

impl VipMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VipMode::Auto => "auto",
            VipMode::Netlink => "netlink",
            VipMode::Hooks => "hooks",
            VipMode::Off => "off",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VipConfig {
    /// `auto`, `netlink`, `hooks` or `off`.
    pub mode: VipMode,
    /// IPv4 address with an optional prefix length, e.g. `10.0.0.100/24` (`/32` if absent).
    /// Empty: no VIP.
    pub address: String,
    /// Interface the address is added to, e.g. `eth0` (netlink mode).
    pub interface: String,
    /// Gratuitous ARP packets sent each time this node takes the VIP; 0 sends none.
    pub garp_count: u32,
    /// Milliseconds between those packets.
    pub garp_interval_ms: u64,
    /// While holding the VIP, announce it again every this many seconds (one burst); 0 = only
    /// on takeover. Refreshes reach hosts that missed the takeover burst behind a partition.
    pub garp_refresh_secs: u64,
    /// Shell command (`sh -c`) run when this node becomes active (hooks mode).
    pub up_command: String,
    /// Shell command run when this node stops being active, at start-up and at shutdown.
    pub down_command: String,
    /// A hook still running after this many ms is killed and counted as failed.
    pub hook_timeout_ms: u64,
}

impl Default for VipConfig {
    fn default() -> VipConfig {
        VipConfig {
            mode: VipMode::Auto,
            address: String::new(),
            interface: String::new(),
            garp_count: 3,
            garp_interval_ms: 200,
            garp_refresh_secs: 0,
            up_command: String::new(),
            down_command: String::new(),
            hook_timeout_ms: 10_000,
        }
    }
}

/// A parsed `vip.address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipAddress {
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
}

impl fmt::Display for VipAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix_len)
    }
}

impl VipConfig {
    /// The mode in force once `auto` is resolved: never `Auto`.
    pub fn effective_mode(&self) -> VipMode {
        match self.mode {
            VipMode::Auto if self.has_hooks() => VipMode::Hooks,
            VipMode::Auto if !self.address.trim().is_empty() => VipMode::Netlink,
            VipMode::Auto => VipMode::Off,
            other => other,
        }
    }

    fn has_hooks(&self) -> bool {
        !self.up_command.trim().is_empty() || !self.down_command.trim().is_empty()
    }

    /// `vip.address` parsed; `None` when empty.
    pub fn parse_address(&self) -> Result<Option<VipAddress>, ConfigError> {
        let raw = self.address.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let bad = |why: &str| ConfigError::invalid("vip.address", format!("{raw:?}: {why}"));
        let (ip, prefix) = match raw.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (raw, None),
        };
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| bad("expected an IPv4 address such as 10.0.0.100/24"))?;
        let prefix_len = match prefix {
            None => 32,
            Some(p) => match p.parse::<u8>() {
                Ok(n @ 1..=32) => n,
                _ => return Err(bad("the prefix length must be between 1 and 32")),
            },
        };
        if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() {
            return Err(bad("must be a unicast address"));
        }
        Ok(Some(VipAddress { ip, prefix_len }))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let address = self.parse_address()?;
        if self.garp_interval_ms == 0 || self.garp_interval_ms > 60_000 {
            return Err(ConfigError::invalid(
                "vip.garp_interval_ms",
                "must be between 1 and 60000",
            ));
        }
        if self.garp_count > 100 {
            return Err(ConfigError::invalid(
                "vip.garp_count",
                "must be at most 100",
            ));
        }
        if self.hook_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "vip.hook_timeout_ms",
                "must be at least 1",
            ));
        }
        if !self.interface.is_empty() {
            check_interface(&self.interface)?;
        }
        match self.effective_mode() {
            VipMode::Netlink => {
                if self.has_hooks() {
                    // Both would manage the same address; say which one wins instead of
                    // silently ignoring the commands.
                    return Err(ConfigError::invalid(
                        "vip.up_command",
                        "hook commands are used in vip.mode = \"hooks\" (or \"auto\"), \
                         not with vip.mode = \"netlink\"",
                    ));
                }
                if address.is_none() {
                    return Err(ConfigError::invalid(
                        "vip.address",
                        "required with vip.mode = \"netlink\"",
                    ));
                }
                if self.interface.is_empty() {
                    return Err(ConfigError::invalid(
                        "vip.interface",
                        "required when vip.address is set (the interface to add it to)",
                    ));
                }
            }
            VipMode::Hooks => {
                if !self.has_hooks() {
                    return Err(ConfigError::invalid(
                        "vip.up_command",
                        "vip.mode = \"hooks\" needs vip.up_command or vip.down_command",
                    ));
                }
            }
            VipMode::Off | VipMode::Auto => {}
        }
        Ok(())
    }
}

/// Linux interface names: 1 to 15 bytes (IFNAMSIZ - 1), no '/', no whitespace.
fn check_interface(name: &str) -> Result<(), ConfigError> {
    if name.len() > 15 || name.contains('/') || name.chars().any(char::is_whitespace) {
        return Err(ConfigError::invalid(
            "vip.interface",
            format!("{name:?} is not an interface name (at most 15 characters, no '/' or spaces)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut VipConfig)) -> VipConfig {
        let mut c = VipConfig::default();
        f(&mut c);
        c
    }

    fn err_key(c: &VipConfig) -> String {
        match c.validate() {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid-key error, got {other:?}"),
        }
    }

    #[test]
    fn default_is_off_and_valid() {
        let c = VipConfig::default();
        assert_eq!(c.effective_mode(), VipMode::Off);
        c.validate().unwrap();
    }

    #[test]
    fn auto_picks_netlink_or_hooks() {
        let c = with(|c| {
            c.address = "10.0.0.100/24".into();
            c.interface = "eth0".into();
        });
        assert_eq!(c.effective_mode(), VipMode::Netlink);
        c.validate().unwrap();
        let c = with(|c| {
            c.address = "10.0.0.100/24".into();
            c.up_command = "true".into();
        });
        assert_eq!(c.effective_mode(), VipMode::Hooks);
        c.validate().unwrap();
        let c = with(|c| {
            c.address = "10.0.0.100".into();
            c.mode = VipMode::Off;
        });
        assert_eq!(c.effective_mode(), VipMode::Off);
    }

    #[test]
    fn addresses_parse_with_and_without_prefix() {
        let c = with(|c| c.address = " 10.0.0.100/24 ".into());
        assert_eq!(
            c.parse_address().unwrap(),
            Some(VipAddress {
                ip: Ipv4Addr::new(10, 0, 0, 100),
                prefix_len: 24
            })
        );
        let c = with(|c| c.address = "192.168.1.5".into());
        let a = c.parse_address().unwrap().unwrap();
        assert_eq!(a.prefix_len, 32);
        assert_eq!(a.to_string(), "192.168.1.5/32");
    }

    #[test]
    fn bad_values_name_their_key() {
        for bad in [
            "10.0.0/24",
            "10.0.0.1/33",
            "10.0.0.1/0",
            "fe80::1",
            "127.0.0.1",
            "0.0.0.0",
            "224.0.0.1",
        ] {
            let c = with(|c| {
                c.address = bad.into();
                c.interface = "eth0".into();
            });
            assert_eq!(err_key(&c), "vip.address", "{bad}");
        }
        let c = with(|c| c.address = "10.0.0.100/24".into());
        assert_eq!(err_key(&c), "vip.interface");
        let c = with(|c| {
            c.address = "10.0.0.100/24".into();
            c.interface = "a-very-long-interface-name".into();
        });
        assert_eq!(err_key(&c), "vip.interface");
        let c = with(|c| {
            c.mode = VipMode::Netlink;
            c.interface = "eth0".into();
        });
        assert_eq!(err_key(&c), "vip.address");
        let c = with(|c| {
            c.mode = VipMode::Netlink;
            c.address = "10.0.0.100/24".into();
            c.interface = "eth0".into();
            c.up_command = "true".into();
        });
        assert_eq!(err_key(&c), "vip.up_command");
        let c = with(|c| c.mode = VipMode::Hooks);
        assert_eq!(err_key(&c), "vip.up_command");
        let c = with(|c| c.garp_interval_ms = 0);
        assert_eq!(err_key(&c), "vip.garp_interval_ms");
        let c = with(|c| c.garp_count = 1000);
        assert_eq!(err_key(&c), "vip.garp_count");
        let c = with(|c| c.hook_timeout_ms = 0);
        assert_eq!(err_key(&c), "vip.hook_timeout_ms");
    }

    #[test]
    fn mode_parses_from_toml_and_rejects_unknown_values() {
        let c: VipConfig = toml::from_str("mode = \"hooks\"\nup_command = \"true\"").unwrap();
        assert_eq!(c.mode, VipMode::Hooks);
        let err = toml::from_str::<VipConfig>("mode = \"keepalived\"").unwrap_err();
        assert!(err.to_string().contains("keepalived"), "{err}");
    }
}
