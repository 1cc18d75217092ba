//! The authorization endpoint's service (`/authorize`, RFC 6749 §4.1 with PKCE): once the front
//! end has validated the request ([`AuthorizationRequest`]) and the user has logged in, a
//! first-party client gets its code at once; a third-party client only for scopes the user
//! consented to ([`crate::consents`]), asked on the consent page while the request waits under
//! a ticket. The code (256 bits; only its digest is stored) records what was granted until the
//! code grant redeems it ([`crate::grants`]).

use std::collections::HashMap;

use crate::consents::{self, Ticket};
use crate::error::{Error, Result};
use crate::identity::claims::EchoedClaims;
use crate::oauth_clients::OAuthClient;
use crate::provider::Provider;
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
    /// The request's parameters as received (the login form and a consent ticket carry them).
    pub params: HashMap<String, String>,
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
    /// Goes on with `request` for the logged-in `user`: a code, or the consent to ask for.
    pub fn authorize(&self, request: &AuthorizationRequest, user: &User) -> Result<Authorized> {
        let store = self.store();
        if request.client.consent_required
            && !consents::covers(store, &user.id, &request.client.id, &request.scope)?
        {
            let ticket = consents::park(store, &user.id, request.params.clone(), self.now())?;
            return Ok(Authorized::ConsentNeeded(ticket));
        }
        self.issue_code(request, user).map(Authorized::Code)
    }

    /// The waiting authorization of a consent ticket (once); `None` if unknown or expired.
    pub fn take_consent_ticket(&self, ticket: &str) -> Result<Option<Ticket>> {
        consents::take(self.store(), ticket, self.now())
    }

    /// The user a consent ticket was parked for (its `user_id`).
    pub fn consenting_user(&self, user_id: &str) -> Result<User> {
        store::users::get(self.store(), user_id)?
            .ok_or_else(|| Error::invalid_request("the user no longer exists"))
    }

    /// The user consented to `request`: the consent is remembered, and the code issued.
    pub fn consented(&self, request: &AuthorizationRequest, user: &User) -> Result<String> {
        consents::grant(
            self.store(),
            &user.id,
            &request.client.id,
            &request.scope,
            self.now(),
        )?;
        self.issue_code(request, user)
    }

    /// Stores what `request` grants `user` under a fresh code, durable on return.
    fn issue_code(&self, request: &AuthorizationRequest, user: &User) -> Result<String> {
        let now = self.now();
        let grant = CodeGrant {
            client_id: request.client.id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            user_id: user.id.clone(),
            code_challenge: request.code_challenge.clone(),
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            claims: request.echoed.clone(),
            dpop_jkt: request.dpop_jkt.clone(),
            auth_time: now,
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
