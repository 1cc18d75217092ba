//! The admin surface for roles and groups, a resource endpoint of our own that needs a role:
//! `GET /admin/users` lists the accounts (handle, name, roles, groups) and
//! `PUT /admin/users/{handle}/authorization` replaces one account's roles and groups. Both take
//! an access token of a first-party client with the `roles` scope whose `roles` claim holds
//! `admin` — checked with [`proto::resource::meets`], as any resource server would — and whose
//! user still has the role now (a role taken away counts at once). Otherwise 403
//! `insufficient_scope`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::{Value, json};

use super::SharedState;
use crate::error::{Error, Result};
use crate::tokens::resource::Requirement;

use crate::users::ADMIN_ROLE;

/// Who may call the admin surface (also its visa endpoints, [`super::visas`]).
pub(super) const REQUIREMENT: Requirement<'static> = Requirement {
    scope: crate::scopes::ROLES,
    first_party: true,
    what: "the admin endpoints",
    role: Some(ADMIN_ROLE),
};

/// `GET /admin/users`.
pub async fn users(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    super::access::authorized_at(&state, &headers, &method, "/admin/users", REQUIREMENT)?;
    let users: Vec<Value> = crate::users::list(state.store())?
        .into_iter()
        .map(|u| json!({"handle": u.handle, "name": u.name, "roles": u.roles, "groups": u.groups}))
        .collect();
    Ok(Json(json!({ "users": users })))
}

/// The body of `PUT /admin/users/{handle}/authorization`: each list given replaces the
/// account's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationChange {
    roles: Option<Vec<String>>,
    groups: Option<Vec<String>>,
}

/// `PUT /admin/users/{handle}/authorization`: the caller is checked before its body is read.
pub async fn set_authorization(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
    Path(handle): Path<String>,
    body: Bytes,
) -> Result<Json<Value>> {
    let path = format!("/admin/users/{handle}/authorization");
    let caller = super::access::authorized_at(&state, &headers, &method, &path, REQUIREMENT)?;
    let change: AuthorizationChange = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid_request(format!("the body: {e}")))?;
    let user = crate::users::set_authorization(
        state.store(),
        &handle,
        change.roles.as_deref(),
        change.groups.as_deref(),
    )?
    .ok_or_else(|| Error::not_found("no-user", format!("no user {handle}")))?;
    state.audit.record(
        state.now(),
        "user.authorization_set",
        json!({"user": user.id, "handle": user.handle, "roles": user.roles,
               "groups": user.groups, "by": caller.user.id}),
    );
    Ok(Json(
        json!({"handle": user.handle, "roles": user.roles, "groups": user.groups}),
    ))
}
