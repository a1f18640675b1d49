//! One file per group of routes: `health` (`/healthz`, `/readyz`), `metrics` (`/metrics`),
//! `status` (`/cluster/status`), `membership` (learners, voters, node removal).

pub mod health;
pub mod membership;
pub mod metrics;
pub mod status;
