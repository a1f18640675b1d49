//! Canonical snapshot bytes, and rebuilding what is derived (subscription trie, message
//! reference counts, timers) after loading from a snapshot or the mirror.
//!
//! Canonical because everything serialized is ordered (`BTreeMap`, `BTreeSet`, `VecDeque` in
//! a fixed order) and bincode has one encoding per value: the same state gives the same bytes.

use crate::error::RaftError;

use super::topic::parse_filter;
use super::State;

/// Bumped when the serialized layout changes, so old bytes are refused, not misread.
const FORMAT: u8 = 2;

fn corrupt(what: &'static str, detail: String) -> RaftError {
    RaftError::Corrupt { what, detail }
}

impl State {
    pub(super) fn snapshot_bytes(&self) -> Result<Vec<u8>, RaftError> {
        bincode::serde::encode_to_vec((FORMAT, self), bincode::config::standard()).map_err(|e| {
            RaftError::Encode {
                what: "snapshot",
                detail: e.to_string(),
            }
        })
    }

    pub(super) fn load_snapshot(bytes: &[u8]) -> Result<State, RaftError> {
        let ((format, mut state), used): ((u8, State), usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                .map_err(|e| corrupt("snapshot", e.to_string()))?;
        if format != FORMAT {
            return Err(corrupt(
                "snapshot",
                format!("format {format}, expected {FORMAT}"),
            ));
        }
        if used != bytes.len() {
            return Err(corrupt(
                "snapshot",
                format!("{} trailing bytes", bytes.len() - used),
            ));
        }
        state.rebuild()?;
        Ok(state)
    }

    /// Rebuilds the derived parts and checks that loaded messages and their holders agree.
    pub(super) fn rebuild(&mut self) -> Result<(), RaftError> {
        self.trie = Default::default();
        for (client, s) in &self.sessions {
            for (full, options) in &s.subscriptions {
                let filter = parse_filter(full).ok_or_else(|| {
                    corrupt("state", format!("invalid filter {full:?} of {client}"))
                })?;
                self.trie.insert(client, full, &filter, options);
            }
        }
        for s in self.sessions.values_mut() {
            s.recount_queued_bytes();
        }
        self.timers.rebuild(&self.sessions);
        self.rebuild_ban_expiry();
        let held = self.sessions.values().flat_map(|s| s.held_messages());
        self.store
            .rebuild(held.chain(self.retained.values().copied()));
        match self.store.inconsistency() {
            Some(id) => Err(corrupt(
                "state",
                format!("message {id} stored or held without the other"),
            )),
            None => Ok(()),
        }
    }
}
