//! newOrder (RFC 8555 §7.4): the one place an order's [`OrderProfile`] is decided (the identity
//! policy for Wire identifiers, the name policy otherwise), its authorizations and challenges as
//! the profile plans them, reuse of valid authorizations, the pending-authorization cap, the
//! certificate profile (see [`super::profile`]); and the account's orders list.

use proto::acme::{AuthorizationStatus, ChallengeStatus, NewOrder, OrderStatus, Problem};

use super::identity::check_identifiers;
use super::names;
use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, Result};
use crate::model::{
    AuthzRecord, ChallengeKind, ChallengeRecord, Identifier, OrderProfile, OrderRecord,
};
use crate::sa::Decision;

/// A reused authorization must stay valid at least this long, in seconds.
const REUSE_MARGIN: i64 = 300;

/// Challenge tokens: 256 bits (RFC 8555 §8.1 asks for at least 128).
const TOKEN_BITS: usize = 256;

/// A new pending challenge of `kind` with its `target` (Wire challenges only).
fn new_challenge(kind: &ChallengeKind, target: Option<String>) -> ChallengeRecord {
    ChallengeRecord {
        id: proto::random::token(128),
        kind: kind.clone(),
        token: proto::random::token(TOKEN_BITS),
        status: ChallengeStatus::Pending,
        validated: None,
        error: None,
        target,
    }
}

fn parse_time(field: &str, value: Option<&String>) -> Result<Option<i64>> {
    value
        .map(|v| {
            proto::rfc3339::parse(v)
                .ok_or_else(|| Error::malformed(format!("{field} is not an RFC 3339 date-time")))
        })
        .transpose()
}

impl RegistrationAuthority {
    /// newOrder.
    pub fn new_order(
        &self,
        account: &AuthenticatedAccount,
        request: NewOrder,
    ) -> Result<OrderRecord> {
        self.rate_limits.new_order(account.id())?;
        let identifiers: Vec<Identifier> = request
            .identifiers
            .into_iter()
            .map(Identifier::from)
            .collect();
        let not_before = parse_time("notBefore", request.not_before.as_ref())?;
        let not_after = parse_time("notAfter", request.not_after.as_ref())?;
        if let (Some(nb), Some(na)) = (not_before, not_after)
            && na <= nb
        {
            return Err(Error::malformed("notAfter is not after notBefore"));
        }
        let now = self.now();
        if not_after.is_some_and(|na| na <= now) {
            return Err(Error::malformed("notAfter is in the past"));
        }
        let profile = self.profile_of(account, &identifiers)?;
        let order_id = proto::random::token(128);
        let authz_expires = now + self.config.lifetimes.order;
        // A reused authorization that expires sooner shortens the order.
        let mut expires = authz_expires;
        let mut authorization_ids = Vec::new();
        let mut fresh = Vec::new();
        for plan in profile.authorizations(&identifiers) {
            // RFC 8555 §7.1.3, "authorization reuse".
            let reused = if profile.reuses_authorizations() {
                self.sa
                    .reader()
                    .latest_authz(account.id(), &plan.identifier, plan.wildcard)?
                    .filter(|a| {
                        a.status == AuthorizationStatus::Valid && a.expires > now + REUSE_MARGIN
                    })
            } else {
                None
            };
            if let Some(previous) = reused {
                expires = expires.min(previous.expires);
                authorization_ids.push(previous.id);
                continue;
            }
            let authz = AuthzRecord {
                id: proto::random::token(128),
                account_id: account.id().to_owned(),
                order_id: order_id.clone(),
                challenges: plan
                    .challenges
                    .iter()
                    .map(|kind| new_challenge(kind, self.challenge_target(kind, &profile)))
                    .collect(),
                identifier: plan.identifier,
                wildcard: plan.wildcard,
                status: AuthorizationStatus::Pending,
                expires: authz_expires,
            };
            authorization_ids.push(authz.id.clone());
            fresh.push(authz);
        }
        self.check_pending_cap(account, fresh.len(), now)?;
        let status = if fresh.is_empty() {
            OrderStatus::Ready
        } else {
            OrderStatus::Pending
        };
        let certificate_profile =
            self.certificate_profile_for(&profile, request.profile.as_deref())?;
        let order = OrderRecord {
            id: order_id,
            account_id: account.id().to_owned(),
            status,
            expires,
            identifiers,
            not_before,
            not_after,
            authorizations: authorization_ids,
            error: None,
            certificate: None,
            replaces: request.replaces.clone(),
            certificate_profile,
            profile,
        };
        if let Some(cert_id) = &order.replaces {
            self.claim_replacement(account, &order, cert_id)?;
        }
        self.sa.create_order(&order, &fresh)?;
        Ok(order)
    }

    /// What an order for `identifiers` certifies: a Wire identity when any of them is a Wire
    /// type (under the identity policy), names otherwise (under the name policy).
    fn profile_of(
        &self,
        account: &AuthenticatedAccount,
        identifiers: &[Identifier],
    ) -> Result<OrderProfile> {
        if identifiers.iter().any(|i| i.kind.is_wire()) {
            return Ok(OrderProfile::Identity(check_identifiers(
                identifiers,
                &self.config.domains,
            )?));
        }
        Ok(OrderProfile::Names(names::check_order(
            identifiers,
            &self.config.standard_orders,
            account.record().external_account_binding.is_some(),
            |ip| self.va.permits(ip),
        )?))
    }

    /// Refuses an order whose `fresh` pending authorizations would take the account past its
    /// cap, with a `Retry-After` of when the first pending one expires. (Two orders created at
    /// the same instant may both pass; the cap bounds storage, not a budget.)
    fn check_pending_cap(
        &self,
        account: &AuthenticatedAccount,
        fresh: usize,
        now: i64,
    ) -> Result<()> {
        let cap = self.config.caps.pending_authorizations_per_account;
        if fresh == 0 {
            return Ok(());
        }
        let pending = self.sa.reader().pending_authz_expiries(account.id(), now)?;
        if pending.len() + fresh <= cap {
            return Ok(());
        }
        let first_expiry = pending.iter().min().copied().unwrap_or(now);
        Err(Error::RateLimited {
            detail: format!(
                "this account has {} pending authorizations and may have at most {cap}; \
                 complete or deactivate some, or wait for them to expire",
                pending.len()
            ),
            retry_after_secs: u64::try_from(first_expiry - now).unwrap_or(0).max(1),
        })
    }

    /// Makes the order `id` invalid with `error` if it is still `while_in` (a refused answer
    /// invalidates a pending order, a failed issuance a processing one).
    pub(super) fn invalidate_order(
        &self,
        id: &str,
        while_in: OrderStatus,
        error: &Problem,
    ) -> Result<()> {
        self.sa.transition(id, |stored: Option<&OrderRecord>| {
            Ok(match stored {
                Some(order) if order.status == while_in => {
                    let invalid = OrderRecord {
                        status: OrderStatus::Invalid,
                        error: Some(error.clone()),
                        ..order.clone()
                    };
                    Decision::Write(invalid, ())
                }
                _ => Decision::Keep(()),
            })
        })
    }

    /// The ids of `account`'s orders that are not `invalid` (expiry applied): RFC 8555
    /// §7.1.2.1 says the list SHOULD NOT include invalid orders.
    pub fn orders_of(&self, account: &AuthenticatedAccount) -> Result<Vec<String>> {
        let mut listed = Vec::new();
        for id in self.sa.reader().order_ids_of(account.id())? {
            match self.order(account, &id) {
                Ok(order) if order.status != OrderStatus::Invalid => listed.push(id),
                // Invalid, or removed by the sweep since the ids were read.
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(listed)
    }
}
