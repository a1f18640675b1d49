//! Topic names, topic filters and the UTF-8 rules for MQTT strings. Public so the broker can
//! validate a topic again after resolving a 5.0 topic alias.

use super::CodecError;

/// The prefix that makes a filter a 5.0 shared subscription: `$share/<group>/<filter>`.
pub(crate) const SHARE_PREFIX: &str = "$share/";

/// An MQTT string must be UTF-8 without U+0000 (3.1.1 and 5.0 section 1.5.3); anything else
/// makes the packet malformed. Surrogates and over-long forms are not UTF-8, so
/// `str::from_utf8` already refuses them.
pub(crate) fn check_utf8<'a>(raw: &'a [u8], what: &str) -> Result<&'a str, CodecError> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| CodecError::Malformed(format!("{what}: not valid UTF-8")))?;
    check_no_nul(s, what)?;
    Ok(s)
}

/// For strings another parser (mqttbytes) already turned into `String`s: it checks UTF-8
/// but lets U+0000 through.
pub(crate) fn check_no_nul(s: &str, what: &str) -> Result<(), CodecError> {
    if s.as_bytes().contains(&0) {
        return Err(CodecError::Malformed(format!("{what}: contains U+0000")));
    }
    Ok(())
}

/// A topic a message is published to: non-empty, at most 65,535 bytes, no U+0000 and no
/// wildcard (`+`, `#`). (The empty topic a 5.0 PUBLISH may carry with a topic alias is
/// handled by the decoder; after alias resolution the topic must pass this.)
pub fn valid_topic_name(topic: &str) -> bool {
    check_topic_name(topic).is_ok()
}

/// A subscription filter: non-empty, at most 65,535 bytes, no U+0000, `+` and `#` each a
/// whole level and `#` only last (mqttbytes accepts `a+/b`). A `$share/` filter must be
/// `$share/<group>/<filter>` with a non-empty group free of wildcards, and a valid filter.
pub fn valid_topic_filter(filter: &str) -> bool {
    check_topic_filter(filter).is_ok()
}

/// `valid_topic_name`, saying why not.
pub(crate) fn check_topic_name(topic: &str) -> Result<(), CodecError> {
    let bad = |why: &str| Err(CodecError::TopicName(format!("{topic:?}: {why}")));
    if topic.is_empty() {
        return bad("empty");
    }
    if topic.len() > usize::from(u16::MAX) {
        return bad("longer than 65535 bytes");
    }
    if topic.as_bytes().contains(&0) {
        return bad("contains U+0000");
    }
    if topic.contains(['+', '#']) {
        return bad("wildcards are not allowed in a topic name");
    }
    Ok(())
}

/// `valid_topic_filter`, saying why not.
pub(crate) fn check_topic_filter(filter: &str) -> Result<(), CodecError> {
    let bad = |why: &str| Err(CodecError::TopicFilter(format!("{filter:?}: {why}")));
    if filter.len() > usize::from(u16::MAX) {
        return bad("longer than 65535 bytes");
    }
    if filter.as_bytes().contains(&0) {
        return bad("contains U+0000");
    }
    let plain = match filter.strip_prefix(SHARE_PREFIX) {
        Some(rest) => match rest.split_once('/') {
            Some((group, inner)) if !group.is_empty() && !group.contains(['+', '#']) => inner,
            _ => return bad("a shared subscription is $share/<group>/<filter>"),
        },
        None => filter,
    };
    if plain.is_empty() {
        return bad("empty");
    }
    let mut levels = plain.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('+') && level != "+" {
            return bad("'+' must occupy a whole level");
        }
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return bad("'#' must be the whole last level");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in [
            "a",
            "a/b",
            "/",
            "a//b",
            "$SYS/x",
            "sport/tennis/player1",
            "é/ü",
        ] {
            assert!(valid_topic_name(ok), "{ok}");
        }
        for bad in ["", "a/+", "+", "#", "a/#", "a+b", "a\0b"] {
            assert!(
                matches!(check_topic_name(bad), Err(CodecError::TopicName(_))),
                "{bad}"
            );
        }
        assert!(!valid_topic_name(&"a".repeat(65_536)));
    }

    #[test]
    fn topic_filters() {
        for ok in [
            "a",
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/#",
            "a//b",
            "/",
            "$SYS/#",
            "$share",
            "$shared/x",
            "$share/g/a",
            "$share/g/#",
            "$share/g/+/x",
            "$share/g//",
        ] {
            assert!(valid_topic_filter(ok), "{ok}");
        }
        for bad in [
            "",
            "a+/b",
            "a/b+",
            "+a",
            "a#",
            "#/a",
            "a/#/b",
            "##",
            "a/++",
            "a\0",
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/g+/a",
            "$share/#/a",
            "$share/g/a+",
        ] {
            assert!(
                matches!(check_topic_filter(bad), Err(CodecError::TopicFilter(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn utf8_rules() {
        assert_eq!(check_utf8(b"ok", "s"), Ok("ok"));
        assert!(check_utf8(&[0xFF], "s").is_err());
        assert!(check_utf8(b"a\0", "s").is_err());
        assert!(check_no_nul("a\0", "s").is_err());
    }
}
