//! One file per group of routes: `health` (`/healthz`, `/readyz`), `metrics` (`/metrics`),
//! `status` (`/cluster/status`), `digest` (`/cluster/digest`), `membership` (learners, voters, node removal).

pub mod digest;
pub mod health;
pub mod membership;
pub mod metrics;
pub mod status;
