//! The device authorization grant of RFC 8628, on the authorization side: a device code (256
//! random bits, stored by digest) and a short user code (8 letters from an alphabet without
//! vowels or look-alikes, shown as `XXXX-XXXX`), approved or denied by the user on the
//! verification page. A third-party client is approved only from a page that showed exactly
//! its requested scopes, or when the user consented to them before, and the approval is
//! remembered as consent, as at `/authorize`. The device polls at the token endpoint
//! ([`crate::grants`]); the records are kept by [`crate::store::device_codes`].

use proto::clock::UnixTime;

pub use crate::store::device_codes::{Decision, DeviceGrant, StoredDeviceGrant};

use crate::error::{Error, Result};
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;
use crate::sessions::Authentication;
use crate::store::{self, Store};

/// Letters of user codes (RFC 8628 §6.1: no vowels, no ambiguous characters).
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Seconds between polls a client must keep (RFC 8628 §3.2 default).
pub const INTERVAL: i64 = 5;
/// How long a device code lives, in seconds.
pub const DEVICE_CODE_TTL: i64 = 600;

/// `XXXX-XXXX` for display.
pub fn display(user_code: &str) -> String {
    format!("{}-{}", &user_code[..4], &user_code[4..])
}

/// Upper-cases and drops everything but alphabet letters (users type dashes and spaces).
pub fn normalize(typed: &str) -> String {
    typed
        .to_ascii_uppercase()
        .bytes()
        .filter(|b| ALPHABET.contains(b))
        .map(char::from)
        .collect()
}

/// A device authorization just started.
#[derive(Debug)]
pub struct Started {
    /// The device code (the device polls with it).
    pub device_code: String,
    /// The user code, normalised.
    pub user_code: String,
    /// The scope granted to the client.
    pub scope: String,
}

/// What became of the user's answer on the verification page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Recorded.
    Decided,
    /// Not recorded: the user must first see what the client asks for.
    NeedsReview,
    /// Not recorded: the authorization was decided (or removed) meanwhile.
    AlreadyDecided,
}

impl Provider {
    /// `POST /device_authorization`: starts an authorization for `client`, asking for
    /// `requested` scopes (only scopes registered for the client, `invalid_scope` otherwise).
    /// Durable on return.
    pub fn start_device_authorization(
        &self,
        client: &IdentifiedClient,
        requested: &str,
        now: UnixTime,
    ) -> Result<Started> {
        let scope = crate::scopes::grant(requested, &client.client, self.device_scope())?;
        let device_code = proto::random::token(256);
        let user_code: String = proto::random::bytes(8)
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        let grant = DeviceGrant {
            client_id: client.client.id.clone(),
            scope: scope.clone(),
            user_code: user_code.clone(),
            decision: Decision::Pending,
            expires_at: now + DEVICE_CODE_TTL,
            last_poll: None,
            interval: INTERVAL,
        };
        let store = self.store();
        if !store::device_codes::insert(store, &device_code, &grant)? {
            return Err(Error::Internal("user code collision; retry".into()));
        }
        store::flush(store)?;
        Ok(Started {
            device_code,
            user_code,
            scope,
        })
    }

    /// The authorization a typed user code names, while it waits for the user's decision.
    pub fn pending_device_authorization(
        &self,
        typed: &str,
        now: UnixTime,
    ) -> Result<Option<StoredDeviceGrant>> {
        Ok(
            store::device_codes::by_user_code(self.store(), &normalize(typed))?.filter(|stored| {
                let grant = stored.value();
                grant.decision == Decision::Pending && grant.expires_at >= now
            }),
        )
    }

    /// Records the answer of the user of `auth`, who logged in on the verification page (or is
    /// signed in there), to a pending authorization; `shown` is the scope the page showed, if
    /// it showed one.
    pub fn answer_device_authorization(
        &self,
        pending: &StoredDeviceGrant,
        auth: &Authentication,
        approve: bool,
        shown: Option<&str>,
        now: UnixTime,
    ) -> Result<Answer> {
        let store = self.store();
        let user = &auth.user;
        let grant = pending.value();
        let first_party =
            crate::oauth_clients::get(store, &grant.client_id)?.is_some_and(|c| c.is_first_party());
        if approve && !first_party && needs_review(store, grant, &user.id, shown)? {
            return Ok(Answer::NeedsReview);
        }
        let decision = if approve {
            Decision::Approved {
                user_id: user.id.clone(),
                auth_time: Some(auth.auth_time),
                amr: auth.amr.clone(),
            }
        } else {
            Decision::Denied
        };
        if !decide(store, pending, decision)? {
            return Ok(Answer::AlreadyDecided);
        }
        // Remembered like a consent given at `/authorize`.
        if approve && !first_party {
            let everything = crate::consents::Choice::of(&grant.scope, None);
            crate::consents::grant(store, &user.id, &grant.client_id, &everything, now)?;
        }
        tracing::info!(client_id = %grant.client_id, user = %user.id, approve, "device authorization decided");
        Ok(Answer::Decided)
    }
}

/// Whether approving `grant` of a third-party (or no longer registered) client needs the user
/// to see its scopes first: the page did not show exactly these scopes, and the user has not
/// granted them before (an answer that withheld one of them is no consent to it: approving
/// would release what the user said no to).
fn needs_review(
    store: &dyn Store,
    grant: &DeviceGrant,
    user_id: &str,
    shown: Option<&str>,
) -> Result<bool> {
    if shown == Some(grant.scope.as_str()) {
        return Ok(false);
    }
    let answered = crate::consents::covers(store, user_id, &grant.client_id, &grant.scope)?;
    let withheld =
        crate::consents::released(store, user_id, &grant.client_id, &grant.scope)? != grant.scope;
    Ok(!answered || withheld)
}

/// Records the user's decision on an authorization that is still pending, by
/// compare-and-swap; false when it is not (any more). Durable on return.
fn decide(store: &dyn Store, pending: &StoredDeviceGrant, decision: Decision) -> Result<bool> {
    let Some(current) = store::reread(store, pending)? else {
        return Ok(false);
    };
    if current.value().decision != Decision::Pending {
        return Ok(false);
    }
    let mut next = current.value().clone();
    next.decision = decision;
    let swapped = store::replace(store, &current, &next)?;
    store::flush(store)?;
    Ok(swapped)
}
