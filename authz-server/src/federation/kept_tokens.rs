//! The upstream tokens this server keeps for its users, for RFC 8693 token exchange: after a
//! login through an upstream resolves to an account (or once a pending link is made), the
//! upstream's access token, refresh token (if any), expiry and scope are stored for (upstream,
//! user) — the last login's replace the previous ones — sealed with the record's key as
//! associated data ([`super::sealing`]; tokens of a pending link are sealed for its ticket and
//! sealed again for the account). Handing one out ([`Provider::upstream_access_token`])
//! refreshes it at the upstream first when it expires within `refresh_margin_secs` (or within
//! half its lifetime, if that is shorter, so short-lived tokens are not refreshed at every
//! exchange): one refresh per record at a time (an in-process lock per record, the record read
//! again once held: tokens another request stored meanwhile are handed out as they are, unless
//! already expired), and one across replicas (a lease in the store,
//! [`crate::store::refresh_leases`]: a replica that finds another's lease waits for the tokens
//! it stores, up to 15 s, then answers `temporarily_unavailable`; a lease whose holder stopped
//! mid-refresh is taken over after 30 s), so a single-use refresh token is never used twice; a
//! refused refresh drops the record and the user must log in through the upstream again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use proto::clock::UnixTime;
use proto::secret::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Upstream;
use super::sealing::TokenKey;
use super::token::{TokenAnswer, TokenFailure};
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::refresh_leases;
use crate::store::upstream_link_tickets;
use crate::store::upstream_tokens::{self, KeptTokens, SealedTokens};
use crate::store::{self};

/// How long a refresh lease lasts (longer than a refresh at the upstream may take).
const LEASE_SECS: i64 = 30;

/// How long a request waits for another replica's refresh before answering
/// `temporarily_unavailable`.
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// How often a waiting request looks for the other replica's tokens.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// What waiting for the refresh lease gave.
enum Leased {
    /// The lease: this process refreshes.
    Ours(refresh_leases::Held),
    /// Tokens another process refreshed meanwhile.
    Refreshed(KeptTokens),
}

/// Lock entries kept before the ones no refresh holds any more are dropped.
const LOCKS_BEFORE_PRUNING: usize = 1024;

/// The sealing key and the per-record refresh locks.
pub struct Custody {
    key: TokenKey,
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody").finish_non_exhaustive()
    }
}

/// What is sealed: the tokens themselves.
#[derive(Serialize, Deserialize)]
struct Sealed {
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

/// The tokens of a record, opened (`Debug` shows none).
struct Opened {
    access_token: SecretString,
    refresh_token: Option<SecretString>,
}

/// An upstream access token handed out by token exchange (`Debug` hides the token).
pub struct ExchangedToken {
    /// The token.
    pub access_token: SecretString,
    /// Seconds left, when known.
    pub expires_in: Option<i64>,
    /// Its scope, when known.
    pub scope: Option<String>,
}

impl std::fmt::Debug for ExchangedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangedToken")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Custody {
    /// Custody with `key`.
    pub fn new(key: TokenKey) -> Self {
        Self {
            key,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The refresh lock of the record `record_key`.
    fn lock_for(&self, record_key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = locks.get(record_key).and_then(Weak::upgrade) {
            return lock;
        }
        if locks.len() >= LOCKS_BEFORE_PRUNING {
            locks.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(record_key.to_owned(), Arc::downgrade(&lock));
        lock
    }

    /// The access and refresh token of `answer` sealed for `record_key` (nothing when it has no
    /// Bearer access token); `previous_refresh` stays when the answer brings no new one.
    fn seal(
        &self,
        record_key: &str,
        answer: &TokenAnswer,
        previous_refresh: Option<&SecretString>,
        now: UnixTime,
    ) -> Result<Option<SealedTokens>> {
        let Some(access_token) = &answer.access_token else {
            return Ok(None);
        };
        let refresh_token = answer.refresh_token.as_ref().or(previous_refresh);
        let plain = serde_json::to_vec(&Sealed {
            access_token: access_token.expose().to_owned(),
            refresh_token: refresh_token.map(|t| t.expose().to_owned()),
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let plain = proto::secret::SecretBytes::new(plain);
        Ok(Some(SealedTokens {
            sealed: self.key.seal(record_key, plain.expose())?,
            expires_at: answer.expires_in.map(|s| now.saturating_add(s)),
            scope: answer.scope.clone(),
            refreshable: refresh_token.is_some(),
        }))
    }

    /// The tokens sealed for `record_key`.
    fn open(&self, record_key: &str, tokens: &SealedTokens) -> Result<Opened> {
        let plain = self.key.open(record_key, &tokens.sealed)?;
        let sealed: Sealed = serde_json::from_slice(plain.expose()).map_err(|_| {
            Error::Storage(format!("the sealed tokens of {record_key} are not JSON"))
        })?;
        Ok(Opened {
            access_token: SecretString::new(sealed.access_token),
            refresh_token: sealed.refresh_token.map(SecretString::new),
        })
    }

    /// Tokens sealed for `from` sealed again for `to`.
    fn reseal(&self, from: &str, to: &str, tokens: &SealedTokens) -> Result<SealedTokens> {
        let plain = self.key.open(from, &tokens.sealed)?;
        Ok(SealedTokens {
            sealed: self.key.seal(to, plain.expose())?,
            ..tokens.clone()
        })
    }
}

/// The opened access token of `tokens`, with what is known of it.
fn hand_out(opened: Opened, tokens: &SealedTokens, now: UnixTime) -> ExchangedToken {
    ExchangedToken {
        access_token: opened.access_token,
        expires_in: tokens.expires_at.map(|at| (at - now).max(0)),
        scope: tokens.scope.clone(),
    }
}

impl Provider {
    /// Keeps the tokens of a login of `user_id` through `upstream`. Durable on return.
    pub(super) fn keep_upstream_tokens(
        &self,
        upstream: &Upstream,
        user_id: &str,
        answer: &TokenAnswer,
    ) -> Result<()> {
        let record_key = upstream_tokens::key(upstream.id(), user_id);
        let now = self.now();
        let custody = self.upstreams.custody()?;
        if let Some(tokens) = custody.seal(&record_key, answer, None, now)? {
            self.store_tokens(upstream.id(), user_id, tokens)?;
        }
        Ok(())
    }

    /// The tokens of a login waiting under the link `ticket`, sealed for it.
    pub(super) fn seal_pending_tokens(
        &self,
        ticket: &str,
        answer: &TokenAnswer,
    ) -> Result<Option<SealedTokens>> {
        let custody = self.upstreams.custody()?;
        custody.seal(
            &upstream_link_tickets::seal_key(ticket),
            answer,
            None,
            self.now(),
        )
    }

    /// Keeps the tokens of the pending link of `ticket`, once linked to `user_id`. Durable
    /// on return.
    pub(super) fn keep_pending_tokens(
        &self,
        ticket: &str,
        upstream_id: &str,
        user_id: &str,
        tokens: &SealedTokens,
    ) -> Result<()> {
        let custody = self.upstreams.custody()?;
        let to = upstream_tokens::key(upstream_id, user_id);
        let tokens = custody.reseal(&upstream_link_tickets::seal_key(ticket), &to, tokens)?;
        self.store_tokens(upstream_id, user_id, tokens)
    }

    fn store_tokens(&self, upstream_id: &str, user_id: &str, tokens: SealedTokens) -> Result<()> {
        let record = KeptTokens {
            upstream: upstream_id.to_owned(),
            user_id: user_id.to_owned(),
            tokens,
            stored_at: self.now(),
        };
        upstream_tokens::put(self.store(), &record)?;
        store::flush(self.store())
    }

    /// The access token `upstream` issued to `user_id`, refreshed there first when it expires
    /// within `refresh_margin_secs`. `invalid_target` when there is none; `invalid_grant`
    /// (and the record gone) when it expired and cannot be refreshed.
    pub async fn upstream_access_token(
        &self,
        upstream: &Upstream,
        user_id: &str,
        now: UnixTime,
    ) -> Result<ExchangedToken> {
        let custody = self.upstreams.custody()?;
        let record_key = upstream_tokens::key(upstream.id(), user_id);
        let name = &upstream.config.display_name;
        let margin = upstream.config.refresh_margin_secs;
        // Refreshed within the margin of its expiry, but never in the first half of its life
        // (a token living less than twice the margin is not refreshed again and again).
        let usable = |record: &KeptTokens| {
            record.tokens.expires_at.is_none_or(|at| {
                let margin = margin.min(at.saturating_sub(record.stored_at).max(0) / 2);
                at.saturating_sub(margin) > now
            })
        };
        let log_in_again =
            || Error::invalid_grant(format!("the user must log in through {name} again"));
        let Some(read) = upstream_tokens::get(self.store(), upstream.id(), user_id)? else {
            return Err(Error::OAuth {
                code: "invalid_target",
                description: format!(
                    "the user has no tokens of {name} here: they never logged in through it, or \
                     must log in through it again"
                ),
            });
        };
        // Sealed with another key (the key file was replaced or lost): nothing can open them
        // again; the user logs in through the upstream again.
        let Ok(opened) = custody.open(&record_key, &read.record.tokens) else {
            self.drop_tokens(&read, "sealed with another key")?;
            return Err(log_in_again());
        };
        if usable(&read.record) {
            return Ok(hand_out(opened, &read.record.tokens, now));
        }
        let lock = custody.lock_for(&record_key);
        let _held = lock.lock().await;
        // Another request may have refreshed (or dropped) the tokens while this one waited:
        // what it stored is as fresh as a refresh now would get, unless it expired already.
        let waited_for = read.record;
        let read =
            upstream_tokens::get(self.store(), upstream.id(), user_id)?.ok_or_else(log_in_again)?;
        let tokens = &read.record.tokens;
        let replaced = read.record != waited_for && tokens.expires_at.is_none_or(|at| at > now);
        let opened = custody.open(&record_key, tokens)?;
        if replaced || usable(&read.record) {
            return Ok(hand_out(opened, tokens, now));
        }
        let Some(refresh_token) = opened.refresh_token else {
            self.drop_tokens(&read, "expired")?;
            return Err(log_in_again());
        };
        // One refresh across replicas too: the lease in the store, or the tokens another
        // replica's refresh stored while this one waited for its lease.
        let lease = match self
            .refresh_lease(&record_key, upstream, user_id, &read.record)
            .await?
        {
            Leased::Ours(lease) => lease,
            Leased::Refreshed(fresh) => {
                let opened = custody.open(&record_key, &fresh.tokens)?;
                return Ok(hand_out(opened, &fresh.tokens, now));
            }
        };
        let refreshed = self
            .refresh_kept(upstream, &record_key, &read, refresh_token, now)
            .await;
        refresh_leases::release(self.store(), lease)?;
        refreshed
    }

    /// Waits for the lease on refreshing `record_key` (while `waited_for` is what this process
    /// read), at most [`LEASE_WAIT`]: the lease once taken, or the tokens another process
    /// stored meanwhile, unless already expired.
    async fn refresh_lease(
        &self,
        record_key: &str,
        upstream: &Upstream,
        user_id: &str,
        waited_for: &KeptTokens,
    ) -> Result<Leased> {
        let deadline = std::time::Instant::now() + LEASE_WAIT;
        loop {
            let now = self.now();
            if let Some(lease) = refresh_leases::claim(self.store(), record_key, now, LEASE_SECS)? {
                return Ok(Leased::Ours(lease));
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::upstream_unavailable(format!(
                    "another replica is refreshing the tokens of {}; retry shortly",
                    upstream.config.display_name
                )));
            }
            tokio::time::sleep(LEASE_POLL).await;
            if let Some(read) = upstream_tokens::get(self.store(), upstream.id(), user_id)?
                && read.record != *waited_for
                && read
                    .record
                    .tokens
                    .expires_at
                    .is_none_or(|at| at > self.now())
            {
                return Ok(Leased::Refreshed(read.record));
            }
        }
    }

    /// Refreshes the kept tokens `read` at the upstream with `refresh_token` and stores what it
    /// answers (the lease held).
    async fn refresh_kept(
        &self,
        upstream: &Upstream,
        record_key: &str,
        read: &upstream_tokens::ReadTokens,
        refresh_token: SecretString,
        now: UnixTime,
    ) -> Result<ExchangedToken> {
        let custody = self.upstreams.custody()?;
        let name = &upstream.config.display_name;
        let user_id = read.record.user_id.as_str();
        let tokens = &read.record.tokens;
        let log_in_again =
            || Error::invalid_grant(format!("the user must log in through {name} again"));
        let token_endpoint = upstream.metadata(now).await?.token_endpoint.clone();
        let answer = match upstream.refresh(&token_endpoint, &refresh_token, now).await {
            Ok(answer) if answer.access_token.is_some() => answer,
            Ok(_) => {
                return Err(Error::upstream_unavailable(format!(
                    "the identity provider {name} refreshed without a Bearer access token"
                )));
            }
            Err(TokenFailure::Refused { code, .. }) if code == "invalid_grant" => {
                self.drop_tokens(read, "refresh refused")?;
                return Err(log_in_again());
            }
            Err(TokenFailure::Refused { status, code }) => {
                return Err(Error::upstream_unavailable(format!(
                    "the identity provider {name} refused the refresh ({status} {code})"
                )));
            }
            Err(TokenFailure::Unavailable(e)) => return Err(e),
        };
        let mut refreshed = custody
            .seal(record_key, &answer, Some(&refresh_token), now)?
            .ok_or_else(|| Error::Internal("a refreshed token vanished".into()))?;
        refreshed.scope = refreshed.scope.or_else(|| tokens.scope.clone());
        let record = KeptTokens {
            upstream: upstream.id().to_owned(),
            user_id: user_id.to_owned(),
            tokens: refreshed.clone(),
            stored_at: now,
        };
        // Only over the record the refresh started from: tokens unlinked (or replaced by a
        // new login) meanwhile are not brought back.
        if !upstream_tokens::replace_unchanged(self.store(), read, &record)? {
            return Err(log_in_again());
        }
        store::flush(self.store())?;
        self.audit.record(
            now,
            "upstream.tokens_refreshed",
            json!({"user": user_id, "upstream": upstream.id()}),
        );
        let access_token = answer
            .access_token
            .ok_or_else(|| Error::Internal("a refreshed token vanished".into()))?;
        let opened = Opened {
            access_token,
            refresh_token: None,
        };
        Ok(hand_out(opened, &refreshed, now))
    }

    /// Removes tokens that can no longer be used (unless a new login replaced them).
    fn drop_tokens(&self, read: &upstream_tokens::ReadTokens, why: &str) -> Result<()> {
        upstream_tokens::remove_unchanged(self.store(), read)?;
        store::flush(self.store())?;
        self.audit.record(
            self.now(),
            "upstream.tokens_dropped",
            json!({"user": read.record.user_id, "upstream": read.record.upstream, "why": why}),
        );
        Ok(())
    }
}
