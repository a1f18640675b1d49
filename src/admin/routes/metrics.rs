//! `GET /metrics`: the Prometheus exposition (`crate::exporter`), OpenMetrics text. Open,
//! like Prometheus scrape targets usually are: it names no client, topic or secret.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::admin::{ApiError, AppState};
use crate::exporter;

pub async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = s
        .exporter
        .encode()
        .map_err(|_| ApiError::Unavailable("cannot encode the metrics".into()))?;
    Ok(([(CONTENT_TYPE, exporter::CONTENT_TYPE)], text))
}
