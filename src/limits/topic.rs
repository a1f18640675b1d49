//! Topic name and filter limits: length in bytes and number of levels.

use crate::config::Limits;

/// Why `topic` breaks a limit, if it does.
pub fn check_topic(topic: &str, limits: &Limits) -> Result<(), &'static str> {
    if topic.len() > limits.max_topic_length as usize {
        return Err("topic longer than limits.max_topic_length");
    }
    let levels = topic.bytes().filter(|b| *b == b'/').count() + 1;
    if levels > limits.max_topic_levels as usize {
        return Err("topic deeper than limits.max_topic_levels");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_levels() {
        let limits = Limits {
            max_topic_length: 8,
            max_topic_levels: 3,
            ..Limits::default()
        };
        assert!(check_topic("a/b/c", &limits).is_ok());
        assert!(check_topic("a/b/c/d", &limits).is_err());
        assert!(check_topic("abcdefghi", &limits).is_err());
    }
}
