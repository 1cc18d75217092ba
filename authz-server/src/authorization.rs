//! The authorization endpoint's service (`/authorize`, RFC 6749 §4.1 with PKCE): once the front
//! end has validated the request ([`AuthorizationRequest`]) and the user has logged in, a
//! first-party client gets its code at once; a third-party client only for scopes the user
//! consented to ([`crate::consents`]), asked on the consent page while the request waits under
//! a ticket. The code (256 bits; only its digest is stored) records what was granted — and
//! the [`Authentication`] it was granted on: `auth_time`, `amr`, the session — until the code
//! grant redeems it ([`crate::grants`]). How the request wants the user asked (`prompt`,
//! `max_age`, OIDC Core §3.1.2.1) decides whether a browser session may stand in for a login.

use std::collections::HashMap;

use proto::clock::UnixTime;

use crate::consents::{self, Ticket};
use crate::error::{Error, Result};
use crate::identity::claims::EchoedClaims;
use crate::oauth_clients::OAuthClient;
use crate::provider::Provider;
use crate::sessions::Authentication;
use crate::store::codes::CodeGrant;
use crate::store::users::User;
use crate::store::{self, Store};

/// An authorization request the front end validated.
#[derive(Debug)]
pub struct AuthorizationRequest {
    /// The client.
    pub client: OAuthClient,
    /// Its registered redirect URI the request named.
    pub redirect_uri: String,
    /// The client's `state`, returned with the answer.
    pub state: Option<String>,
    /// The scope to grant (`openid` when absent), normalised: single spaces, each once.
    pub scope: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// OIDC `nonce`.
    pub nonce: Option<String>,
    /// What the `claims` parameter asked to see echoed in the ID token.
    pub echoed: EchoedClaims,
    /// `dpop_jkt` (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`: the most seconds since the user's login a session may stand in for one.
    pub max_age: Option<i64>,
    /// The request's parameters as received (the login form and a consent ticket carry them).
    pub params: HashMap<String, String>,
}

/// The `prompt` parameter (OIDC Core §3.1.2.1): `none`, or any of `login`, `consent`,
/// `select_account` (`select_account` asks for a login: there is one account per session).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: no page may be shown; without a session `login_required`, without consent
    /// `consent_required`.
    pub none: bool,
    /// `login` (or `select_account`): the user logs in again whatever the session.
    pub login: bool,
    /// `consent`: a third-party client's consent is asked again.
    pub consent: bool,
}

impl Prompt {
    /// The prompt values of a request; `none` with another value, or an unknown value, is an
    /// error description.
    pub fn parse(value: Option<&str>) -> std::result::Result<Self, String> {
        let mut prompt = Self::default();
        for v in crate::scopes::split(value.unwrap_or("")) {
            match v {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                other => return Err(format!("prompt value {other:?} is not supported")),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err("prompt=none cannot be combined with other values".into());
        }
        Ok(prompt)
    }
}

impl AuthorizationRequest {
    /// The `prompt` of a request's parameters (none when unreadable: the request itself is
    /// refused for it when validated).
    pub fn prompt_of(params: &HashMap<String, String>) -> Prompt {
        Prompt::parse(params.get("prompt").map(String::as_str)).unwrap_or_default()
    }

    /// Whether the login a session holds may stand in for a new one: not with `prompt=login`,
    /// nor when it is older than `max_age`.
    pub fn accepts_session(&self, auth: &Authentication, now: UnixTime) -> bool {
        !self.prompt.login
            && self
                .max_age
                .is_none_or(|max_age| now - auth.auth_time <= max_age)
    }
}

/// What follows a login.
#[derive(Debug)]
pub enum Authorized {
    /// The authorization code, for the redirect back to the client.
    Code(String),
    /// The user must consent first; the request waits under this ticket.
    ConsentNeeded(String),
}

impl Provider {
    /// Goes on with `request` after the login `auth`: a code, or the consent to ask for
    /// (`consent_required` instead with `prompt=none`).
    pub fn authorize(
        &self,
        request: &AuthorizationRequest,
        auth: &Authentication,
    ) -> Result<Authorized> {
        let store = self.store();
        let user = &auth.user;
        let scope = if request.client.consent_required {
            consents::released(store, &user.id, &request.client.id, &request.scope)?
        } else {
            request.scope.clone()
        };
        if request.client.consent_required
            && (request.prompt.consent
                || scope.is_empty()
                || !consents::covers(store, &user.id, &request.client.id, &request.scope)?)
        {
            if request.prompt.none {
                return Err(Error::OAuth {
                    code: "consent_required",
                    description: "the user has not consented to this client's request".into(),
                });
            }
            let ticket = consents::park(store, auth, request.params.clone(), self.now())?;
            return Ok(Authorized::ConsentNeeded(ticket));
        }
        self.issue_code(request, &scope, auth).map(Authorized::Code)
    }

    /// The waiting authorization of a consent ticket (once); `None` if unknown or expired.
    pub fn take_consent_ticket(&self, ticket: &str) -> Result<Option<Ticket>> {
        consents::take(self.store(), ticket, self.now())
    }

    /// The login a consent ticket was parked for.
    pub fn consenting_user(&self, ticket: &Ticket) -> Result<Authentication> {
        let user: User = store::users::get(self.store(), &ticket.user_id)?
            .ok_or_else(|| Error::invalid_request("the user no longer exists"))?;
        // A consent asked inside a session is answered only while the session lives.
        if ticket.sid.is_some() {
            self.require_live_session(&user.id, ticket.sid.as_deref())
                .map_err(|_| Error::invalid_request("your session ended; sign in again"))?;
        }
        Ok(Authentication {
            user,
            auth_time: ticket.auth_time,
            amr: ticket.amr.clone(),
            session_id: ticket.sid.clone(),
        })
    }

    /// The user consented to `request` with `choice` (what was granted and withheld): the
    /// answer is remembered, and the code issued for the granted scopes.
    pub fn consented(
        &self,
        request: &AuthorizationRequest,
        auth: &Authentication,
        choice: &consents::Choice,
    ) -> Result<String> {
        consents::grant(
            self.store(),
            &auth.user.id,
            &request.client.id,
            choice,
            self.now(),
        )?;
        self.audit.record(
            self.now(),
            "consent.granted",
            serde_json::json!({"user": auth.user.id, "client": request.client.id,
                               "granted": choice.granted, "withheld": choice.withheld}),
        );
        self.issue_code(request, &choice.scope(), auth)
    }

    /// Stores what `request` grants (`scope`, the request's or less) after the login `auth`
    /// under a fresh code, durable on return.
    fn issue_code(
        &self,
        request: &AuthorizationRequest,
        scope: &str,
        auth: &Authentication,
    ) -> Result<String> {
        let now = self.now();
        let user = &auth.user;
        let grant = CodeGrant {
            client_id: request.client.id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            user_id: user.id.clone(),
            code_challenge: request.code_challenge.clone(),
            scope: scope.to_owned(),
            nonce: request.nonce.clone(),
            claims: request.echoed.clone(),
            dpop_jkt: request.dpop_jkt.clone(),
            auth_time: auth.auth_time,
            amr: auth.amr.clone(),
            sid: auth.session_id.clone(),
            expires_at: now + self.config.lifetimes.authorization_code,
            redeemed: None,
            refresh_family: None,
        };
        create_code(self.store(), &grant)
    }
}

/// Stores a grant and returns its code (256 bits), durable on return.
pub fn create_code(store: &dyn Store, grant: &CodeGrant) -> Result<String> {
    let code = proto::random::token(256);
    store::codes::insert(store, &code, grant)?;
    store::flush(store)?;
    Ok(code)
}
