//! User accounts: what an operator adds, changes and removes (`authz-server user …`), and the
//! password check behind every login. The records are kept by [`crate::store::users`]; who a
//! user is to a grant or a token is decided in [`crate::identity`].

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use proto::secret::SecretString;
use proto::wire_id::HandleUri;

pub use crate::store::users::{Email, User, by_handle, list};

use crate::error::{Error, Result};
use crate::store::{self, Store};

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
/// interrupted earlier attempt (no user record behind it) is taken over. Durable on return.
pub fn add(store: &dyn Store, new: &NewUser<'_>) -> Result<User> {
    add_with_email(store, new, None)
}

/// [`add`] with the email address an operator recorded for the user.
pub fn add_with_email(store: &dyn Store, new: &NewUser<'_>, email: Option<Email>) -> Result<User> {
    HandleUri::new(new.handle, new.domain).map_err(|e| Error::invalid_request(e.to_string()))?;
    check_names(new.name, new.team)?;
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
        roles: Vec::new(),
        groups: Vec::new(),
    };
    store::users::insert(store, &user)?;
    store::flush(store)?;
    Ok(user)
}

/// The record of an account that logs in only through an upstream identity provider
/// ([`crate::federation`]): the same checks on handle and name as [`add`], and no password
/// (the empty hash matches none, so a password login as this user always fails). Not stored.
pub fn passwordless(
    handle: &str,
    name: &str,
    team: Option<&str>,
    domain: &str,
    email: Option<Email>,
) -> Result<User> {
    HandleUri::new(handle, domain).map_err(|e| Error::invalid_request(e.to_string()))?;
    check_names(name, team)?;
    Ok(User {
        id: proto::random::uuid_v4(),
        handle: handle.to_owned(),
        name: name.to_owned(),
        team: team.map(str::to_owned),
        domain: domain.to_owned(),
        email,
        password_hash: String::new(),
        roles: Vec::new(),
        groups: Vec::new(),
    })
}

/// The role this server's own admin surface (`/admin/…`) needs.
pub const ADMIN_ROLE: &str = "admin";

/// The most roles or groups one user carries, and the longest name of one.
pub const MAX_ROLES: usize = 64;
const MAX_ROLE_BYTES: usize = 128;

/// Whether `name` can be a role or group: 1 to 128 printable ASCII characters without spaces
/// or quotes (they travel in tokens and `WWW-Authenticate`).
pub fn is_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROLE_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Checks a list of role or group names (`what` names the list): printable ASCII without spaces
/// (they travel in tokens and `WWW-Authenticate`), each once; the list, sorted.
pub fn role_names(names: &[String], what: &str) -> Result<Vec<String>> {
    if names.len() > MAX_ROLES {
        return Err(Error::invalid_request(format!(
            "at most {MAX_ROLES} {what}"
        )));
    }
    let mut list: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !is_role_name(name) {
            return Err(Error::invalid_request(format!(
                "{name:?} is not a usable name for {what} (1 to {MAX_ROLE_BYTES} printable ASCII characters, no spaces or quotes)"
            )));
        }
        if !list.contains(name) {
            list.push(name.clone());
        }
    }
    list.sort();
    Ok(list)
}

/// Replaces the roles and groups (each `None` left as it is) of the user with `handle`; the
/// user as written, or `None` if there is no such user. Durable on return.
pub fn set_authorization(
    store: &dyn Store,
    handle: &str,
    roles: Option<&[String]>,
    groups: Option<&[String]>,
) -> Result<Option<User>> {
    let roles = roles.map(|r| role_names(r, "roles")).transpose()?;
    let groups = groups.map(|g| role_names(g, "groups")).transpose()?;
    let Some(user) = by_handle(store, handle)? else {
        return Ok(None);
    };
    let written = store::users::set_authorization(store, &user.id, roles, groups)?;
    store::flush(store)?;
    Ok(written)
}

/// Records (or with `None` removes) a user's email address; false if there is no such user.
/// Tokens already issued keep the claims they carry until they expire. Durable on return.
pub fn set_email(store: &dyn Store, handle: &str, email: Option<Email>) -> Result<bool> {
    if !store::users::set_email(store, handle, email)? {
        return Ok(false);
    }
    store::flush(store)?;
    Ok(true)
}

/// Removes a user (and its handle) with the user's devices, upstream links, kept upstream
/// tokens and visas; false if there was none. Durable on return.
pub fn remove(store: &dyn Store, handle: &str) -> Result<bool> {
    let Some(user) = store::users::remove(store, handle)? else {
        return Ok(false);
    };
    store::devices::remove_all_of(store, &user.id)?;
    store::upstream_links::remove_all_of(store, &user.id)?;
    store::sessions::remove_all_of(store, &user.id)?;
    store::upstream_tokens::remove_all_of(store, &user.id)?;
    store::imported_visas::remove_all_of(store, &user.id)?;
    store::asserted_visas::remove_all_of(store, &user.id)?;
    store::flush(store)?;
    Ok(true)
}

/// Links the identity `subject` of the source `source` (an upstream, remote verifier or
/// JWT-bearer issuer, by id), whose identities are linked under `issuer`, to the user `handle`
/// at `now`: the operator's way to let an existing account log in through a source whose
/// `first_login` is `refuse`. Refused when the identity is linked to an account already, or
/// when the user holds another identity of that source. Durable on return.
pub fn link_identity(
    store: &dyn Store,
    handle: &str,
    source: &str,
    issuer: &str,
    subject: &str,
    now: proto::clock::UnixTime,
) -> Result<()> {
    use crate::store::upstream_links::{self, UpstreamLink};
    if subject.is_empty() || subject.len() > 255 {
        return Err(Error::invalid_request("the subject must be 1 to 255 bytes"));
    }
    let user = by_handle(store, handle)?
        .ok_or_else(|| Error::invalid_request(format!("no user {handle}")))?;
    let link = UpstreamLink {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        user_id: user.id,
        upstream: source.to_owned(),
        linked_at: now,
    };
    if !upstream_links::insert(store, &link)? {
        return Err(Error::invalid_request(format!(
            "this {source} identity is already linked to an account"
        )));
    }
    if upstream_links::another_of_source(store, &link)? {
        upstream_links::remove(store, &link)?;
        return Err(Error::invalid_request(format!(
            "{handle} is linked to another {source} identity already"
        )));
    }
    store::flush(store)
}

/// Checks a login. Runs the hash even for unknown handles so timing does not reveal which
/// handles exist.
pub fn authenticate(store: &dyn Store, handle: &str, password: &SecretString) -> Result<User> {
    let user = by_handle(store, handle)?;
    // An account made through an upstream has no password: it is checked against the dummy
    // hash all the same, so the time taken does not tell such accounts apart either.
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.as_str())
        .filter(|hash| !hash.is_empty());
    let matches = PasswordHash::new(stored.unwrap_or(DUMMY_HASH))
        .map(|parsed| crate::password_check::matches(password.expose().as_bytes(), &parsed))
        .unwrap_or(false);
    let ok = stored.is_some() && matches;
    match user {
        Some(user) if ok => Ok(user),
        _ => Err(Error::BadCredentials),
    }
}

/// Refuses a display name or team that cannot be part of a Wire identity: blank, over 256
/// bytes, or with control characters (which would also forge lines in `user list`).
fn check_names(name: &str, team: Option<&str>) -> Result<()> {
    proto::wire_id::validate_name(name).map_err(|_| {
        Error::invalid_request(
            "the display name is blank, over 256 bytes or has control characters",
        )
    })?;
    if let Some(team) = team {
        proto::wire_id::validate_name(team).map_err(|_| {
            Error::invalid_request("the team is blank, over 256 bytes or has control characters")
        })?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Box<dyn Store>) {
        let (dir, store) = store::temporary();
        (dir, Box::new(store))
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
    fn a_passwordless_account_never_passes_a_password_check() {
        let (_d, store) = store();
        let user = passwordless("dave", "Dave", None, "wire.com", None).unwrap();
        store::users::insert(store.as_ref(), &user).unwrap();
        for typed in ["", "password", "dummy password"] {
            assert!(matches!(
                authenticate(store.as_ref(), "dave", &SecretString::new(typed)),
                Err(Error::BadCredentials)
            ));
        }
        assert!(passwordless("Not A Handle", "x", None, "wire.com", None).is_err());
        assert!(passwordless("erin", " ", None, "wire.com", None).is_err());
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
}
