//! Bearer-token authorization for the admin API.
//!
//! The configured token is kept only as an HMAC tag, and a presented token is checked with
//! `ring::hmac::verify`, which compares in constant time. Comparing tags rather than the
//! strings also hides the token's length: a plain byte comparison would return early at the
//! first difference and let response timing reveal the token a byte at a time.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ring::hmac;

use super::error::ApiError;
use super::AppState;

pub struct AdminToken {
    key: hmac::Key,
    /// `None`: no token is configured and nothing can be authorized.
    expected: Option<hmac::Tag>,
}

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        // The key need not be secret: the tag is a fixed-size stand-in for the token, and
        // `verify` is what makes the comparison constant-time.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"raftmq admin token");
        let expected = (!token.is_empty()).then(|| hmac::sign(&key, token.as_bytes()));
        AdminToken { key, expected }
    }

    /// Whether `headers` carry `Authorization: Bearer <token>` with the configured token.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let expected = self.expected.as_ref().ok_or(ApiError::NoToken)?;
        let presented = bearer(headers).ok_or(ApiError::MissingToken)?;
        hmac::verify(&self.key, presented, expected.as_ref()).map_err(|_| ApiError::BadToken)
    }
}

/// The credentials of an `Authorization: Bearer ...` header (scheme case-insensitive, as in
/// RFC 7235); `None` without such a header.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.starts_with(b" ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Extractor for the routes that need the token; list it before any body extractor so an
/// unauthorized request is refused before its body is read.
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.token.check(&parts.headers).map(|()| Authorized)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn accepts_only_the_configured_token() {
        let t = AdminToken::new("s3cret");
        assert!(t.check(&with_auth("Bearer s3cret")).is_ok());
        assert!(t.check(&with_auth("bearer  s3cret ")).is_ok());
        for wrong in ["Bearer s3cre", "Bearer s3crett", "Bearer S3CRET"] {
            assert!(
                matches!(t.check(&with_auth(wrong)), Err(ApiError::BadToken)),
                "{wrong}"
            );
        }
    }

    #[test]
    fn missing_or_other_schemes_are_unauthenticated() {
        let t = AdminToken::new("s3cret");
        assert!(matches!(
            t.check(&HeaderMap::new()),
            Err(ApiError::MissingToken)
        ));
        for value in [
            "Basic czNjcmV0",
            "Bearer",
            "Bearer ",
            "Bearers3cret",
            "s3cret",
        ] {
            assert!(
                matches!(t.check(&with_auth(value)), Err(ApiError::MissingToken)),
                "{value}"
            );
        }
    }

    #[test]
    fn no_configured_token_authorizes_nothing() {
        let t = AdminToken::new("");
        assert!(matches!(
            t.check(&with_auth("Bearer ")),
            Err(ApiError::NoToken)
        ));
        assert!(matches!(
            t.check(&with_auth("Bearer x")),
            Err(ApiError::NoToken)
        ));
        assert!(matches!(t.check(&HeaderMap::new()), Err(ApiError::NoToken)));
    }
}
