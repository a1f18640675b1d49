//! The subscription index: a trie over filter levels, so a publish visits only the branches
//! its topic can match instead of every session. Derived from the sessions' subscriptions and
//! rebuilt on load, never serialized. Children are looked up, never iterated, so the
//! `HashMap` cannot make anything depend on hash order.

use std::collections::{BTreeMap, HashMap};

use crate::ids::ClientId;
use crate::message::SubOptions;

use super::topic::Filter;

/// Members of one shared group: client -> its options.
pub(crate) type Group = BTreeMap<ClientId, SubOptions>;

/// The subscriptions whose filter ends at one place in the trie.
#[derive(Debug, Default)]
pub(crate) struct Leaf {
    pub normal: BTreeMap<ClientId, SubOptions>,
    /// Keyed by the whole `$share/<group>/<filter>`: a group's identity and its counter key.
    pub shared: BTreeMap<String, Group>,
}

impl Leaf {
    fn is_empty(&self) -> bool {
        self.normal.is_empty() && self.shared.is_empty()
    }
}

/// What removing a subscription from the trie did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    NotFound,
    Found,
    /// It was the last member of its shared group, which is gone now.
    LastOfGroup,
}

#[derive(Debug, Default)]
struct Node {
    literal: HashMap<Box<str>, Node>,
    plus: Option<Box<Node>>,
    /// Filters ending at this node.
    exact: Leaf,
    /// Filters ending with `#` after this node (which also match this node's own topic).
    hash: Leaf,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.plus.is_none()
            && self.exact.is_empty()
            && self.hash.is_empty()
    }

    /// The leaf a filter's levels end in, creating nodes on the way.
    fn leaf_mut<'b>(&mut self, mut levels: impl Iterator<Item = &'b str>) -> &mut Leaf {
        let mut node = self;
        loop {
            match levels.next() {
                None => return &mut node.exact,
                Some("#") => return &mut node.hash,
                Some("+") => node = node.plus.get_or_insert_with(Box::default),
                Some(level) => node = node.literal.entry(level.into()).or_default(),
            }
        }
    }

    /// Removes one subscription and prunes nodes left empty.
    fn remove<'b>(
        &mut self,
        mut levels: impl Iterator<Item = &'b str>,
        full: &str,
        filter: &Filter<'_>,
        client: &ClientId,
    ) -> Removal {
        let take = |leaf: &mut Leaf| {
            let Some(_) = filter.share else {
                return match leaf.normal.remove(client) {
                    Some(_) => Removal::Found,
                    None => Removal::NotFound,
                };
            };
            let Some(group) = leaf.shared.get_mut(full) else {
                return Removal::NotFound;
            };
            if group.remove(client).is_none() {
                return Removal::NotFound;
            }
            if !group.is_empty() {
                return Removal::Found;
            }
            leaf.shared.remove(full);
            Removal::LastOfGroup
        };
        match levels.next() {
            None => take(&mut self.exact),
            Some("#") => take(&mut self.hash),
            Some("+") => match self.plus.as_mut() {
                Some(child) => {
                    let removed = child.remove(levels, full, filter, client);
                    if child.is_empty() {
                        self.plus = None;
                    }
                    removed
                }
                None => Removal::NotFound,
            },
            Some(level) => match self.literal.get_mut(level) {
                Some(child) => {
                    let removed = child.remove(levels, full, filter, client);
                    if child.is_empty() {
                        self.literal.remove(level);
                    }
                    removed
                }
                None => Removal::NotFound,
            },
        }
    }

    fn visit<'a, 'b, F>(
        &'a self,
        mut rest: std::str::Split<'b, char>,
        first: bool,
        dollar: bool,
        f: &mut F,
    ) where
        F: FnMut(&'a Leaf),
    {
        // A wildcard in the first level never matches a `$` topic (MQTT 4.7.2).
        let wild = !(first && dollar);
        if wild {
            f(&self.hash);
        }
        match rest.next() {
            None => f(&self.exact),
            Some(level) => {
                if let Some(child) = self.literal.get(level) {
                    child.visit(rest.clone(), false, dollar, f);
                }
                if let (true, Some(child)) = (wild, self.plus.as_deref()) {
                    child.visit(rest, false, dollar, f);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct SubTrie {
    root: Node,
}

impl SubTrie {
    /// Adds or replaces `client`'s subscription; `full` is the filter as subscribed.
    pub fn insert(
        &mut self,
        client: &ClientId,
        full: &str,
        filter: &Filter<'_>,
        options: &SubOptions,
    ) {
        let leaf = self.root.leaf_mut(filter.filter.split('/'));
        let members = match filter.share {
            None => &mut leaf.normal,
            Some(_) => leaf.shared.entry(full.to_owned()).or_default(),
        };
        members.insert(client.clone(), options.clone());
    }

    pub fn remove(&mut self, client: &ClientId, full: &str, filter: &Filter<'_>) -> Removal {
        self.root
            .remove(filter.filter.split('/'), full, filter, client)
    }

    /// Calls `f` with every leaf whose filter matches `topic`, in a fixed order (the same
    /// trie shape always gives the same order).
    pub fn for_each_match<'a, F>(&'a self, topic: &str, mut f: F)
    where
        F: FnMut(&'a Leaf),
    {
        self.root
            .visit(topic.split('/'), true, topic.starts_with('$'), &mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::super::topic::parse_filter;
    use super::*;

    fn trie(subs: &[(&str, &str)]) -> SubTrie {
        let mut t = SubTrie::default();
        for (client, f) in subs {
            let filter = parse_filter(f).expect("valid");
            t.insert(&ClientId::from(*client), f, &filter, &SubOptions::default());
        }
        t
    }

    fn matched(t: &SubTrie, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        t.for_each_match(topic, |leaf| {
            out.extend(leaf.normal.keys().map(|c| c.0.clone()));
            out.extend(leaf.shared.keys().cloned());
        });
        out.sort();
        out
    }

    #[test]
    fn matches_wildcards_and_dollar() {
        let t = trie(&[
            ("a", "#"),
            ("b", "x/+"),
            ("c", "x/#"),
            ("d", "$SYS/#"),
            ("e", "+/y"),
            ("f", "$share/g/x/y"),
        ]);
        assert_eq!(matched(&t, "x/y"), ["$share/g/x/y", "a", "b", "c", "e"]);
        assert_eq!(matched(&t, "x"), ["a", "c"]);
        assert_eq!(matched(&t, "$SYS/y"), ["d"]);
        assert_eq!(matched(&t, "q"), ["a"]);
    }

    #[test]
    fn remove_prunes() {
        let mut t = trie(&[("a", "x/+/z"), ("a", "$share/g/x/#")]);
        let a = ClientId::from("a");
        let b = ClientId::from("b");
        let shared = "$share/g/x/#";
        let filter = parse_filter(shared).expect("valid");
        t.insert(&b, shared, &filter, &SubOptions::default());
        assert_eq!(t.remove(&a, shared, &filter), Removal::Found);
        assert_eq!(t.remove(&b, shared, &filter), Removal::LastOfGroup);
        assert_eq!(t.remove(&b, shared, &filter), Removal::NotFound);
        let filter = parse_filter("x/+/z").expect("valid");
        assert_eq!(t.remove(&a, "x/+/z", &filter), Removal::Found);
        assert_eq!(t.remove(&a, "x/+/z", &filter), Removal::NotFound);
        assert!(t.root.is_empty());
    }
}
