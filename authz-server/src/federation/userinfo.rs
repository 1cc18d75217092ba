//! The upstream's user-info endpoint (OpenID Connect Core §5.3, or a GitHub-style `/user`):
//! a GET with the login's access token as `Authorization: Bearer`, the answer read with a
//! bound ([`super::MAX_UPSTREAM_BODY`]) and taken only as a JSON object (a signed or encrypted
//! userinfo JWT is not read).

use serde_json::{Map, Value};

use super::Upstream;
use super::token::without_url;
use crate::error::{Error, Result};

/// What this server says it is to upstream APIs that want a `User-Agent` (GitHub's does).
const USER_AGENT: &str = concat!("e2ei-authz-server/", env!("CARGO_PKG_VERSION"));

impl Upstream {
    /// The JSON object `endpoint` answers for `access_token`.
    pub async fn userinfo(&self, endpoint: &str, access_token: &str) -> Result<Map<String, Value>> {
        let name = &self.config.display_name;
        let response = self
            .http()
            .get(endpoint)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .header("user-agent", USER_AGENT)
            .send()
            .await
            .map_err(|e| {
                Error::upstream_unavailable(format!(
                    "the identity provider {name}'s user info could not be read: {}",
                    without_url(&e)
                ))
            })?;
        let status = response.status();
        let body = server_kit::fetch::read_body(response, super::MAX_UPSTREAM_BODY)
            .await
            .map_err(|e| {
                Error::upstream_unavailable(format!(
                    "the identity provider {name}'s user info: {e}"
                ))
            })?;
        if !status.is_success() {
            return Err(Error::upstream_denied(format!(
                "the identity provider {name} refused to give the user's info ({status})"
            )));
        }
        serde_json::from_slice(&body).map_err(|_| {
            Error::upstream_unavailable(format!(
                "the identity provider {name}'s user info is not a JSON object"
            ))
        })
    }
}
