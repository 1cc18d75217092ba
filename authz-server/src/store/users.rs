//! User records (`users`, by id) and the handle index (`handles`, handle → id) that keeps each
//! handle to one user: a user (handle, display name, team, domain, and an email address only
//! when an operator recorded one) with an argon2id password hash.

use proto::wire_id::HandleUri;
use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::{Error, Result};

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
    /// Roles (RFC 9068 §7.2 `roles`): set by an operator or mapped from an upstream's claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Groups (RFC 9068 §7.2 `groups`): set by an operator or mapped from an upstream's claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// argon2id PHC string (set and read by [`crate::users`] only).
    pub(crate) password_hash: String,
}

impl User {
    /// Whether the account has a password (an account made through an upstream has none).
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }
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

/// Adds `user` and claims its handle. The record is written before the handle is claimed, so a
/// handle index entry whose record is missing can only be left by a crash (or a removal) and is
/// taken over by compare-and-swap; an entry whose record exists is never taken, however many
/// inserts of one handle race. A losing insert takes its record back out (a crash in between
/// leaves a record no handle names: [`list`] leaves it out).
pub fn insert(store: &dyn Store, user: &User) -> Result<()> {
    store.put_json(trees::USERS, &user.id, user)?;
    let id_json = super::encode(&user.id)?;
    if store.compare_and_swap(trees::HANDLES, &user.handle, None, Some(&id_json))? {
        return Ok(());
    }
    let existing = store.get(trees::HANDLES, &user.handle)?;
    let dangling = match existing.as_deref().map(serde_json::from_slice::<String>) {
        Some(Ok(id)) => store.get(trees::USERS, &id)?.is_none(),
        _ => true,
    };
    if dangling
        && store.compare_and_swap(
            trees::HANDLES,
            &user.handle,
            existing.as_deref(),
            Some(&id_json),
        )?
    {
        return Ok(());
    }
    store.take(trees::USERS, &user.id)?;
    Err(Error::Wire {
        status: axum::http::StatusCode::CONFLICT,
        label: "handle-exists",
        message: format!("the handle {} is taken", user.handle),
    })
}

/// Records (or with `None` removes) the email address of the user with `handle`, by
/// compare-and-swap; false if there is no such user.
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
    Ok(true)
}

/// Replaces the roles and groups of the user `id` (each `None` left as it is), by
/// compare-and-swap — read again and retried when another write came in between; the user as
/// this call wrote it, or `None` if there is no such user.
pub fn set_authorization(
    store: &dyn Store,
    id: &str,
    roles: Option<Vec<String>>,
    groups: Option<Vec<String>>,
) -> Result<Option<User>> {
    // Every failed swap is another writer's success, so the loop ends; a bound on the rounds
    // failed writers that merely waited behind slower round trips (a database's).
    loop {
        let Some(stored) = store.get_versioned::<User>(trees::USERS, id)? else {
            return Ok(None);
        };
        let mut user = stored.value.clone();
        if let Some(roles) = &roles {
            user.roles.clone_from(roles);
        }
        if let Some(groups) = &groups {
            user.groups.clone_from(groups);
        }
        if user.roles == stored.value.roles && user.groups == stored.value.groups {
            return Ok(Some(user));
        }
        if store.replace_json(trees::USERS, id, &stored, &user)? {
            return Ok(Some(user));
        }
    }
}

/// The user with this id.
pub fn get(store: &dyn Store, id: &str) -> Result<Option<User>> {
    Ok(store.get_json(trees::USERS, id)?)
}

/// The user with this handle.
pub fn by_handle(store: &dyn Store, handle: &str) -> Result<Option<User>> {
    match store.get_json::<String>(trees::HANDLES, handle)? {
        Some(id) => get(store, &id),
        None => Ok(None),
    }
}

/// All users, by id.
pub fn list(store: &dyn Store) -> Result<Vec<User>> {
    let mut users: Vec<User> = store.scan_json(trees::USERS, "")?;
    let mut named = Vec::with_capacity(users.len());
    for user in users.drain(..) {
        if store
            .get_json::<String>(trees::HANDLES, &user.handle)?
            .as_deref()
            == Some(&user.id)
        {
            named.push(user);
        }
    }
    Ok(named)
}

/// Removes the user with `handle` and frees the handle; the user removed, if there was one.
pub fn remove(store: &dyn Store, handle: &str) -> Result<Option<User>> {
    let Some(user) = by_handle(store, handle)? else {
        return Ok(None);
    };
    store.take(trees::USERS, &user.id)?;
    store.take(trees::HANDLES, handle)?;
    Ok(Some(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_handle_index_is_taken_over() {
        let (_dir, store) = super::super::temporary();
        let store: &dyn Store = &store;
        store
            .put_json(trees::HANDLES, "bob", &"missing-id".to_owned())
            .unwrap();
        let user = User {
            id: proto::random::uuid_v4(),
            handle: "bob".into(),
            name: "Bob".into(),
            team: None,
            domain: "wire.com".into(),
            email: None,
            password_hash: String::new(),
            roles: Vec::new(),
            groups: Vec::new(),
        };
        insert(store, &user).unwrap();
        assert_eq!(by_handle(store, "bob").unwrap().unwrap().id, user.id);
        let rival = User {
            id: proto::random::uuid_v4(),
            ..user.clone()
        };
        assert!(matches!(
            insert(store, &rival),
            Err(Error::Wire {
                label: "handle-exists",
                ..
            })
        ));
    }

    #[test]
    fn a_hundred_simultaneous_inserts_of_one_handle_make_one_user() {
        let (_dir, store) = super::super::temporary();
        let store: &dyn Store = &store;
        for round in 0..20 {
            let handle = format!("racer{round}");
            let barrier = std::sync::Barrier::new(100);
            let won = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..100)
                    .map(|_| {
                        let (barrier, handle) = (&barrier, &handle);
                        scope.spawn(move || {
                            let user = User {
                                id: proto::random::uuid_v4(),
                                handle: handle.clone(),
                                name: "Racer".into(),
                                team: None,
                                domain: "wire.com".into(),
                                email: None,
                                password_hash: String::new(),
                                roles: Vec::new(),
                                groups: Vec::new(),
                            };
                            barrier.wait();
                            insert(store, &user).is_ok()
                        })
                    })
                    .collect();
                racers
                    .into_iter()
                    .map(|r| r.join().unwrap())
                    .filter(|&won| won)
                    .count()
            });
            assert_eq!(won, 1, "{handle}");
            let records: Vec<User> = store.scan_json(trees::USERS, "").unwrap();
            assert_eq!(records.iter().filter(|u| u.handle == handle).count(), 1);
            assert_eq!(
                list(store)
                    .unwrap()
                    .iter()
                    .filter(|u| u.handle == handle)
                    .count(),
                1
            );
        }
    }
}
