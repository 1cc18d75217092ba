//! OAuth clients — the applications users log in to and the services that call this server,
//! neither of them a user nor a Wire device: their registration by an operator (`authz-server
//! client …`), with its checks, and how a client proves who it is at the token, introspection
//! and revocation endpoints ([`authentication`]). The records are kept by
//! [`crate::store::oauth_clients`].

pub mod authentication;

use proto::secret::SecretString;

pub use crate::store::oauth_clients::{OAuthClient, get, list};

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::{self, Store};

impl Provider {
    /// The registered client with this id.
    pub fn oauth_client(&self, id: &str) -> Result<Option<OAuthClient>> {
        get(self.store(), id)
    }
}

/// Registers (or replaces) a client, durable on return.
pub fn add(store: &dyn Store, client: &OAuthClient) -> Result<()> {
    let redirects = !client.redirect_uris.is_empty() || !client.remote_auth.is_empty();
    if client.id.is_empty() || (!redirects && !client.is_confidential()) {
        return Err(Error::invalid_request(
            "a client needs an id, and a public client at least one redirect URI (or a remote \
             verifier)",
        ));
    }
    if let Some(bad) = client
        .scopes
        .iter()
        .flatten()
        .find(|s| !crate::scopes::is_scope_token(s))
    {
        return Err(Error::invalid_request(format!(
            "{bad:?} is not a scope (RFC 6749 §3.3: printable ASCII without space, \" or \\)"
        )));
    }
    if !client.token_exchange.is_empty() && !client.is_confidential() {
        return Err(Error::invalid_request(
            "only a confidential client may use token exchange",
        ));
    }
    if !client.jwt_bearer.is_empty() && !client.is_confidential() {
        return Err(Error::invalid_request(
            "only a confidential client may present JWT-bearer assertions",
        ));
    }
    if let Some(bad) = client
        .token_exchange
        .iter()
        .chain(&client.remote_auth)
        .chain(&client.jwt_bearer)
        .find(|u| !crate::federation::config::is_upstream_id(u))
    {
        return Err(Error::invalid_request(format!(
            "{bad:?} is not an upstream id, a verifier id or an issuer id ([a-z0-9_-], 1 to 32)"
        )));
    }
    for uri in client
        .redirect_uris
        .iter()
        .chain(&client.post_logout_redirect_uris)
    {
        let parsed = url::Url::parse(uri)
            .map_err(|_| Error::invalid_request(format!("bad redirect URI {uri}")))?;
        if parsed.fragment().is_some() {
            return Err(Error::invalid_request(
                "redirect URIs must not have a fragment",
            ));
        }
    }
    store::oauth_clients::put(store, client)?;
    store::flush(store)
}

/// Changes the client `id` with `change` and stores it with the checks of [`add`]; false if
/// there is no such client.
fn update(store: &dyn Store, id: &str, change: impl FnOnce(&mut OAuthClient)) -> Result<bool> {
    let Some(mut client) = get(store, id)? else {
        return Ok(false);
    };
    change(&mut client);
    add(store, &client)?;
    Ok(true)
}

/// Replaces the scopes a client may be granted (`None`: the default); false if there is no
/// such client. Tokens already issued keep their scope until they expire.
pub fn set_scopes(store: &dyn Store, id: &str, scopes: Option<Vec<String>>) -> Result<bool> {
    update(store, id, |client| client.scopes = scopes)
}

/// Replaces the upstreams whose kept tokens a client may get by token exchange (none: no
/// exchange); false if there is no such client.
pub fn set_token_exchange(store: &dyn Store, id: &str, upstreams: Vec<String>) -> Result<bool> {
    update(store, id, |client| client.token_exchange = upstreams)
}

/// Replaces the remote verifiers whose grant a client may use (none: no remote logins);
/// false if there is no such client.
pub fn set_remote_auth(store: &dyn Store, id: &str, verifiers: Vec<String>) -> Result<bool> {
    update(store, id, |client| client.remote_auth = verifiers)
}

/// Replaces the JWT-bearer issuers whose assertions a client may present (none: no such
/// grants); false if there is no such client.
pub fn set_jwt_bearer(store: &dyn Store, id: &str, issuers: Vec<String>) -> Result<bool> {
    update(store, id, |client| client.jwt_bearer = issuers)
}

/// Removes a client; false if there was none. Durable on return.
pub fn remove(store: &dyn Store, id: &str) -> Result<bool> {
    let existed = store::oauth_clients::remove(store, id)?;
    store::flush(store)?;
    Ok(existed)
}

/// A fresh client secret (256 random bits) and the digest stored for it.
pub fn new_secret() -> (SecretString, String) {
    let secret = proto::random::token(256);
    let digest = store::digest(&secret);
    (SecretString::new(secret), digest)
}
