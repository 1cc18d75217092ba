//! Users of the backend (handle, display name, team, domain, and an email address only when an
//! operator recorded one) with argon2id password hashes, and the public OAuth clients devices
//! log in with. Operator commands and the login page use this module; nothing else touches these
//! records.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use proto::secret::SecretString;
use proto::wire_id::HandleUri;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{Store, trees};

/// A stored user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// UUID (hyphenated); the `sub` of the user's tokens.
    pub id: String,
    /// Handle, without `@`.
    pub handle: String,
    /// Display name.
    pub name: String,
    /// Team, if any.
    pub team: Option<String>,
    /// Wire domain.
    pub domain: String,
    /// The email address an operator recorded (`user add --email`, `user set-email`); none by
    /// default: a Wire handle is not an email address, and none is made up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// argon2id PHC string.
    password_hash: String,
}

/// A user's email address and whether the operator verified that the user receives mail there
/// (`email_verified`, OIDC Core §5.1); unverified unless the operator says so.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Email {
    /// The address (`local@domain`).
    pub address: String,
    /// Whether the operator verified it.
    pub verified: bool,
}

impl Email {
    /// An address as an operator typed it: one `@` between a non-empty local part and domain,
    /// no spaces or control characters, at most 254 bytes (RFC 5321 §4.5.3.1.3).
    pub fn new(address: &str, verified: bool) -> Result<Self> {
        let refuse = || Error::invalid_request(format!("{address:?} is not an email address"));
        let (local, domain) = address.split_once('@').ok_or_else(refuse)?;
        let plain = |part: &str| {
            !part.is_empty() && !part.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if address.len() > 254 || !plain(local) || !plain(domain) || domain.contains('@') {
            return Err(refuse());
        }
        Ok(Self {
            address: address.to_owned(),
            verified,
        })
    }
}

impl User {
    /// The handle URI.
    pub fn handle_uri(&self) -> Result<HandleUri> {
        HandleUri::new(&self.handle, &self.domain).map_err(|e| Error::Internal(e.to_string()))
    }

    /// The UUID bytes.
    pub fn id_bytes(&self) -> Result<[u8; 16]> {
        proto::wire_id::parse_uuid(&self.id)
            .ok_or_else(|| Error::Storage("user id is not a UUID".into()))
    }
}

/// What an operator supplies to create a user.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Handle (`[a-z0-9_.-]`, 2–256).
    pub handle: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Team.
    pub team: Option<&'a str>,
    /// Domain.
    pub domain: &'a str,
    /// Password.
    pub password: &'a SecretString,
}

/// Creates a user without an email address. The handle must be free; an index entry left by an
/// interrupted earlier attempt (no user record behind it) is taken over.
pub fn add(store: &dyn Store, new: &NewUser<'_>) -> Result<User> {
    add_with_email(store, new, None)
}

/// [`add`] with the email address an operator recorded for the user.
pub fn add_with_email(store: &dyn Store, new: &NewUser<'_>, email: Option<Email>) -> Result<User> {
    HandleUri::new(new.handle, new.domain).map_err(|e| Error::invalid_request(e.to_string()))?;
    if new.name.trim().is_empty() {
        return Err(Error::invalid_request("the display name is empty"));
    }
    if new.password.expose().len() < 8 {
        return Err(Error::invalid_request(
            "the password must have at least 8 characters",
        ));
    }
    let user = User {
        id: proto::random::uuid_v4(),
        handle: new.handle.to_owned(),
        name: new.name.to_owned(),
        team: new.team.map(str::to_owned),
        domain: new.domain.to_owned(),
        email,
        password_hash: hash_password(new.password)?,
    };
    let id_json = crate::store::encode(&user.id)?;
    if !store.compare_and_swap(trees::HANDLES, &user.handle, None, Some(&id_json))? {
        let existing = store.get(trees::HANDLES, &user.handle)?;
        let dangling = match existing.as_deref().map(serde_json::from_slice::<String>) {
            Some(Ok(id)) => store.get(trees::USERS, &id)?.is_none(),
            _ => true,
        };
        if !dangling
            || !store.compare_and_swap(
                trees::HANDLES,
                &user.handle,
                existing.as_deref(),
                Some(&id_json),
            )?
        {
            return Err(Error::Wire {
                status: axum::http::StatusCode::CONFLICT,
                label: "handle-exists",
                message: format!("the handle {} is taken", user.handle),
            });
        }
    }
    store.put_json(trees::USERS, &user.id, &user)?;
    store.flush()?;
    Ok(user)
}

/// Records (or with `None` removes) a user's email address; false if there is no such user.
/// Tokens already issued keep the claims they carry until they expire.
pub fn set_email(store: &dyn Store, handle: &str, email: Option<Email>) -> Result<bool> {
    let Some(id) = store.get_json::<String>(trees::HANDLES, handle)? else {
        return Ok(false);
    };
    let Some(stored) = store.get_versioned::<User>(trees::USERS, &id)? else {
        return Ok(false);
    };
    let mut user = stored.value.clone();
    user.email = email;
    if !store.replace_json(trees::USERS, &id, &stored, &user)? {
        return Err(Error::Storage(
            "the user changed while its email was set; try again".into(),
        ));
    }
    store.flush()?;
    Ok(true)
}

/// Looks a user up by id.
pub fn get(store: &dyn Store, id: &str) -> Result<Option<User>> {
    Ok(store.get_json(trees::USERS, id)?)
}

/// Looks a user up by handle.
pub fn by_handle(store: &dyn Store, handle: &str) -> Result<Option<User>> {
    match store.get_json::<String>(trees::HANDLES, handle)? {
        Some(id) => get(store, &id),
        None => Ok(None),
    }
}

/// All users, by id.
pub fn list(store: &dyn Store) -> Result<Vec<User>> {
    Ok(store.scan_json(trees::USERS, "")?)
}

/// Removes a user (and its handle); false if there was none.
pub fn remove(store: &dyn Store, handle: &str) -> Result<bool> {
    let Some(user) = by_handle(store, handle)? else {
        return Ok(false);
    };
    store.take(trees::USERS, &user.id)?;
    store.take(trees::HANDLES, handle)?;
    for (key, _) in store.scan_prefix(trees::DEVICES, &format!("{}/", user.id))? {
        store.take(trees::DEVICES, &key)?;
    }
    store.flush()?;
    Ok(true)
}

/// Checks a login. Runs the hash even for unknown handles so timing does not reveal which
/// handles exist.
pub fn authenticate(store: &dyn Store, handle: &str, password: &SecretString) -> Result<User> {
    let user = by_handle(store, handle)?;
    let hash = user
        .as_ref()
        .map_or(DUMMY_HASH, |u| u.password_hash.as_str());
    let ok = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    match user {
        Some(user) if ok => Ok(user),
        _ => Err(Error::BadCredentials),
    }
}

/// argon2id hash of the password "dummy password" with default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2rR9tOaFz0GkVAh2dcaQW5eRl4Qpbhw4cP+0K0Ef9oE";

fn hash_password(password: &SecretString) -> Result<String> {
    let salt = SaltString::encode_b64(&proto::random::bytes(16))
        .map_err(|e| Error::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(e.to_string()))
}

/// A registered OAuth client: public (no secret) or confidential (a generated secret, stored
/// as its SHA-256 — the secret has 256 random bits, so no slow hash is needed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthClient {
    /// `client_id`.
    pub id: String,
    /// Exact redirect URIs; loopback IP redirects match on any port (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// base64url SHA-256 of the client secret, for confidential clients.
    #[serde(default)]
    pub secret_sha256: Option<String>,
    /// A third-party client: users see a consent page before it gets a code.
    #[serde(default)]
    pub consent_required: bool,
    /// Public keys (a JWK Set) for `private_key_jwt` client authentication (RFC 7523).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// The scopes the client may be granted; `None` (records from before the lists existed,
    /// or `client add` without `--scope`) means [`crate::scopes::default_for`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// A fresh client secret and the digest stored for it.
pub fn new_client_secret() -> (SecretString, String) {
    let secret = proto::random::token(256);
    let digest = secret_digest(&secret);
    (SecretString::new(secret), digest)
}

fn secret_digest(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    proto::b64::encode(Sha256::digest(secret.as_bytes()))
}

impl OAuthClient {
    /// Whether the client must authenticate (a secret or a key).
    pub fn is_confidential(&self) -> bool {
        self.secret_sha256.is_some() || self.jwks.is_some()
    }

    /// Checks a presented secret in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        self.secret_sha256.as_ref().is_some_and(|stored| {
            proto::secret::constant_time_eq(stored.as_bytes(), secret_digest(presented).as_bytes())
        })
    }

    /// A first-party client: registered without `--third-party`, so users are not asked for
    /// consent.
    pub fn is_first_party(&self) -> bool {
        !self.consent_required
    }

    /// The scopes the client may be granted, with `device_scope` the configured device scope.
    pub fn allowed_scopes(&self, device_scope: &str) -> Vec<String> {
        self.scopes
            .clone()
            .unwrap_or_else(|| crate::scopes::default_for(self.is_first_party(), device_scope))
    }

    /// Whether `uri` is one of the registered redirect URIs.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| r == uri || loopback_match(r, uri))
    }
}

fn loopback_match(registered: &str, presented: &str) -> bool {
    let (Ok(mut r), Ok(mut p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = matches!(r.host_str(), Some("127.0.0.1") | Some("[::1]"));
    if !loopback || r.scheme() != "http" {
        return false;
    }
    let (_, _) = (r.set_port(None), p.set_port(None));
    r == p
}

/// Registers (or replaces) a client.
pub fn add_client(store: &dyn Store, client: &OAuthClient) -> Result<()> {
    if client.id.is_empty() || (client.redirect_uris.is_empty() && !client.is_confidential()) {
        return Err(Error::invalid_request(
            "a client needs an id, and a public client at least one redirect URI",
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
    for uri in &client.redirect_uris {
        let parsed = url::Url::parse(uri)
            .map_err(|_| Error::invalid_request(format!("bad redirect URI {uri}")))?;
        if parsed.fragment().is_some() {
            return Err(Error::invalid_request(
                "redirect URIs must not have a fragment",
            ));
        }
    }
    store.put_json(trees::CLIENTS, &client.id, client)?;
    Ok(store.flush()?)
}

/// Replaces the scopes a client may be granted (`None`: the default); false if there is no
/// such client. Tokens already issued keep their scope until they expire.
pub fn set_client_scopes(store: &dyn Store, id: &str, scopes: Option<Vec<String>>) -> Result<bool> {
    let Some(mut client) = client(store, id)? else {
        return Ok(false);
    };
    client.scopes = scopes;
    add_client(store, &client)?;
    Ok(true)
}

/// Looks a client up.
pub fn client(store: &dyn Store, id: &str) -> Result<Option<OAuthClient>> {
    Ok(store.get_json(trees::CLIENTS, id)?)
}

/// All clients.
pub fn list_clients(store: &dyn Store) -> Result<Vec<OAuthClient>> {
    Ok(store.scan_json(trees::CLIENTS, "")?)
}

/// Removes a client; false if there was none.
pub fn remove_client(store: &dyn Store, id: &str) -> Result<bool> {
    let existed = store.take(trees::CLIENTS, id)?.is_some();
    store.flush()?;
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn store() -> (tempfile::TempDir, Box<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Box::new(SledStore::open(dir.path()).unwrap());
        (dir, store)
    }

    #[test]
    fn add_authenticate_and_refuse_duplicates() {
        let (_d, store) = store();
        let pw = SecretString::new("correct horse");
        let new = NewUser {
            handle: "alice_wire",
            name: "Alice Smith",
            team: Some("wire"),
            domain: "wire.com",
            password: &pw,
        };
        let user = add(store.as_ref(), &new).unwrap();
        assert_eq!(
            authenticate(store.as_ref(), "alice_wire", &pw).unwrap(),
            user
        );
        assert!(matches!(
            authenticate(
                store.as_ref(),
                "alice_wire",
                &SecretString::new("wrong horse")
            ),
            Err(Error::BadCredentials)
        ));
        assert!(matches!(
            authenticate(store.as_ref(), "nobody", &pw),
            Err(Error::BadCredentials)
        ));
        assert!(matches!(
            add(store.as_ref(), &new),
            Err(Error::Wire {
                label: "handle-exists",
                ..
            })
        ));
        assert!(!format!("{user:?}").contains("correct horse"));
        assert!(remove(store.as_ref(), "alice_wire").unwrap());
        assert!(by_handle(store.as_ref(), "alice_wire").unwrap().is_none());
    }

    #[test]
    fn email_addresses_are_recorded_only_when_given_and_well_formed() {
        let (_d, store) = store();
        let pw = SecretString::new("password1");
        let new = NewUser {
            handle: "carol",
            name: "Carol",
            team: None,
            domain: "wire.com",
            password: &pw,
        };
        assert_eq!(add(store.as_ref(), &new).unwrap().email, None);
        let email = Email::new("carol@example.com", true).unwrap();
        assert!(set_email(store.as_ref(), "carol", Some(email.clone())).unwrap());
        let user = by_handle(store.as_ref(), "carol").unwrap().unwrap();
        assert_eq!(user.email, Some(email));
        assert!(!set_email(store.as_ref(), "nobody", None).unwrap());
        for bad in [
            "",
            "carol",
            "@example.com",
            "carol@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(Email::new(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dangling_handle_index_is_taken_over() {
        let (_d, store) = store();
        store
            .put_json(trees::HANDLES, "bob", &"missing-id".to_owned())
            .unwrap();
        let pw = SecretString::new("password1");
        let new = NewUser {
            handle: "bob",
            name: "Bob",
            team: None,
            domain: "wire.com",
            password: &pw,
        };
        let user = add(store.as_ref(), &new).unwrap();
        assert_eq!(
            by_handle(store.as_ref(), "bob").unwrap().unwrap().id,
            user.id
        );
    }

    #[test]
    fn redirect_matching_is_exact_except_loopback_port() {
        let c = OAuthClient {
            id: "c".into(),
            redirect_uris: vec![
                "http://127.0.0.1/cb".into(),
                "https://app.example/cb".into(),
            ],
            secret_sha256: None,
            consent_required: false,
            jwks: None,
            scopes: None,
        };
        assert!(c.allows_redirect("http://127.0.0.1:53211/cb"));
        assert!(c.allows_redirect("https://app.example/cb"));
        assert!(!c.allows_redirect("https://app.example/cb/"));
        assert!(!c.allows_redirect("https://app.example:444/cb"));
        assert!(!c.allows_redirect("http://127.0.0.1:5000/other"));
    }
}
