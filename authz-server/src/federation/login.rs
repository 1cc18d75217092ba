//! A login through an upstream, as operations of the [`Provider`]: [`Provider::start_upstream_login`]
//! stores a single-use login (random `state`, `nonce`, PKCE verifier, the waiting authorization
//! request; [`LOGIN_TTL`]) and gives the upstream's authorization URL; at the callback,
//! [`Provider::take_upstream_login`] takes it once — only for the browser that started it (the
//! `state` also sits in a cookie of that browser) — and [`Provider::finish_upstream_login`]
//! turns the upstream's answer into the local user (or a link to make first, [`super::linking`]),
//! or an error for the client. Nothing is created unless the identity verified (the ID token,
//! or an `oauth2` upstream's user info); the upstream's tokens are then kept for the account
//! ([`super::kept_tokens`]), and the visas it released, when it is configured to give them
//! ([`crate::passports::imported`]).

use std::collections::HashMap;

use proto::secret::constant_time_eq;

use super::UpstreamKind;
use proto::clock::UnixTime;

use super::accounts::{Account, Resolution};
use super::freshness::Freshness;
use super::token::{CodeExchange, printable};
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::upstream_links;
use crate::store::upstream_logins::{self, Purpose, UpstreamLogin};
use crate::store::users::User;

/// The most bytes of authorization-request parameters a waiting upstream login keeps (each
/// start is stored until its callback or expiry).
pub const MAX_WAITING_REQUEST: usize = 8 * 1024;

/// Seconds between leaving for the upstream and coming back.
pub const LOGIN_TTL: i64 = 600;

/// Where the browser goes to log in at the upstream (`Debug` leaves out the `state`).
pub struct UpstreamRedirect {
    /// The `state` sent (also set in the browser's cookie).
    pub state: String,
    /// The upstream's authorization URL with our request.
    pub location: String,
}

/// Where a login through an upstream stands after its callback (`Debug` leaves out the link
/// ticket).
pub enum UpstreamOutcome {
    /// The user logged in (at `auth_time`, when the upstream says).
    LoggedIn {
        /// The user.
        user: User,
        /// When the user logged in at the upstream.
        auth_time: Option<UnixTime>,
    },
    /// The identity is verified but linked to no account yet (`first_login = "link"`): the
    /// user logs in to the account to link it to, under this ticket ([`super::linking`]).
    LinkNeeded {
        /// The link ticket (also set in the browser's cookie).
        ticket: String,
        /// The upstream's display name.
        upstream_name: String,
    },
}

/// What the upstream sent back to the callback (`Debug` leaves out the code).
#[derive(Default, Clone, Copy)]
pub struct CallbackAnswer<'a> {
    /// The authorization code.
    pub code: Option<&'a str>,
    /// An error code instead (RFC 6749 §4.1.2.1).
    pub error: Option<&'a str>,
    /// RFC 9207 `iss`.
    pub iss: Option<&'a str>,
}

impl std::fmt::Debug for UpstreamRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRedirect").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UpstreamOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LoggedIn { user, auth_time } => f
                .debug_struct("LoggedIn")
                .field("user", &user.id)
                .field("auth_time", auth_time)
                .finish(),
            Self::LinkNeeded { upstream_name, .. } => f
                .debug_struct("LinkNeeded")
                .field("upstream_name", upstream_name)
                .finish_non_exhaustive(),
        }
    }
}

impl std::fmt::Debug for CallbackAnswer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackAnswer")
            .field("error", &self.error)
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Whether the password form is offered and password logins accepted (`local_login`).
    pub fn local_login(&self) -> bool {
        self.config.local_login
    }

    /// The upstreams' ids and display names, for the login page.
    pub fn upstream_buttons(&self) -> Vec<(String, String)> {
        self.upstreams.buttons()
    }

    /// Our callback URL, registered at every upstream.
    pub fn upstream_callback_url(&self) -> String {
        self.url("/upstream/callback")
    }

    /// Starts a login at the upstream `upstream_id` for `purpose` — for [`Purpose::Authorize`],
    /// the waiting authorization request `params`. A request with `prompt=login` asks the
    /// upstream for a new login too.
    pub async fn start_upstream_login(
        &self,
        upstream_id: &str,
        purpose: Purpose,
        params: HashMap<String, String>,
    ) -> Result<UpstreamRedirect> {
        let upstream = self
            .upstreams
            .get(upstream_id)
            .ok_or_else(|| Error::invalid_request(format!("no upstream {upstream_id:?}")))?;
        if let Purpose::Link { user_id, .. } = &purpose
            && upstream_links::of_user(self.store(), user_id)?
                .iter()
                .any(|l| l.upstream == upstream.id())
        {
            return Err(Error::invalid_request(format!(
                "your account is already linked to a {} identity; unlink it first",
                upstream.config.display_name
            )));
        }
        let freshness = Freshness::of(&params);
        let waiting: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();
        if waiting > MAX_WAITING_REQUEST {
            return Err(Error::invalid_request(format!(
                "the authorization request's parameters exceed {MAX_WAITING_REQUEST} bytes"
            )));
        }
        let now = self.now();
        let metadata = upstream.metadata(now).await?;
        let state = proto::random::token(256);
        let pkce = proto::pkce::Pkce::new();
        let login = UpstreamLogin {
            upstream: upstream.id().to_owned(),
            nonce: proto::random::token(128),
            code_verifier: pkce.verifier,
            params,
            expires_at: now + LOGIN_TTL,
            purpose,
        };
        let mut location = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| Error::upstream_unavailable(format!("authorization_endpoint: {e}")))?;
        {
            let mut query = location.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &upstream.config.client_id)
                .append_pair("redirect_uri", &self.upstream_callback_url())
                .append_pair("scope", upstream.config.scopes())
                .append_pair("state", &state);
            // A nonce belongs to OpenID Connect (an OAuth 2.0 server may refuse one).
            if upstream.config.kind == UpstreamKind::Oidc {
                query.append_pair("nonce", &login.nonce);
            }
            if upstream.config.pkce {
                query
                    .append_pair("code_challenge", &pkce.challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            if upstream.config.kind == UpstreamKind::Oidc {
                if freshness.new_login {
                    query.append_pair("prompt", "login");
                }
                if let Some(max_age) = freshness.upstream_max_age() {
                    query.append_pair("max_age", &max_age.to_string());
                }
            }
        }
        upstream_logins::insert(self.store(), &state, &login)?;
        Ok(UpstreamRedirect {
            state,
            location: location.into(),
        })
    }

    /// Takes the login of `state` (once), if `browser_state` — the state in the cookie of the
    /// browser at the callback — is the same: a callback from another browser, an unknown,
    /// used or expired state are refused.
    pub fn take_upstream_login(
        &self,
        state: Option<&str>,
        browser_state: Option<&str>,
    ) -> Result<UpstreamLogin> {
        let Some(state) = state.filter(|s| !s.is_empty()) else {
            return Err(Error::invalid_request(
                "the identity provider's answer has no state",
            ));
        };
        if !browser_state.is_some_and(|b| constant_time_eq(b.as_bytes(), state.as_bytes())) {
            return Err(Error::invalid_request(
                "state mismatch: this answer belongs to a login this browser did not start",
            ));
        }
        upstream_logins::take(self.store(), state)?
            .filter(|login| login.expires_at >= self.now())
            .ok_or_else(|| {
                Error::invalid_request(
                    "this login is unknown, expired or was already used; start again from the application",
                )
            })
    }

    /// The local user of the upstream's `answer` to `login`: the code exchanged, the identity
    /// verified, the account found or created (or a link to make first). Audited either way.
    pub async fn finish_upstream_login(
        &self,
        login: &UpstreamLogin,
        answer: CallbackAnswer<'_>,
    ) -> Result<UpstreamOutcome> {
        let outcome = self.upstream_user(login, answer).await;
        match &outcome {
            Ok(Verified::LinkNeeded { .. }) => self.audit.record(
                self.now(),
                "upstream.link_pending",
                serde_json::json!({"upstream": login.upstream}),
            ),
            Ok(Verified::User(user, created, _)) => self.audit.record(
                self.now(),
                "login.succeeded",
                serde_json::json!({"user": user.id, "handle": user.handle,
                                   "upstream": login.upstream, "created": created}),
            ),
            Err(e) => {
                let (error, description) = e.authorization_error();
                self.audit.record(
                    self.now(),
                    "login.failed",
                    serde_json::json!({"upstream": login.upstream, "error": error,
                                       "description": description}),
                );
            }
        }
        outcome.map(|verified| match verified {
            Verified::User(user, _, auth_time) => UpstreamOutcome::LoggedIn { user, auth_time },
            Verified::LinkNeeded {
                ticket,
                upstream_name,
            } => UpstreamOutcome::LinkNeeded {
                ticket,
                upstream_name,
            },
        })
    }

    async fn upstream_user(
        &self,
        login: &UpstreamLogin,
        answer: CallbackAnswer<'_>,
    ) -> Result<Verified> {
        let upstream = self.upstreams.get(&login.upstream).ok_or_else(|| {
            Error::upstream_unavailable(format!("the upstream {:?} is gone", login.upstream))
        })?;
        let name = &upstream.config.display_name;
        if let Some(error) = answer.error {
            return Err(Error::upstream_denied(format!(
                "{name} refused the login ({})",
                printable(error)
            )));
        }
        let now = self.now();
        let metadata = upstream.metadata(now).await?;
        let issuer = upstream.issuer();
        match answer.iss {
            Some(iss) if iss != issuer => {
                return Err(Error::upstream_denied(format!(
                    "the answer names another issuer than {name}'s"
                )));
            }
            None if metadata.authorization_response_iss_parameter_supported => {
                return Err(Error::upstream_denied(format!(
                    "{name}'s answer lacks its iss (RFC 9207)"
                )));
            }
            _ => {}
        }
        let code = answer
            .code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::upstream_denied(format!("{name}'s answer has no code")))?;
        let callback = self.upstream_callback_url();
        let exchange = CodeExchange {
            code,
            redirect_uri: &callback,
            code_verifier: upstream.config.pkce.then_some(login.code_verifier.as_str()),
        };
        let tokens = upstream
            .exchange_code(&metadata.token_endpoint, &exchange, now)
            .await?;
        let identity = self
            .verified_identity(&upstream, &metadata, &login.nonce, &tokens, now)
            .await?;
        let auth_time = identity
            .claims
            .get("auth_time")
            .and_then(serde_json::Value::as_i64);
        Freshness::of(&login.params)
            .check(
                auth_time,
                login.expires_at - LOGIN_TTL,
                now,
                self.config.clock_skew,
            )
            .map_err(|why| Error::upstream_denied(format!("{name} gave no fresh login: {why}")))?;
        // The login's time is the upstream's, when it says (never later than now).
        let logged_in_at = auth_time.map(|at| at.min(now));
        if let Purpose::Link {
            user_id,
            session_id,
        } = &login.purpose
        {
            self.require_live_session(user_id, session_id.as_deref())?;
            let user = self.link_to_account(&upstream, &identity.subject, user_id)?;
            let user = self.sync_authorization(&upstream.source(), &identity, user)?;
            self.import_visas(&upstream, &identity, &user.id)?;
            self.keep_upstream_tokens(&upstream, &user.id, &tokens)?;
            return Ok(Verified::User(user, false, logged_in_at));
        }
        match self.account_of(&upstream.source(), &identity)? {
            Resolution::Account(account) => {
                let Account { user, created } = *account;
                let user = self.sync_authorization(&upstream.source(), &identity, user)?;
                self.import_visas(&upstream, &identity, &user.id)?;
                self.keep_upstream_tokens(&upstream, &user.id, &tokens)?;
                Ok(Verified::User(user, created, logged_in_at))
            }
            Resolution::LinkFirst => {
                let ticket = self.park_link(&upstream, &identity, login, &tokens)?;
                Ok(Verified::LinkNeeded {
                    ticket,
                    upstream_name: name.clone(),
                })
            }
        }
    }
}

/// A verified login: the user (whether it was created now, and when the upstream says the user
/// logged in), or a link to make first.
enum Verified {
    User(User, bool, Option<UnixTime>),
    LinkNeeded {
        ticket: String,
        upstream_name: String,
    },
}
