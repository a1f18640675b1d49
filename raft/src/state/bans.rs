//! Bans: `Op::Ban` / `Op::Unban`, expiry on `Tick`, lookups for the door. The expiry index is
//! derived and rebuilt on load, like the session timers.

use std::collections::BTreeSet;

use crate::ban::{Ban, BanTarget};
use crate::response::Reply;

use super::mirror::Key;
use super::State;

/// (until_ms, target) of every stored ban, soonest first.
#[derive(Debug, Default)]
pub(crate) struct BanExpiry(BTreeSet<(u64, BanTarget)>);

impl State {
    pub(super) fn ban(
        &mut self,
        target: &BanTarget,
        until_ms: u64,
        reason: &str,
        now_ms: u64,
    ) -> Reply {
        if until_ms <= now_ms {
            return Reply::Banned { stored: false };
        }
        let ban = Ban {
            since_ms: now_ms,
            until_ms,
            reason: reason.to_owned(),
        };
        if let Some(old) = self.bans.insert(target.clone(), ban) {
            self.ban_expiry.0.remove(&(old.until_ms, target.clone()));
        }
        self.ban_expiry.0.insert((until_ms, target.clone()));
        self.dirty.mark(Key::Ban(target.clone()));
        Reply::Banned { stored: true }
    }

    pub(super) fn unban(&mut self, target: &BanTarget) -> Reply {
        let existed = match self.bans.remove(target) {
            Some(old) => {
                self.ban_expiry.0.remove(&(old.until_ms, target.clone()));
                self.dirty.mark(Key::Ban(target.clone()));
                true
            }
            None => false,
        };
        Reply::Unbanned { existed }
    }

    /// Drops the bans that ran out by `now_ms` (from `Tick`).
    pub(super) fn expire_bans(&mut self, now_ms: u64) {
        while let Some((until, _)) = self.ban_expiry.0.first() {
            if *until > now_ms {
                return;
            }
            let Some((_, target)) = self.ban_expiry.0.pop_first() else {
                return;
            };
            self.bans.remove(&target);
            self.dirty.mark(Key::Ban(target));
        }
    }

    pub(super) fn rebuild_ban_expiry(&mut self) {
        self.ban_expiry.0 = self
            .bans
            .iter()
            .map(|(target, ban)| (ban.until_ms, target.clone()))
            .collect();
    }
}
