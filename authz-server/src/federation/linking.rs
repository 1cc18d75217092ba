//! The `link` first-login policy: a verified upstream identity that no account is linked to
//! waits under a single-use ticket (bound to the browser by the same cookie as the login's
//! `state`, [`super::login::LOGIN_TTL`]) until the user logs in to an existing local account
//! with its handle and password — within the usual failed-login limits — and is then linked to
//! that account, for good — and the upstream's tokens of that login, sealed for the ticket
//! meanwhile, are kept for that account ([`super::kept_tokens`]), with the visas it brought
//! ([`crate::passports::imported`]). Never by e-mail address. Unlinking an identity drops its
//! kept tokens and visas.

use std::net::IpAddr;

use proto::secret::{SecretString, constant_time_eq};

use super::Upstream;
use super::accounts::MappedAuthorization;
use super::claims::UpstreamIdentity;
use super::login::LOGIN_TTL;
use super::token::TokenAnswer;
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::upstream_link_tickets::{self, PendingLink};
use crate::store::upstream_links::{self, UpstreamLink};
use crate::store::upstream_logins::UpstreamLogin;
use crate::store::{self, users::User};

impl Provider {
    /// Parks the verified identity `subject` of `upstream`, with the login's `tokens`, until
    /// the user logs in to the account to link it to; returns the ticket.
    pub(super) fn park_link(
        &self,
        upstream: &Upstream,
        identity: &UpstreamIdentity,
        login: &UpstreamLogin,
        tokens: &TokenAnswer,
    ) -> Result<String> {
        let subject = identity.subject.as_str();
        let ticket = proto::random::token(256);
        let pending = PendingLink {
            upstream: upstream.id().to_owned(),
            issuer: upstream.issuer().to_owned(),
            subject: subject.to_owned(),
            params: login.params.clone(),
            expires_at: self.now() + LOGIN_TTL,
            purpose: login.purpose.clone(),
            tokens: self.seal_pending_tokens(&ticket, tokens)?,
            authorization: MappedAuthorization::of(&upstream.source(), identity),
            visas: crate::passports::imported::screened(
                upstream,
                identity,
                &self.base_url,
                self.now(),
                self.config.clock_skew,
            ),
        };
        upstream_link_tickets::insert(self.store(), &ticket, &pending)?;
        Ok(ticket)
    }

    /// The identity waiting under `ticket`, if `browser_ticket` (the browser's cookie) is the
    /// same and it has not expired or been used; not taken.
    pub fn pending_link(
        &self,
        ticket: Option<&str>,
        browser_ticket: Option<&str>,
    ) -> Result<PendingLink> {
        let ticket = ticket.unwrap_or_default();
        if ticket.is_empty()
            || !browser_ticket.is_some_and(|b| constant_time_eq(b.as_bytes(), ticket.as_bytes()))
        {
            return Err(Error::invalid_request(
                "state mismatch: this link belongs to a login this browser did not start",
            ));
        }
        upstream_link_tickets::get(self.store(), ticket)?
            .filter(|p| p.expires_at >= self.now())
            .ok_or_else(used_or_expired)
    }

    /// The display name of the upstream `id` (its id when it is no longer configured).
    pub fn upstream_name(&self, id: &str) -> String {
        self.upstreams
            .get(id)
            .map_or_else(|| id.to_owned(), |u| u.config.display_name.clone())
    }

    /// Logs the user in to a local account with `handle` and `password` (failed-login limits
    /// and audit as at `/authorize`) and links the identity waiting under `ticket` to it; the
    /// waiting authorization request's parameters and the user. A wrong password leaves the
    /// ticket for another try.
    pub async fn link_upstream(
        &self,
        ip: IpAddr,
        ticket: Option<&str>,
        browser_ticket: Option<&str>,
        handle: String,
        password: SecretString,
    ) -> Result<(PendingLink, User)> {
        self.pending_link(ticket, browser_ticket)?;
        let user = self.log_in(ip, handle, password).await?;
        let pending = upstream_link_tickets::take(self.store(), ticket.unwrap_or_default())?
            .filter(|p| p.expires_at >= self.now())
            .ok_or_else(used_or_expired)?;
        let link = UpstreamLink {
            issuer: pending.issuer.clone(),
            subject: pending.subject.clone(),
            user_id: user.id.clone(),
            upstream: pending.upstream.clone(),
            linked_at: self.now(),
        };
        if !upstream_links::insert(self.store(), &link)? {
            return Err(Error::upstream_denied(format!(
                "this {} identity is already linked to an account",
                self.upstream_name(&pending.upstream)
            )));
        }
        self.keep_one_per_upstream(&link)?;
        if let Some(tokens) = &pending.tokens {
            let ticket = ticket.unwrap_or_default();
            self.keep_pending_tokens(ticket, &pending.upstream, &user.id, tokens)?;
        }
        let user =
            self.apply_authorization(&pending.upstream, pending.authorization.clone(), user)?;
        self.keep_imported_visas(&pending.upstream, &user.id, pending.visas.clone())?;
        store::flush(self.store())?;
        self.audit.record(
            self.now(),
            "upstream.linked",
            serde_json::json!({"user": user.id, "handle": user.handle, "upstream": pending.upstream}),
        );
        Ok((pending, user))
    }
}

impl Provider {
    /// Links the verified identity `subject` of `upstream` to the signed-in user `user_id`
    /// (from the account page): refused when the identity belongs to another account; nothing
    /// changes when it is this account's already.
    pub(super) fn link_to_account(
        &self,
        upstream: &Upstream,
        subject: &str,
        user_id: &str,
    ) -> Result<User> {
        let store = self.store();
        let user = store::users::get(store, user_id)?
            .ok_or_else(|| Error::invalid_request("the account no longer exists"))?;
        let link = UpstreamLink {
            issuer: upstream.config.issuer(),
            subject: subject.to_owned(),
            user_id: user.id.clone(),
            upstream: upstream.id().to_owned(),
            linked_at: self.now(),
        };
        if !upstream_links::insert(store, &link)? {
            let owner = upstream_links::get(store, &link.issuer, subject)?;
            if owner.is_some_and(|o| o.user_id == user.id) {
                return Ok(user);
            }
            return Err(Error::upstream_denied(format!(
                "this {} identity is already linked to another account",
                upstream.config.display_name
            )));
        }
        self.keep_one_per_upstream(&link)?;
        store::flush(store)?;
        self.audit.record(
            self.now(),
            "upstream.linked",
            serde_json::json!({"user": user.id, "handle": user.handle, "upstream": upstream.id()}),
        );
        Ok(user)
    }
}

impl Provider {
    /// After `link` was claimed: when its account holds another identity of the same upstream,
    /// gives the link back and refuses — one identity per upstream and account, however many
    /// links race (each checks after its own claim, so at most one of them stays).
    fn keep_one_per_upstream(&self, link: &UpstreamLink) -> Result<()> {
        let store = self.store();
        if upstream_links::another_of_source(store, link)? {
            upstream_links::remove(store, link)?;
            return Err(Error::upstream_denied(format!(
                "your account is already linked to a {} identity; unlink it first",
                self.upstream_name(&link.upstream)
            )));
        }
        Ok(())
    }

    /// The upstream identities linked to `user_id`, in the order the upstreams are configured.
    pub fn links_of(&self, user_id: &str) -> Result<Vec<UpstreamLink>> {
        let mut links = upstream_links::of_user(self.store(), user_id)?;
        let order = self.upstream_buttons();
        links.sort_by_key(|l| order.iter().position(|(id, _)| *id == l.upstream));
        Ok(links)
    }

    /// Unlinks `user`'s identity at `upstream_id` — unless it is the last way to sign in to
    /// the account (no other link, and no password usable here). Durable on return.
    pub fn unlink_upstream(&self, user: &User, upstream_id: &str) -> Result<()> {
        let store = self.store();
        let links = upstream_links::of_user(store, &user.id)?;
        let Some(link) = links.iter().find(|l| l.upstream == upstream_id) else {
            return Err(Error::invalid_request(format!(
                "your account is not linked to {}",
                self.upstream_name(upstream_id)
            )));
        };
        let password_works = user.has_password() && self.local_login();
        if links.len() == 1 && !password_works {
            return Err(Error::invalid_request(format!(
                "{} is the last way to sign in to your account; link another identity first",
                self.upstream_name(upstream_id)
            )));
        }
        upstream_links::remove(store, link)?;
        // Two unlinks racing could each have counted the other's link: whichever finds no way
        // left once its own is gone puts its link back.
        if !password_works && upstream_links::of_user(store, &user.id)?.is_empty() {
            upstream_links::insert(store, link)?;
            return Err(Error::invalid_request(
                "that was the last way to sign in to your account; link another identity first",
            ));
        }
        store::upstream_tokens::remove_of(store, upstream_id, &user.id)?;
        store::imported_visas::remove_of(store, upstream_id, &user.id)?;
        store::flush(store)?;
        self.audit.record(
            self.now(),
            "upstream.unlinked",
            serde_json::json!({"user": user.id, "handle": user.handle, "upstream": upstream_id}),
        );
        Ok(())
    }
}

fn used_or_expired() -> Error {
    Error::invalid_request(
        "this link request is unknown, expired or was already used; start again from the application",
    )
}
