//! The device authorization grant (RFC 8628): a device code (256 random bits, stored by
//! digest) and a short user code (8 letters from an alphabet without vowels or look-alikes,
//! shown as `XXXX-XXXX`), approved or denied by the user on the verification page, and polled
//! at the token endpoint with `authorization_pending`, `slow_down`, `expired_token` and
//! `access_denied`. A code yields tokens once.

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{Store, trees};

/// Letters of user codes (RFC 8628 §6.1: no vowels, no ambiguous characters).
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Seconds between polls a client must keep (RFC 8628 §3.2 default).
pub const INTERVAL: i64 = 5;

/// Where an authorization stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Waiting for the user.
    Pending,
    /// Approved by this user.
    Approved {
        /// The user's id.
        user_id: String,
        /// When the user signed in on the verification page to approve (the ID token's
        /// `auth_time`); absent in records stored before it was kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth_time: Option<UnixTime>,
    },
    /// Denied.
    Denied,
}

/// A pending device authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceGrant {
    /// The client.
    pub client_id: String,
    /// Requested scope.
    pub scope: String,
    /// The user code (normalised, no dash).
    pub user_code: String,
    /// Decision.
    pub decision: Decision,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Last poll.
    pub last_poll: Option<UnixTime>,
    /// Current polling interval.
    pub interval: i64,
}

fn key(device_code: &str) -> String {
    proto::b64::encode(Sha256::digest(device_code.as_bytes()))
}

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

/// Starts an authorization; returns (device code, user code).
pub fn start(
    store: &dyn Store,
    client_id: &str,
    scope: &str,
    now: UnixTime,
    ttl: i64,
) -> Result<(String, String)> {
    let device_code = proto::random::token(256);
    let user_code: String = proto::random::bytes(8)
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    let grant = DeviceGrant {
        client_id: client_id.to_owned(),
        scope: scope.to_owned(),
        user_code: user_code.clone(),
        decision: Decision::Pending,
        expires_at: now + ttl,
        last_poll: None,
        interval: INTERVAL,
    };
    if !store.insert_new_json(trees::USER_CODES, &user_code, &key(&device_code))? {
        return Err(Error::Internal("user code collision; retry".into()));
    }
    store.put_json(trees::DEVICE_CODES, &key(&device_code), &grant)?;
    store.flush()?;
    Ok((device_code, user_code))
}

/// The pending authorization of a user code (for the verification page).
pub fn by_user_code(
    store: &dyn Store,
    user_code: &str,
    now: UnixTime,
) -> Result<Option<(String, DeviceGrant)>> {
    let Some(k) = store.get_json::<String>(trees::USER_CODES, &normalize(user_code))? else {
        return Ok(None);
    };
    let grant = store.get_json::<DeviceGrant>(trees::DEVICE_CODES, &k)?;
    Ok(grant
        .filter(|g| g.decision == Decision::Pending && g.expires_at >= now)
        .map(|g| (k, g)))
}

/// Records the user's decision on a pending authorization (compare-and-swap).
pub fn decide(store: &dyn Store, grant_key: &str, decision: Decision) -> Result<bool> {
    let Some(stored) = store.get_versioned::<DeviceGrant>(trees::DEVICE_CODES, grant_key)? else {
        return Ok(false);
    };
    if stored.value.decision != Decision::Pending {
        return Ok(false);
    }
    let mut next = stored.value.clone();
    next.decision = decision;
    let swapped = store.replace_json(trees::DEVICE_CODES, grant_key, &stored, &next)?;
    store.flush()?;
    Ok(swapped)
}

fn poll_error(code: &'static str, description: &str) -> Error {
    Error::OAuth {
        code,
        description: description.into(),
    }
}

/// A poll of the token endpoint: the approved grant (consumed), or the RFC 8628 §3.5 error.
pub fn poll(
    store: &dyn Store,
    device_code: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<DeviceGrant> {
    let k = key(device_code);
    let stored = store
        .get_versioned::<DeviceGrant>(trees::DEVICE_CODES, &k)?
        .ok_or_else(|| Error::invalid_grant("unknown device code"))?;
    let grant = stored.value.clone();
    if grant.client_id != client_id {
        return Err(Error::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    if grant.expires_at < now {
        return Err(poll_error("expired_token", "the device code expired"));
    }
    match &grant.decision {
        Decision::Denied => Err(poll_error("access_denied", "the user denied the request")),
        Decision::Approved { .. } => {
            if store.take(trees::DEVICE_CODES, &k)?.is_none() {
                return Err(Error::invalid_grant("the device code was already used"));
            }
            store.take(trees::USER_CODES, &grant.user_code)?;
            Ok(grant)
        }
        Decision::Pending => {
            let too_fast = grant.last_poll.is_some_and(|t| now - t < grant.interval);
            let mut next = grant.clone();
            next.last_poll = Some(now);
            if too_fast {
                next.interval += INTERVAL;
            }
            store.replace_json(trees::DEVICE_CODES, &k, &stored, &next)?;
            if too_fast {
                Err(poll_error("slow_down", "poll less often"))
            } else {
                Err(poll_error(
                    "authorization_pending",
                    "the user has not decided yet",
                ))
            }
        }
    }
}
