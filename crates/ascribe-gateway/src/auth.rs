//! Bearer keys: who is asking, and whether their role may use the route.
//!
//! The key's name is the actor of every entry the request writes; nothing in the request
//! body can change it. The token itself is hashed by `ascribe_access` and never logged.

use ascribe_access::{KeyRecord, Role};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::state::AppState;

/// A request made with an active admin key.
pub(crate) struct Admin(KeyRecord);

impl Admin {
    /// The name recorded as the actor of the request's entries.
    pub(crate) fn actor(&self) -> &str {
        &self.0.name
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let key = authenticate(&parts.headers, state).await?;
        require_role(key, Role::Admin).map(Admin)
    }
}

/// The active key whose token the request carries.
async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<KeyRecord, ApiError> {
    let token = bearer_token(headers)?.to_owned();
    let key = state
        .read(move |backend| ascribe_access::authenticate(backend, &token))
        .await?
        .ok_or(ApiError::Unauthenticated("unknown or revoked key"))?;
    tracing::Span::current().record("actor", tracing::field::display(&key.name));
    Ok(key)
}

fn require_role(key: KeyRecord, role: Role) -> Result<KeyRecord, ApiError> {
    if key.role != role {
        return Err(ApiError::Forbidden(format!(
            "key `{}` has role {}; this route needs role {role}",
            key.name, key.role
        )));
    }
    Ok(key)
}

/// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or(ApiError::Unauthenticated(
        "missing `authorization: Bearer <token>` header",
    ))?;
    let value = value.to_str().unwrap_or("");
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthenticated(
            "the `authorization` header must be `Bearer <token>`",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read() {
        let cases = [
            (Some("Bearer asc_abc"), Some("asc_abc")),
            (Some("bearer  asc_abc "), Some("asc_abc")),
            (Some("Basic dXNlcg=="), None),
            (Some("Bearer"), None),
            (Some("Bearer "), None),
            (None, None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            }
            assert_eq!(bearer_token(&headers).ok(), expected, "{value:?}");
        }
    }
}
