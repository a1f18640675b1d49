//! `ApiError`: every way an admin request can fail, and the answer each one gets. The body is
//! always JSON, `{"error": "<message>"}`, plus `"leader"` (an object, or null when no leader
//! is known) on the answers that send the caller elsewhere: a write to a follower (421) and
//! `/readyz` on a node that does not serve (503).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openraft::error::{ChangeMembershipError, ClientWriteError, ForwardToLeader, RaftError};
use raftmq_raft::{Member, NodeId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cluster::ClusterStatus;

/// Where the leader is, for a caller that asked the wrong node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    pub id: NodeId,
    /// Empty when the membership records no admin address for it.
    pub admin_addr: String,
    pub mqtt_addr: String,
}

impl LeaderHint {
    /// The leader named in `status`, with its addresses from the membership.
    pub fn from_status(status: &ClusterStatus) -> Option<LeaderHint> {
        let id = status.leader?;
        let member = status.member(id);
        Some(LeaderHint {
            id,
            admin_addr: member.map(|m| m.admin_addr.clone()).unwrap_or_default(),
            mqtt_addr: member.map(|m| m.mqtt_addr.clone()).unwrap_or_default(),
        })
    }
}

#[derive(Debug, Error)]
pub enum ApiError {
    /// 401: no credentials; the answer carries `WWW-Authenticate: Bearer`.
    #[error("missing bearer token: send the header `Authorization: Bearer <admin.token>`")]
    MissingToken,
    /// 403: credentials that are not the configured token.
    #[error("invalid admin token")]
    BadToken,
    /// 503: with no token configured nothing can be authorized.
    #[error(
        "admin.token is not set on this node, so cluster status and membership changes are \
         disabled; set admin.token (or RAFTMQ_ADMIN_TOKEN) and restart"
    )]
    NoToken,
    /// 400: malformed input; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// 415: a body that is not declared as JSON.
    #[error("{0}")]
    NotJson(String),
    /// 404: an unknown node id or route.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 421: a write sent to a node that is not the leader.
    #[error("{}", not_leader_message(.0.as_ref()))]
    NotLeader(Option<LeaderHint>),
    /// 409: a change refused as it stands (in progress, unsafe, already done otherwise).
    #[error("{0}")]
    Conflict(String),
    /// 503 from `/readyz`: why this node does not serve MQTT, and who does.
    #[error("{reason}")]
    NotReady {
        reason: String,
        leader: Option<LeaderHint>,
    },
    /// 422: a file the request made the node read does not parse (it keeps the old one).
    #[error("{0}")]
    InvalidFile(String),
    /// 503: the node cannot do it now (no quorum, Raft stopped).
    #[error("{0}")]
    Unavailable(String),
    /// 504: a Raft operation did not finish in time; it may still complete.
    #[error("{0}")]
    Timeout(String),
}

fn not_leader_message(leader: Option<&LeaderHint>) -> String {
    match leader {
        Some(l) if !l.admin_addr.is_empty() => format!(
            "not the leader: send it to node {} (admin API {})",
            l.id, l.admin_addr
        ),
        Some(l) => format!("not the leader: node {} is", l.id),
        None => "not the leader, and no leader is known (an election is in progress)".into(),
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken => StatusCode::UNAUTHORIZED,
            ApiError::BadToken => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotJson(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotLeader(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::InvalidFile(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NoToken | ApiError::NotReady { .. } | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.to_string() });
        let leader = match self {
            ApiError::NotLeader(l) | ApiError::NotReady { leader: l, .. } => l,
            _ => return body,
        };
        body["leader"] = serde_json::to_value(leader).unwrap_or(serde_json::Value::Null);
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        if matches!(self, ApiError::MissingToken) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"raftmq admin\""),
            );
        }
        response
    }
}

impl From<ForwardToLeader<NodeId, Member>> for ApiError {
    fn from(f: ForwardToLeader<NodeId, Member>) -> ApiError {
        ApiError::NotLeader(f.leader_id.map(|id| {
            LeaderHint {
                id,
                admin_addr: f
                    .leader_node
                    .as_ref()
                    .map(|m| m.admin_addr.clone())
                    .unwrap_or_default(),
                mqtt_addr: f
                    .leader_node
                    .as_ref()
                    .map(|m| m.mqtt_addr.clone())
                    .unwrap_or_default(),
            }
        }))
    }
}

impl From<RaftError<NodeId, ClientWriteError<NodeId, Member>>> for ApiError {
    fn from(e: RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> ApiError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => f.into(),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => match c {
                ChangeMembershipError::InProgress(p) => ApiError::Conflict(format!(
                    "another membership change is still in progress ({p}); retry once it is \
                     committed"
                )),
                ChangeMembershipError::EmptyMembership(_) => {
                    ApiError::BadRequest("the change would leave the cluster without voters".into())
                }
                ChangeMembershipError::LearnerNotFound(l) => ApiError::NotFound(l.to_string()),
            },
            RaftError::Fatal(f) => ApiError::Unavailable(format!("raft is not running: {f}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::error::{EmptyMembership, Fatal, InProgress, LearnerNotFound};

    use super::*;

    fn hint(id: u64) -> LeaderHint {
        LeaderHint {
            id: NodeId(id),
            admin_addr: format!("10.0.0.{id}:8081"),
            mqtt_addr: format!("10.0.0.{id}:1883"),
        }
    }

    #[test]
    fn every_error_has_its_status() {
        let cases = [
            (ApiError::MissingToken, 401),
            (ApiError::BadToken, 403),
            (ApiError::NoToken, 503),
            (ApiError::BadRequest("x".into()), 400),
            (ApiError::NotJson("x".into()), 415),
            (ApiError::NotFound("x".into()), 404),
            (ApiError::MethodNotAllowed, 405),
            (ApiError::NotLeader(None), 421),
            (ApiError::Conflict("x".into()), 409),
            (ApiError::InvalidFile("x".into()), 422),
            (
                ApiError::NotReady {
                    reason: "x".into(),
                    leader: None,
                },
                503,
            ),
            (ApiError::Unavailable("x".into()), 503),
            (ApiError::Timeout("x".into()), 504),
        ];
        for (e, status) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert!(e.body()["error"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }

    #[test]
    fn a_redirect_names_the_leader_or_null() {
        let body = ApiError::NotLeader(Some(hint(2))).body();
        assert_eq!(body["leader"]["id"], 2);
        assert_eq!(body["leader"]["admin_addr"], "10.0.0.2:8081");
        assert!(body["error"]
            .as_str()
            .unwrap()
            .starts_with("not the leader"));
        let body = ApiError::NotLeader(None).body();
        assert!(body["leader"].is_null() && body.get("leader").is_some());
        assert!(ApiError::BadToken.body().get("leader").is_none());
    }

    #[test]
    fn missing_credentials_ask_for_a_bearer_token() {
        let r = ApiError::MissingToken.into_response();
        let h = r.headers().get(header::WWW_AUTHENTICATE).unwrap();
        assert!(h.to_str().unwrap().starts_with("Bearer"));
        assert!(ApiError::BadToken
            .into_response()
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .is_none());
    }

    #[test]
    fn raft_errors_map_to_statuses() {
        let member = Member {
            raft_addr: "r:1".into(),
            mqtt_addr: "m:1".into(),
            admin_addr: "a:1".into(),
        };
        let forward = RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader {
            leader_id: Some(NodeId(3)),
            leader_node: Some(member),
        }));
        let e = ApiError::from(forward);
        assert_eq!(e.status(), StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(e.body()["leader"]["admin_addr"], "a:1");
        let change = |c: ChangeMembershipError<NodeId>| {
            ApiError::from(RaftError::APIError(
                ClientWriteError::ChangeMembershipError(c),
            ))
            .status()
        };
        let in_progress = InProgress {
            committed: None,
            membership_log_id: None,
        };
        assert_eq!(change(in_progress.into()), StatusCode::CONFLICT);
        assert_eq!(change(EmptyMembership {}.into()), StatusCode::BAD_REQUEST);
        assert_eq!(
            change(LearnerNotFound { node_id: NodeId(9) }.into()),
            StatusCode::NOT_FOUND
        );
        let fatal: RaftError<NodeId, ClientWriteError<NodeId, Member>> =
            RaftError::Fatal(Fatal::Stopped);
        assert_eq!(
            ApiError::from(fatal).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
