//! `[auth]`: who may connect (Mosquitto password file, TLS certificate identities,
//! anonymous access), what they may do (Mosquitto ACL file), and the authentication rate
//! limit. The keys keep Mosquitto's names so a mosquitto.conf translates line by line.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Mosquitto password file (`mosquitto_passwd` or `raftmq passwd`); empty = none.
    pub password_file: String,
    /// Mosquitto ACL file; empty = every client may publish and subscribe anywhere.
    pub acl_file: String,
    /// Clients without a username: `true`, `false`, or `"auto"` (the default): allowed
    /// until a password file is set, as in Mosquitto 2.
    pub allow_anonymous: Anonymous,
    /// On the TLS listener, the client certificate's CN (or first SAN) is the username and
    /// no password is checked; TLS clients without a certificate are refused.
    pub use_identity_as_username: bool,
    /// Authentication attempts (CONNECTs with a username) per username per second; over
    /// it the CONNECT is refused unchecked. 0 = no limit.
    pub attempts_per_sec: u32,
}

/// `allow_anonymous`: a boolean, or `"auto"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Anonymous {
    #[default]
    Auto,
    Allow,
    Deny,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            password_file: String::new(),
            acl_file: String::new(),
            allow_anonymous: Anonymous::Auto,
            use_identity_as_username: false,
            attempts_per_sec: 4,
        }
    }
}

impl AuthConfig {
    /// Whether clients without a username are let in.
    pub fn anonymous_allowed(&self) -> bool {
        match self.allow_anonymous {
            Anonymous::Allow => true,
            Anonymous::Deny => false,
            Anonymous::Auto => self.password_file.is_empty(),
        }
    }

    pub fn validate(&self, tls_client_ca_file: &str) -> Result<(), ConfigError> {
        if self.use_identity_as_username && tls_client_ca_file.is_empty() {
            return Err(ConfigError::invalid(
                "auth.use_identity_as_username",
                "needs tls.client_ca_file to verify client certificates with",
            ));
        }
        Ok(())
    }
}

impl Serialize for Anonymous {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Anonymous::Auto => "auto",
            Anonymous::Allow => "true",
            Anonymous::Deny => "false",
        })
    }
}

impl<'de> Deserialize<'de> for Anonymous {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Anonymous, D::Error> {
        // TOML gives a boolean; an environment variable always arrives as a string.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Anonymous::Allow),
            Raw::Bool(false) => Ok(Anonymous::Deny),
            Raw::Text(t) => match t.trim() {
                "auto" => Ok(Anonymous::Auto),
                "true" | "1" | "yes" | "on" => Ok(Anonymous::Allow),
                "false" | "0" | "no" | "off" => Ok(Anonymous::Deny),
                other => Err(serde::de::Error::custom(format!(
                    "allow_anonymous: expected true, false or \"auto\", got {other:?}"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{apply_env, Config};

    #[test]
    fn anonymous_follows_the_password_file_unless_set() {
        let c = Config::from_toml(
            "[auth]\npassword_file = \"/etc/p\"\n",
            std::path::Path::new("x"),
        )
        .unwrap();
        assert!(!c.auth.anonymous_allowed());
        assert!(Config::default().auth.anonymous_allowed());
        let c = Config::from_toml(
            "[auth]\npassword_file = \"/etc/p\"\nallow_anonymous = true\n",
            std::path::Path::new("x"),
        )
        .unwrap();
        assert!(c.auth.anonymous_allowed());
        let mut c = Config::default();
        apply_env(
            &mut c,
            [("RAFTMQ_AUTH_ALLOW_ANONYMOUS".to_owned(), "false".to_owned())],
        )
        .unwrap();
        assert!(!c.auth.anonymous_allowed());
        let err = apply_env(
            &mut c,
            [("RAFTMQ_AUTH_ALLOW_ANONYMOUS".to_owned(), "maybe".to_owned())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("allow_anonymous"), "{err}");
    }
}
