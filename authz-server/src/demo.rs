//! Dev mode's demo data, seeded at start when missing: the demo user (password in
//! `data_dir/demo-password`, 0600, created once; no email address) and the demo clients, each
//! allowed the scopes its part of the demo needs — the Wire app the identity scopes (among them
//! the `openid email profile` OIDC libraries ask for by default, and `offline_access`) and the
//! device scope, the third-party web app the OpenID Connect scopes only, the two services `api`
//! for client credentials.

use proto::secret::SecretString;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::oauth_clients::{self, OAuthClient};
use crate::store::Store;
use crate::users::{self, NewUser};

/// The handle of the demo user seeded in dev mode.
pub const DEMO_HANDLE: &str = "alice_wire";
/// The OAuth client id seeded in dev mode.
pub const DEMO_CLIENT_ID: &str = "wireapp";
/// The confidential demo client seeded in dev mode (secret in `data_dir/demo-service-secret`).
pub const DEMO_SERVICE_ID: &str = "demo-service";
/// A confidential client authenticating with `private_key_jwt`, seeded in dev mode (its ES256
/// private key in `data_dir/demo-jwt-service-key.der`; the key's thumbprint is its `kid`).
pub const DEMO_JWT_SERVICE_ID: &str = "demo-jwt-service";
/// A third-party public client seeded in dev mode (its users see the consent page).
pub const DEMO_WEBAPP_ID: &str = "demo-webapp";
/// The redirect URI of the demo client (any loopback port matches, RFC 8252 §7.3).
pub const DEMO_REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// Adds the client `id` as `make` describes it (which may write its credentials), unless it
/// exists.
fn seed_client(
    store: &dyn Store,
    id: &str,
    make: impl FnOnce(OAuthClient) -> Result<OAuthClient>,
) -> Result<()> {
    if oauth_clients::get(store, id)?.is_some() {
        return Ok(());
    }
    let public_first_party = OAuthClient {
        id: id.to_owned(),
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        secret_sha256: None,
        consent_required: false,
        jwks: None,
        scopes: None,
        post_logout_redirect_uris: Vec::new(),
        token_exchange: Vec::new(),
        remote_auth: Vec::new(),
        jwt_bearer: Vec::new(),
    };
    oauth_clients::add(store, &make(public_first_party)?)
}

fn scopes(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| (*s).to_owned()).collect())
}

/// Seeds whatever of the demo data is missing.
pub fn seed(store: &dyn Store, config: &Config) -> Result<()> {
    let device_scope = config.device_access.scope.as_str();
    seed_client(store, DEMO_CLIENT_ID, |client| {
        Ok(OAuthClient {
            scopes: scopes(&[
                "openid",
                "profile",
                "email",
                "offline_access",
                "wire_client_id",
                device_scope,
            ]),
            ..client
        })
    })?;
    seed_client(store, DEMO_WEBAPP_ID, |client| {
        Ok(OAuthClient {
            consent_required: true,
            scopes: scopes(&["openid", "profile", "email", "offline_access"]),
            ..client
        })
    })?;
    seed_client(store, DEMO_SERVICE_ID, |client| {
        let (secret, digest) = oauth_clients::new_secret();
        server_kit::files::write_private(
            &config.data_dir.join("demo-service-secret"),
            secret.expose().as_bytes(),
        )?;
        Ok(OAuthClient {
            secret_sha256: Some(digest),
            scopes: scopes(&["api"]),
            ..client
        })
    })?;
    seed_client(store, DEMO_JWT_SERVICE_ID, |client| {
        let key = proto::jws::SigningKey::generate(proto::jws::Algorithm::Es256)
            .map_err(|e| Error::Config(e.to_string()))?;
        server_kit::files::write_private(
            &config.data_dir.join("demo-jwt-service-key.der"),
            key.pkcs8_der().expose(),
        )?;
        let mut jwk = key.public_jwk().clone();
        jwk.kid = Some(key.public_jwk().thumbprint());
        Ok(OAuthClient {
            redirect_uris: Vec::new(),
            jwks: Some(proto::jwk::JwkSet { keys: vec![jwk] }.to_json()),
            scopes: scopes(&["api"]),
            ..client
        })
    })?;
    if users::by_handle(store, DEMO_HANDLE)?.is_none() {
        let password = demo_password(config)?;
        users::add(
            store,
            &NewUser {
                handle: DEMO_HANDLE,
                name: "Alice Smith",
                team: Some("wire"),
                domain: &config.domain,
                password: &password,
            },
        )?;
        tracing::info!(
            handle = DEMO_HANDLE,
            "seeded the demo user; its password is in demo-password"
        );
    }
    Ok(())
}

/// The demo user's password, created on first use.
pub fn demo_password(config: &Config) -> Result<SecretString> {
    let path = config.data_dir.join("demo-password");
    if path.exists() {
        let bytes = server_kit::files::read_private(&path)?;
        return Ok(SecretString::new(
            String::from_utf8_lossy(&bytes).trim().to_owned(),
        ));
    }
    let password = proto::random::token(96);
    server_kit::files::write_private(&path, password.as_bytes())?;
    Ok(SecretString::new(password))
}
