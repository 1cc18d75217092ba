//! Which local account an upstream identity logs in to: the account linked to its (issuer,
//! subject), or — at its first login — what the upstream's `first_login` policy says: a new
//! account from the mapped claims (its handle must be free: an existing account is never taken
//! over, whatever the claims say), a link to the account the user logs in to next
//! ([`super::linking`]), or a refusal. A link whose account no longer exists is removed (and
//! audited, `upstream.stale_link_removed`), and the login counts as a first login. Accounts are
//! never found by e-mail address.
//!
//! The same holds for every source of verified identities, not only upstreams: a remote
//! verifier ([`crate::remote_auth`]) and a JWT-bearer issuer ([`crate::jwt_bearer`]) link their
//! identities here too, each as an [`IdentitySource`].

use super::claims::{ClaimMap, UpstreamIdentity};
use super::{FirstLogin, Upstream};
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::upstream_links::UpstreamLink;
use crate::store::{self, users::User};
use crate::users::{self, Email};

/// Where a verified identity comes from, as the accounts see it: an upstream, a remote verifier
/// or a JWT-bearer issuer. Its identities are linked under (`issuer`, subject); `id` names it
/// in the links, the audit log and the kept tokens.
#[derive(Debug, Clone, Copy)]
pub struct IdentitySource<'a> {
    /// Its id (one namespace for upstreams, remote verifiers and JWT-bearer issuers).
    pub id: &'a str,
    /// The issuer its identities are linked under.
    pub issuer: &'a str,
    /// Its name in messages.
    pub display_name: &'a str,
    /// Which of its claims give the account, its roles and groups.
    pub claims: &'a ClaimMap,
    /// What the first login of an identity no account is linked to does.
    pub first_login: FirstLogin,
}

impl Upstream {
    /// This upstream as a source of identities.
    pub fn source(&self) -> IdentitySource<'_> {
        IdentitySource {
            id: self.id(),
            issuer: self.issuer(),
            display_name: &self.config.display_name,
            claims: &self.config.claims,
            first_login: self.config.first_login,
        }
    }
}

/// The local account of a login.
#[derive(Debug)]
pub struct Account {
    /// The user.
    pub user: User,
    /// Whether this login created it.
    pub created: bool,
}

/// What a verified upstream identity leads to.
#[derive(Debug)]
pub enum Resolution {
    /// Its local account.
    Account(Box<Account>),
    /// None yet: the user first logs in to the local account to link it to.
    LinkFirst,
}

impl Provider {
    /// The account's roles and groups made what the upstream's mapped claims say (only the
    /// mapped ones, only when the upstream sent the claim); the account as it is now.
    pub(crate) fn sync_authorization(
        &self,
        source: &IdentitySource<'_>,
        identity: &UpstreamIdentity,
        user: User,
    ) -> Result<User> {
        let mapped = MappedAuthorization::of(source, identity);
        self.apply_authorization(source.id, mapped, user)
    }

    /// Gives `user` the roles and groups `mapped` from the upstream `upstream_id` (only the
    /// mapped lists; audited when something changed); the account as it is now.
    pub(super) fn apply_authorization(
        &self,
        upstream_id: &str,
        mapped: MappedAuthorization,
        user: User,
    ) -> Result<User> {
        let MappedAuthorization { roles, groups } = mapped;
        let unchanged =
            |now: &Option<Vec<String>>, had: &Vec<String>| now.as_ref().is_none_or(|n| n == had);
        if unchanged(&roles, &user.roles) && unchanged(&groups, &user.groups) {
            return Ok(user);
        }
        let store = self.store();
        let user = store::users::set_authorization(store, &user.id, roles, groups)?
            .ok_or_else(|| Error::invalid_request("the account no longer exists"))?;
        store::flush(store)?;
        self.audit.record(
            self.now(),
            "user.authorization_set",
            serde_json::json!({"user": user.id, "handle": user.handle, "roles": user.roles,
                               "groups": user.groups, "by": upstream_id}),
        );
        Ok(user)
    }
}

/// The roles and groups an upstream's claims give (each `None` when not mapped; a mapped claim
/// the upstream left out gives an empty list).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MappedAuthorization {
    /// The mapped roles (only those the upstream may give).
    pub roles: Option<Vec<String>>,
    /// The mapped groups.
    pub groups: Option<Vec<String>>,
}

impl MappedAuthorization {
    /// What `identity` gives under `source`'s claim map.
    pub fn of(source: &IdentitySource<'_>, identity: &UpstreamIdentity) -> Self {
        let map = source.claims;
        let mapped = |claim: &Option<String>| {
            claim
                .as_deref()
                .map(|name| super::claims::names(&identity.claims, name))
        };
        Self {
            roles: mapped(&map.roles).map(|offered| map.allowed(offered)),
            groups: mapped(&map.groups),
        }
    }
}

impl Provider {
    /// The account the verified `identity` of `source` logs in to.
    pub(crate) fn account_of(
        &self,
        source: &IdentitySource<'_>,
        identity: &UpstreamIdentity,
    ) -> Result<Resolution> {
        let store = self.store();
        let issuer = source.issuer;
        let subject = identity.subject.as_str();
        if let Some(link) = store::upstream_links::get(store, issuer, subject)? {
            if let Some(user) = store::users::get(store, &link.user_id)? {
                return Ok(Resolution::Account(Box::new(Account {
                    user,
                    created: false,
                })));
            }
            self.remove_stale_link(source, &link)?;
        }
        let name = source.display_name;
        match source.first_login {
            FirstLogin::Refuse => {
                return Err(Error::upstream_denied(format!(
                    "no account here is linked to this {name} identity, and none is created at \
                     a first login; ask an administrator"
                )));
            }
            FirstLogin::Link => return Ok(Resolution::LinkFirst),
            FirstLogin::Create => {}
        }
        let user = self.new_account(source, identity)?;
        let link = UpstreamLink {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            user_id: user.id.clone(),
            upstream: source.id.to_owned(),
            linked_at: self.now(),
        };
        // The link is claimed first, so two first logins of one identity make one account; an
        // account that cannot be stored gives its link back.
        if !store::upstream_links::insert(store, &link)? {
            return Err(Error::upstream_unavailable(
                "this identity is being linked by another login at this moment; try again",
            ));
        }
        if let Err(e) = store::users::insert(store, &user) {
            store::upstream_links::remove(store, &link)?;
            return Err(match e {
                Error::Wire {
                    label: "handle-exists",
                    ..
                } => Error::upstream_denied(format!(
                    "the handle {:?} belongs to another account here; an administrator can link \
                     your {name} identity to your account",
                    user.handle
                )),
                other => other,
            });
        }
        store::flush(store)?;
        self.audit.record(
            self.now(),
            "user.created",
            serde_json::json!({"user": user.id, "handle": user.handle, "upstream": source.id}),
        );
        Ok(Resolution::Account(Box::new(Account {
            user,
            created: true,
        })))
    }

    /// Removes `link`, whose account no longer exists, if it is still exactly as read (another
    /// login of the identity may have removed or replaced it meanwhile), with the kept tokens
    /// and visas of that account at `source`; audited. The login then goes on as a first login.
    fn remove_stale_link(&self, source: &IdentitySource<'_>, link: &UpstreamLink) -> Result<()> {
        let store = self.store();
        if !store::upstream_links::remove(store, link)? {
            return Ok(());
        }
        store::upstream_tokens::remove_of(store, source.id, &link.user_id)?;
        store::imported_visas::remove_of(store, source.id, &link.user_id)?;
        store::flush(store)?;
        self.audit.record(
            self.now(),
            "upstream.stale_link_removed",
            serde_json::json!({"user": link.user_id, "upstream": source.id}),
        );
        Ok(())
    }

    /// The record of a new account from the mapped claims (not stored).
    fn new_account(
        &self,
        source: &IdentitySource<'_>,
        identity: &UpstreamIdentity,
    ) -> Result<User> {
        let map = source.claims;
        let name = source.display_name;
        let claim = |key: &str| identity.claim(key);
        let missing = |key: &str| {
            Error::upstream_denied(format!(
                "the {name} identity has no {key:?} claim to make an account from"
            ))
        };
        let raw_handle = claim(&map.handle).ok_or_else(|| missing(&map.handle))?;
        let domain = &self.config.domain;
        let handle = raw_handle
            .strip_suffix(&format!("@{domain}"))
            .unwrap_or(&raw_handle);
        if proto::wire_id::validate_handle(handle).is_err() {
            return Err(Error::upstream_denied(format!(
                "the {name} claim {:?} is not a usable handle (2 to 256 of a-z 0-9 _ . -)",
                map.handle
            )));
        }
        let display = claim(&map.display_name).ok_or_else(|| missing(&map.display_name))?;
        let team = map.team.as_deref().and_then(claim);
        let email = claim(&map.email)
            .and_then(|address| Email::new(&address, identity.email_verified()).ok());
        users::passwordless(handle, &display, team.as_deref(), domain, email).map_err(|e| {
            let (_, why) = e.authorization_error();
            Error::upstream_denied(format!("the {name} identity cannot make an account: {why}"))
        })
    }
}
