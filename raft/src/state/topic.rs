//! Topic names and filters: validation, `$share/<group>/<filter>` parsing, and matching one
//! filter against one topic (for retained messages; routing uses the trie). The codec already
//! validates both, but apply never trusts its input, so these checks run again here.

/// A valid filter, split into its share group (if any) and the filter proper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Filter<'a> {
    pub share: Option<&'a str>,
    pub filter: &'a str,
}

/// A PUBLISH topic: non-empty, no wildcards, no NUL (MQTT 4.7.3, 1.5.4).
pub(crate) fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// A subscription filter without a share prefix: `#` only as the whole last level, `+` only
/// as a whole level (MQTT 4.7.1).
fn valid_plain_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" => return levels.peek().is_none(),
            "+" => {}
            _ if level.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// Parses and validates a filter; `None` when it is invalid. `$share/<group>/<filter>` needs a
/// non-empty group without wildcards and a valid filter after it (MQTT 4.8.2).
pub(crate) fn parse_filter(filter: &str) -> Option<Filter<'_>> {
    match filter.strip_prefix("$share/") {
        Some(rest) => {
            let (group, inner) = rest.split_once('/')?;
            let ok = !group.is_empty() && !group.contains(['+', '#']) && valid_plain_filter(inner);
            ok.then_some(Filter {
                share: Some(group),
                filter: inner,
            })
        }
        None => valid_plain_filter(filter).then_some(Filter {
            share: None,
            filter,
        }),
    }
}

/// Whether a (plain, valid) filter matches a topic. Topics starting with `$` are not matched
/// by a filter starting with a wildcard (MQTT 4.7.2).
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The literal text every topic matched by `filter` starts with: the levels before the first
/// wildcard, without the separator (`a/#` also matches `a`). `None` when the filter has no
/// wildcard, so it matches exactly one topic: itself.
pub(crate) fn literal_prefix(filter: &str) -> Option<&str> {
    let mut start = 0;
    for level in filter.split('/') {
        if level == "+" || level == "#" {
            return Some(filter[..start].strip_suffix('/').unwrap_or(""));
        }
        start += level.len() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for ok in [
            "a", "a/b", "+", "#", "a/+/c", "a/#", "/", "+/+", "$SYS/#", "a//b",
        ] {
            assert!(parse_filter(ok).is_some(), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+/b", "#/a", "a/b#", "x\0y"] {
            assert!(parse_filter(bad).is_none(), "{bad}");
        }
        assert_eq!(
            parse_filter("$share/g/a/+"),
            Some(Filter {
                share: Some("g"),
                filter: "a/+"
            })
        );
        for bad in [
            "$share/",
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share/g/a#",
        ] {
            assert!(parse_filter(bad).is_none(), "{bad}");
        }
        // `$share` alone is an ordinary topic filter.
        assert_eq!(parse_filter("$share").map(|f| f.share), Some(None));
    }

    #[test]
    fn topic_names() {
        assert!(valid_topic_name("a/b"));
        assert!(valid_topic_name("/"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name("a/+"));
        assert!(!valid_topic_name("a/#"));
    }

    #[test]
    fn matching() {
        let yes = [
            ("#", "a"),
            ("#", "a/b"),
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("a/+", "a/b"),
            ("a/+", "a/"),
            ("+/+", "/x"),
            ("+", ""),
            ("$SYS/#", "$SYS/x"),
            ("$SYS/+", "$SYS/x"),
            ("a/b", "a/b"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} {t}");
        }
        let no = [
            ("a/+", "a"),
            ("a/+", "a/b/c"),
            ("a/b", "a/c"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("a", "a/b"),
            ("a/b", "a"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f} {t}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(literal_prefix("a/b"), None);
        assert_eq!(literal_prefix("a/b/+"), Some("a/b"));
        assert_eq!(literal_prefix("a/#"), Some("a"));
        assert_eq!(literal_prefix("#"), Some(""));
        assert_eq!(literal_prefix("+/a"), Some(""));
        assert_eq!(literal_prefix("a/+/b/#"), Some("a"));
    }
}
