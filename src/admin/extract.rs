//! Request extractors whose refusals are `ApiError`s, so a malformed body, query or path is
//! answered in the API's JSON error shape rather than axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use raftmq_raft::NodeId;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body: syntax and shape errors are 400 with serde's message (which names the
/// field), a body not declared `application/json` is 415.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::MissingJsonContentType(e)) => Err(ApiError::NotJson(e.body_text())),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Query parameters; a bad one is 400 naming it.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e: QueryRejection| ApiError::BadRequest(e.body_text()))
    }
}

/// A node id as written in a path or a body: a number from 1.
pub fn node_id(raw: &str) -> Result<NodeId, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .map(NodeId)
        .ok_or_else(|| {
            ApiError::BadRequest(format!("node id must be a number from 1, got {raw:?}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_positive_numbers() {
        assert_eq!(node_id("4").unwrap(), NodeId(4));
        for bad in ["0", "-1", "x", "", "1.5", "18446744073709551616"] {
            let e = node_id(bad).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{bad}");
        }
    }
}
