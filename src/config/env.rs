//! `RAFTMQ_<SECTION>_<KEY>` (or `RAFTMQ_<KEY>` for top-level keys) overrides any key.
//! Values are parsed with the type the key has, so `RAFTMQ_LIMITS_MAX_INFLIGHT=x` is an
//! error naming `limits.max_inflight`.

use toml::Value;

use super::{Config, ConfigError};

/// Apply every `RAFTMQ_*` variable of `vars` to `config`.
pub fn apply_env<I>(config: &mut Config, vars: I) -> Result<(), ConfigError>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut tree =
        Value::try_from(&*config).map_err(|e| ConfigError::invalid("(config)", e.to_string()))?;
    let keys = leaf_keys(&tree);
    let mut changed = false;
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix("RAFTMQ_") else {
            continue;
        };
        // Variables the CLI reads itself, not config keys.
        if matches!(rest, "CONFIG" | "LOG") {
            continue;
        }
        let wanted = rest.to_ascii_lowercase();
        let Some(path) = keys.iter().find(|k| k.join("_") == wanted) else {
            return Err(ConfigError::UnknownEnv { key: wanted, var });
        };
        let key = path.join(".");
        let slot =
            lookup(&mut tree, path).ok_or_else(|| ConfigError::invalid(&key, "no such key"))?;
        *slot = parse_like(slot, &raw).map_err(|m| ConfigError::invalid(&key, m))?;
        changed = true;
    }
    if changed {
        *config = tree
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::invalid("(environment)", e.to_string()))?;
    }
    Ok(())
}

fn leaf_keys(tree: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if let Value::Table(top) = tree {
        for (k, v) in top {
            match v {
                Value::Table(section) => {
                    for inner in section.keys() {
                        out.push(vec![k.clone(), inner.clone()]);
                    }
                }
                _ => out.push(vec![k.clone()]),
            }
        }
    }
    out
}

fn lookup<'a>(tree: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(tree, |node, part| node.get_mut(part))
}

fn parse_like(current: &Value, raw: &str) -> Result<Value, String> {
    match current {
        Value::Integer(_) => raw
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("expected an integer, got {raw:?}")),
        Value::Boolean(_) => match raw.trim() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {raw:?}")),
        },
        Value::Float(_) => raw
            .trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("expected a number, got {raw:?}")),
        _ => Ok(Value::String(raw.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_nested_and_top_level_keys() {
        let mut c = Config::default();
        apply_env(
            &mut c,
            env(&[
                ("RAFTMQ_MQTT_LISTEN", "0.0.0.0:1999"),
                ("RAFTMQ_LIMITS_MAX_INFLIGHT", "7"),
                ("RAFTMQ_NODE_ID", "3"),
                ("RAFTMQ_TLS_REQUIRE_CLIENT_CERT", "true"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.mqtt.listen, "0.0.0.0:1999");
        assert_eq!(c.limits.max_inflight, 7);
        assert_eq!(c.node_id, 3);
        assert!(c.tls.require_client_cert);
    }

    #[test]
    fn bad_value_names_the_key() {
        let mut c = Config::default();
        let err = apply_env(&mut c, env(&[("RAFTMQ_LIMITS_MAX_INFLIGHT", "lots")])).unwrap_err();
        assert!(err.to_string().contains("limits.max_inflight"), "{err}");
    }

    #[test]
    fn unknown_variable_is_an_error() {
        let mut c = Config::default();
        let err = apply_env(&mut c, env(&[("RAFTMQ_MQTT_LISTN", "x")])).unwrap_err();
        assert!(err.to_string().contains("RAFTMQ_MQTT_LISTN"), "{err}");
    }
}
