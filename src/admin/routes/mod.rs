//! One file per group of routes: `health` (`/healthz`, `/readyz`), `metrics` (`/metrics`),
//! `status` (`/cluster/status`), `membership` (learners, voters, node removal), `auth` (`/auth/reload`),
//! `bans` (`/bans`).

pub mod auth;
pub mod bans;
pub mod health;
pub mod membership;
pub mod metrics;
pub mod status;
