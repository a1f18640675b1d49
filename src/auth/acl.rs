//! Mosquitto ACL files, and the rules one client gets from one.
//!
//! Format (Mosquitto's `acl_file`): `user NAME` starts a user's block; `topic [read|write|
//! readwrite|deny] FILTER` adds a rule to the current block (lines before any `user` line
//! are for clients without a username); `pattern [ACCESS] FILTER` adds a rule for every
//! client, with `%u` replaced by its username and `%c` by its client id; `#` starts a
//! comment line. Without an access word a rule grants read and write.
//!
//! Checking follows Mosquitto's default ACL check: the client's own rules, then the
//! patterns, deny rules of each list first; the first rule whose filter matches decides
//! (deny, or allow if it grants the access asked); nothing matching denies. A topic that
//! starts with `$` is matched only by filters that start with `$`, so `topic read #` does
//! not open `$SYS`. Patterns never match for a username or client id holding `+` or `#`,
//! which could otherwise widen them. Patterns with `%u` do not apply to clients without a
//! username.
//!
//! Mosquitto checks reads only per message. raftmq also checks SUBSCRIBE: a filter is
//! granted when a read rule covers all of it (`topic read sensors/#` covers `sensors/+/t`,
//! not `#`); messages are still checked one by one on delivery, so a narrower deny rule
//! inside a granted filter holds.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    Deny,
    Read,
    Write,
    ReadWrite,
}

impl Grant {
    fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Grant::Read | Grant::ReadWrite, Access::Read)
                | (Grant::Write | Grant::ReadWrite, Access::Write)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    grant: Grant,
    filter: String,
}

/// Rules in checking order: deny rules first, the rest in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rules(Vec<Rule>);

impl Rules {
    fn push(&mut self, rule: Rule) {
        if rule.grant == Grant::Deny {
            let at = self.0.iter().take_while(|r| r.grant == Grant::Deny).count();
            self.0.insert(at, rule);
        } else {
            self.0.push(rule);
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclFile {
    anonymous: Rules,
    users: HashMap<String, Rules>,
    patterns: Rules,
}

impl AclFile {
    /// Parse a whole file; the error names the first bad line.
    pub fn parse(text: &str) -> Result<AclFile, String> {
        let mut acl = AclFile::default();
        let mut user: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let line_start = line.trim_start();
            let (word, rest) = line_start
                .split_once(' ')
                .map_or((line_start, ""), |(w, r)| (w, r.trim()));
            match word {
                "user" => {
                    if rest.is_empty() {
                        return Err(bad("missing username"));
                    }
                    user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(rest).map_err(|e| bad(&e))?;
                    if word == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(u) = &user {
                        acl.users.entry(u.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                _ => return Err(bad("expected user, topic or pattern")),
            }
        }
        Ok(acl)
    }

    /// Users with a block of their own.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The rules that apply to one client, with patterns filled in: its own block (deny
    /// rules first), then the patterns (deny rules first), as Mosquitto walks them.
    pub fn for_client(&self, username: Option<&str>, client_id: &str) -> ClientAcl {
        let own = match username {
            Some(u) => self.users.get(u).cloned().unwrap_or_default(),
            None => self.anonymous.clone(),
        };
        let mut rules = own.0;
        let dangerous = |s: &str| s.contains(['+', '#']);
        if !dangerous(client_id) && !username.is_some_and(dangerous) {
            for p in &self.patterns.0 {
                if p.filter.contains("%u") && username.is_none() {
                    continue;
                }
                let filter = p
                    .filter
                    .replace("%c", client_id)
                    .replace("%u", username.unwrap_or_default());
                rules.push(Rule {
                    grant: p.grant,
                    filter,
                });
            }
        }
        ClientAcl { rules }
    }
}

/// `[ACCESS] FILTER` of a `topic` or `pattern` line.
fn parse_rule(rest: &str) -> Result<Rule, String> {
    let (first, tail) = rest
        .split_once(' ')
        .map_or((rest, ""), |(w, t)| (w, t.trim()));
    let (grant, filter) = match first {
        "read" => (Grant::Read, tail),
        "write" => (Grant::Write, tail),
        "readwrite" => (Grant::ReadWrite, tail),
        "deny" => (Grant::Deny, tail),
        _ => (Grant::ReadWrite, rest),
    };
    if filter.is_empty() {
        return Err("missing topic".into());
    }
    if !valid_filter(filter) {
        return Err(format!("invalid topic filter {filter:?}"));
    }
    Ok(Rule {
        grant,
        filter: filter.to_owned(),
    })
}

/// MQTT filter syntax: `#` only as the whole last level, `+` only as a whole level.
fn valid_filter(f: &str) -> bool {
    let levels: Vec<&str> = f.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == levels.len() - 1,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

/// One client's rules, in checking order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAcl {
    rules: Vec<Rule>,
}

impl ClientAcl {
    /// Whether the client may read (receive) or write (publish) `topic`.
    pub fn allows(&self, topic: &str, access: Access) -> bool {
        self.decide(topic, access, |filter| matches(filter, topic))
    }

    /// Whether the client may subscribe to `filter` (`$share/GROUP/` already removed): a
    /// read rule must cover everything the filter can match.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        self.decide(filter, Access::Read, |rule| covers(rule, filter))
    }

    /// Mosquitto's walk: the first rule that `applies` and denies, or grants `access`,
    /// decides; a rule that applies but grants only the other access is passed over.
    fn decide(&self, topic: &str, access: Access, applies: impl Fn(&str) -> bool) -> bool {
        let dollar = topic.starts_with('$');
        for r in &self.rules {
            if dollar && !r.filter.starts_with('$') {
                continue;
            }
            if applies(&r.filter) {
                if r.grant == Grant::Deny {
                    return false;
                }
                if r.grant.allows(access) {
                    return true;
                }
            }
        }
        false
    }
}

/// Whether topic name `topic` matches `filter`.
fn matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(l)) if f == l => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// Whether every topic that `filter` matches is matched by `rule`.
fn covers(rule: &str, filter: &str) -> bool {
    let mut s = filter.split('/');
    for r in rule.split('/') {
        match (r, s.next()) {
            ("#", _) => return true,
            ("+", Some(l)) if l != "#" => {}
            (r, Some(l)) if r == l && l != "+" && l != "#" => {}
            _ => return false,
        }
    }
    s.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret
topic read $SYS/#
topic write sensors/+/temp

user bob
topic #

pattern readwrite clients/%c/#
pattern read users/%u/inbox
";

    #[test]
    fn users_anonymous_and_patterns() {
        let acl = AclFile::parse(FILE).unwrap();
        let anon = acl.for_client(None, "c1");
        assert!(anon.allows("public/news", Access::Read));
        assert!(!anon.allows("public/news", Access::Write));
        assert!(anon.allows("clients/c1/x", Access::Write));
        assert!(!anon.allows("users//inbox", Access::Read));

        let alice = acl.for_client(Some("alice"), "c2");
        assert!(alice.allows("alice/a", Access::Write));
        assert!(!alice.allows("alice/secret", Access::Read));
        assert!(alice.allows("sensors/k/temp", Access::Write));
        assert!(!alice.allows("sensors/k/temp", Access::Read));
        assert!(!alice.allows("public/news", Access::Read));
        assert!(alice.allows("$SYS/broker/uptime", Access::Read));
        assert!(alice.allows("users/alice/inbox", Access::Read));
        assert!(!alice.allows("users/bob/inbox", Access::Read));
        assert!(!alice.allows("clients/c1/x", Access::Read));

        let bob = acl.for_client(Some("bob"), "c3");
        assert!(bob.allows("anything/at/all", Access::Write));
        assert!(!bob.allows("$SYS/broker/uptime", Access::Read));

        let carol = acl.for_client(Some("carol"), "c4");
        assert!(!carol.allows("public/news", Access::Read));
        assert!(carol.allows("users/carol/inbox", Access::Read));

        let sneaky = acl.for_client(Some("+"), "c5");
        assert!(!sneaky.allows("users/x/inbox", Access::Read));
    }

    #[test]
    fn subscriptions_must_be_covered() {
        let acl = AclFile::parse(FILE).unwrap();
        let alice = acl.for_client(Some("alice"), "c2");
        assert!(alice.may_subscribe("alice/#"));
        assert!(alice.may_subscribe("alice/+/x"));
        assert!(!alice.may_subscribe("alice/secret"));
        assert!(!alice.may_subscribe("#"));
        assert!(!alice.may_subscribe("sensors/+/temp"));
        assert!(alice.may_subscribe("$SYS/broker/#"));
        let bob = acl.for_client(Some("bob"), "c3");
        assert!(bob.may_subscribe("#"));
        assert!(!bob.may_subscribe("$SYS/#"));
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line) in [
            ("user\n", 1),
            ("topic read\n", 1),
            ("# c\ntopic read a/#/b\n", 2),
            ("topic readwrite a\nfoo bar\n", 2),
        ] {
            let err = AclFile::parse(text).unwrap_err();
            assert!(err.starts_with(&format!("line {line}:")), "{err}");
        }
    }
}
