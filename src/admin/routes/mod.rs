//! One file per group of routes: `health` (`/healthz`, `/readyz`), `metrics` (`/metrics`),
//! `status` (`/cluster/status`), `digest` (`/cluster/digest`), `membership` (learners,
//! voters, node removal), `page` (the status page at `/` and its JSON), `backup`
//! (`/cluster/backup`), `auth` (`/auth/reload`), `bans` (`/bans`).

pub mod auth;
pub mod backup;
pub mod bans;
pub mod digest;
pub mod health;
pub mod membership;
pub mod metrics;
pub mod page;
pub mod status;
