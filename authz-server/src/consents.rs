//! Consent (OIDC Core §3.1.2.4): third-party clients get codes only for scopes the user granted
//! them. The consent page lists what each scope releases; the user may withhold the optional
//! ones (every scope but [`REQUIRED_SCOPES`]), and a code then carries only the rest. Grants and
//! withheld scopes are remembered per user and client (a request for the same scopes asks
//! nothing and releases nothing withheld) and can be withdrawn, which voids what the client was
//! granted for the user until then and makes the next authorization ask again; between the
//! login and the user's answer the authorization waits under a single-use ticket. The records
//! are kept by [`crate::store::consents`].

use std::collections::HashMap;

use proto::clock::UnixTime;

pub use crate::store::consents::{Consent, Ticket};

use crate::error::Result;
use crate::provider::Provider;
use crate::sessions::Authentication;
use crate::store::users::User;
use crate::store::{self, Store};

/// How long the consent page may stay open, in seconds.
pub const TICKET_TTL: i64 = 600;

/// Scopes the consent page does not let the user withhold: without `openid` the request is not
/// an OpenID request at all (withholding it is denying).
pub const REQUIRED_SCOPES: [&str; 1] = ["openid"];

/// Whether the user already answered for every scope of `scope` — granted it or withheld it —
/// so nothing needs asking.
pub fn covers(store: &dyn Store, user_id: &str, client_id: &str, scope: &str) -> Result<bool> {
    let Some(consent) = store::consents::get(store, user_id, client_id)? else {
        return Ok(false);
    };
    Ok(crate::scopes::split(scope).all(|s| {
        consent
            .scopes
            .iter()
            .chain(&consent.withheld)
            .any(|c| c == s)
    }))
}

/// `scope` without what the user withheld from the client.
pub fn released(store: &dyn Store, user_id: &str, client_id: &str, scope: &str) -> Result<String> {
    let withheld = store::consents::get(store, user_id, client_id)?
        .map(|c| c.withheld)
        .unwrap_or_default();
    Ok(crate::scopes::split(scope)
        .filter(|s| !withheld.iter().any(|w| w == s))
        .collect::<Vec<_>>()
        .join(" "))
}

/// The user's answer on the consent page, for the requested `scope`: the optional scopes the
/// user left ticked, or `None` when the answer made no choice (everything requested allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Granted scopes, in the request's order.
    pub granted: Vec<String>,
    /// Withheld scopes.
    pub withheld: Vec<String>,
}

impl Choice {
    /// What allowing `scope` with `ticked` optional scopes (`None`: all of them) grants:
    /// the required scopes always, an optional one when ticked; a ticked scope that was not
    /// requested counts for nothing.
    pub fn of(scope: &str, ticked: Option<&[String]>) -> Self {
        let (granted, withheld) = crate::scopes::split(scope)
            .map(str::to_owned)
            .partition(|s| {
                REQUIRED_SCOPES.contains(&s.as_str())
                    || ticked.is_none_or(|ticked| ticked.iter().any(|t| t == s))
            });
        Self { granted, withheld }
    }

    /// The granted scopes as a scope string.
    pub fn scope(&self) -> String {
        self.granted.join(" ")
    }
}

/// Records an answer: the granted scopes added to earlier grants (no longer withheld), the
/// withheld ones remembered (no longer granted). Durable on return.
pub fn grant(
    store: &dyn Store,
    user_id: &str,
    client_id: &str,
    choice: &Choice,
    now: UnixTime,
) -> Result<()> {
    let mut consent = store::consents::get(store, user_id, client_id)?.unwrap_or(Consent {
        client_id: client_id.to_owned(),
        scopes: Vec::new(),
        withheld: Vec::new(),
        granted_at: now,
    });
    let note = |into: &mut Vec<String>, from: &mut Vec<String>, scopes: &[String]| {
        for s in scopes {
            from.retain(|f| f != s);
            if !into.contains(s) {
                into.push(s.clone());
            }
        }
    };
    note(&mut consent.scopes, &mut consent.withheld, &choice.granted);
    note(&mut consent.withheld, &mut consent.scopes, &choice.withheld);
    consent.granted_at = now;
    store::consents::put(store, user_id, &consent)?;
    store::flush(store)
}

/// What one requested scope would release to the client, for the consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The scope.
    pub scope: String,
    /// Whether the user may withhold it.
    pub optional: bool,
    /// The user's claims it releases (name, value as shown), `sub` left out.
    pub claims: Vec<(String, String)>,
    /// The permission sources asked only when it is granted, with the claims they set.
    pub sources: Vec<(String, Vec<String>)>,
}

/// A claim's value as the consent page shows it: text as is, a list joined by commas.
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

impl Provider {
    /// What each scope of `scope` would release of `user` to a client: the claims with their
    /// values now (for `ga4gh_passport_v1`, each visa of the Passport,
    /// [`Provider::passport_preview`]) and the permission sources it lets the server ask.
    pub fn release_preview(&self, user: &User, scope: &str) -> Result<Vec<Release>> {
        crate::scopes::split(scope)
            .map(|s| {
                let mut claims: Vec<(String, String)> =
                    crate::identity::claims::user_claims(user, s)?
                        .iter()
                        .filter(|(name, _)| name.as_str() != "sub")
                        .map(|(name, value)| (name.clone(), shown(value)))
                        .collect();
                if s == crate::scopes::GA4GH_PASSPORT {
                    claims.extend(self.passport_preview(user)?);
                }
                Ok(Release {
                    scope: s.to_owned(),
                    optional: !REQUIRED_SCOPES.contains(&s),
                    claims,
                    sources: self.claims_sources.gated_by(s),
                })
            })
            .collect()
    }

    /// Which consents a token of `client_id` may see and withdraw: a first-party client's
    /// every consent of the user (`None`), a third-party client's only its own.
    pub fn consents_managed_by(&self, client_id: &str) -> Result<Option<String>> {
        let first_party = self
            .oauth_client(client_id)?
            .is_some_and(|c| c.is_first_party());
        Ok((!first_party).then(|| client_id.to_owned()))
    }

    /// The user's consents; with `only`, the consent of that client alone.
    pub fn consents_of(&self, user_id: &str, only: Option<&str>) -> Result<Vec<Consent>> {
        Ok(store::consents::list(self.store(), user_id)?
            .into_iter()
            .filter(|c| only.is_none_or(|id| id == c.client_id))
            .collect())
    }

    /// Withdraws the user's consent for a client ([`withdraw`]).
    pub fn withdraw_consent(&self, user_id: &str, client_id: &str) -> Result<bool> {
        withdraw(self.store(), user_id, client_id, self.now())
    }
}

/// Withdraws the user's consent for a client: the consent goes (the next authorization asks
/// again), and so does everything already granted to the client for the user — its access
/// tokens and refresh families issued until `now` stop working (see [`withdrawn`]). False if
/// there was no consent. Durable on return.
pub fn withdraw(store: &dyn Store, user_id: &str, client_id: &str, now: UnixTime) -> Result<bool> {
    let existed = store::consents::withdraw(store, user_id, client_id, now)?;
    store::flush(store)?;
    Ok(existed)
}

/// Whether what was granted to `client_id` for `user_id` at `granted_at` has been withdrawn
/// since.
pub fn withdrawn(
    store: &dyn Store,
    user_id: &str,
    client_id: &str,
    granted_at: UnixTime,
) -> Result<bool> {
    Ok(
        store::consents::withdrawn_at(store, user_id, client_id)?
            .is_some_and(|at| granted_at <= at),
    )
}

/// Parks an authorization (its request parameters) of the logged-in user until the user answers;
/// returns the ticket.
pub fn park(
    store: &dyn Store,
    auth: &Authentication,
    params: HashMap<String, String>,
    now: UnixTime,
) -> Result<String> {
    let id = proto::random::token(256);
    let ticket = Ticket {
        user_id: auth.user.id.clone(),
        params,
        expires_at: now + TICKET_TTL,
        auth_time: auth.auth_time,
        amr: auth.amr.clone(),
        sid: auth.session_id.clone(),
    };
    store::consents::park(store, &id, &ticket)?;
    Ok(id)
}

/// Takes a parked authorization (once); `None` if unknown or expired.
pub fn take(store: &dyn Store, id: &str, now: UnixTime) -> Result<Option<Ticket>> {
    Ok(store::consents::take_ticket(store, id)?.filter(|t| t.expires_at >= now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_choice_keeps_the_required_scopes_and_the_ticked_ones() {
        let all = Choice::of("openid profile email", None);
        assert_eq!(all.scope(), "openid profile email");
        assert!(all.withheld.is_empty());
        let some = Choice::of("openid profile email", Some(&scopes(&["email", "admin"])));
        assert_eq!(some.granted, scopes(&["openid", "email"]));
        assert_eq!(some.withheld, scopes(&["profile"]));
        let none = Choice::of("openid profile", Some(&[]));
        assert_eq!(
            (none.scope(), none.withheld),
            ("openid".to_owned(), scopes(&["profile"]))
        );
    }

    #[test]
    fn answers_are_remembered_and_a_later_answer_changes_them() {
        let (_dir, store) = store::temporary();
        let store: &dyn Store = &store;
        assert!(!covers(store, "u", "app", "openid").unwrap());
        let first = Choice::of("openid profile email", Some(&scopes(&["profile"])));
        grant(store, "u", "app", &first, 10).unwrap();
        assert!(covers(store, "u", "app", "openid email").unwrap());
        assert!(!covers(store, "u", "app", "openid roles").unwrap());
        assert_eq!(
            released(store, "u", "app", "openid profile email").unwrap(),
            "openid profile"
        );
        let second = Choice::of("openid email", None);
        grant(store, "u", "app", &second, 20).unwrap();
        assert_eq!(
            released(store, "u", "app", "openid profile email").unwrap(),
            "openid profile email"
        );
        let consent = store::consents::get(store, "u", "app").unwrap().unwrap();
        assert_eq!(consent.scopes, scopes(&["openid", "profile", "email"]));
        assert!(consent.withheld.is_empty());
        assert_eq!(
            released(store, "other", "app", "openid email").unwrap(),
            "openid email"
        );
    }
}
