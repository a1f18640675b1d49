//! `POST /auth/reload`: read the password and ACL files again, as SIGHUP does. Only this
//! node's files: each node reads its own.

use axum::extract::State;
use axum::Json;
use tracing::{info, warn};

use crate::admin::auth::Authorized;
use crate::admin::{ApiError, AppState};
use crate::auth::Loaded;

pub async fn reload(_: Authorized, State(s): State<AppState>) -> Result<Json<Loaded>, ApiError> {
    match s.auth.reload() {
        Ok(loaded) => {
            info!("admin API: password and ACL files reloaded");
            Ok(Json(loaded))
        }
        Err(e) => {
            warn!(error = %e, "admin API: reload failed; the previous files stay in force");
            Err(ApiError::InvalidFile(format!(
                "{e}; the previous files stay in force"
            )))
        }
    }
}
