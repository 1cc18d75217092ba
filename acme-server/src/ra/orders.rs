//! Orders and authorizations (RFC 8555 §7.4, §7.5): creation under the identity policy, reads
//! restricted to the owning account, and expiry applied by compare-and-swap when observed.

use proto::acme::{
    AuthorizationStatus, ChallengeStatus, DNS_01, HTTP_01, Identifier, NewOrder, OrderStatus,
    TLS_ALPN_01, WIRE_DPOP_01, WIRE_OIDC_01,
};
use server_kit::store::Versioned;

use super::identity::check_identifiers;
use super::names::{self, Name};
use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::ca::{CertificateAuthority, Hierarchy};
use crate::config::{DEVICE_ID_PLACEHOLDER, IDENTITY_PROFILE};
use crate::error::{Error, ProblemType, Result, status_name};
use crate::sa::{AuthzRecord, CertificateRecord, ChallengeRecord, OrderRecord};

/// A reused authorization must stay valid at least this long, in seconds.
const REUSE_MARGIN: i64 = 300;

/// Challenge tokens: 256 bits (RFC 8555 §8.1 asks for at least 128).
const TOKEN_BITS: usize = 256;

fn parse_time(field: &str, value: Option<&String>) -> Result<Option<i64>> {
    value
        .map(|v| {
            proto::rfc3339::parse(v)
                .ok_or_else(|| Error::malformed(format!("{field} is not an RFC 3339 date-time")))
        })
        .transpose()
}

fn challenge(kind: &str, target: Option<String>) -> ChallengeRecord {
    ChallengeRecord {
        id: proto::random::token(128),
        kind: kind.into(),
        token: proto::random::token(TOKEN_BITS),
        status: ChallengeStatus::Pending,
        validated: None,
        error: None,
        target,
    }
}

impl RegistrationAuthority {
    /// newOrder.
    pub fn new_order(
        &self,
        account: &AuthenticatedAccount,
        request: NewOrder,
    ) -> Result<OrderRecord> {
        self.rate_limits.new_order(account.id())?;
        let is_wire = request
            .identifiers
            .iter()
            .any(|i| i.kind.starts_with("wireapp-"));
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
        let expires = now + self.config.lifetimes.order;
        let order_id = proto::random::token(128);
        let authz = |identifier: Identifier, wildcard: bool, challenges: Vec<ChallengeRecord>| {
            AuthzRecord {
                id: proto::random::token(128),
                account_id: account.id().to_owned(),
                order_id: order_id.clone(),
                identifier,
                wildcard,
                status: AuthorizationStatus::Pending,
                expires,
                challenges,
            }
        };
        let (authzs, wire): (Vec<AuthzRecord>, _) = if is_wire {
            let identity = check_identifiers(&request.identifiers, &self.config.domains)?;
            let dpop_target = self
                .config
                .wire_dpop
                .target
                .replace(DEVICE_ID_PLACEHOLDER, identity.client_id().device());
            let authzs = request
                .identifiers
                .iter()
                .map(|identifier| {
                    let challenge = if identifier.kind == proto::acme::WIREAPP_DEVICE {
                        challenge(WIRE_DPOP_01, Some(dpop_target.clone()))
                    } else {
                        challenge(WIRE_OIDC_01, Some(self.config.wire_oidc.issuer.clone()))
                    };
                    authz(identifier.clone(), false, vec![challenge])
                })
                .collect();
            (authzs, Some(identity))
        } else {
            let names = names::check_order(
                &request.identifiers,
                &self.config.standard_orders,
                account.record().external_account_binding.is_some(),
                |ip| self.va.permits(ip),
            )?;
            let authzs = request
                .identifiers
                .iter()
                .zip(&names)
                .map(|(identifier, name)| match name {
                    Name::Dns {
                        name,
                        wildcard: true,
                    } => authz(
                        Identifier {
                            kind: names::DNS.into(),
                            value: name.clone(),
                        },
                        true,
                        vec![challenge(DNS_01, None)],
                    ),
                    Name::Dns { .. } => authz(
                        identifier.clone(),
                        false,
                        [HTTP_01, DNS_01, TLS_ALPN_01]
                            .iter()
                            .map(|k| challenge(k, None))
                            .collect(),
                    ),
                    Name::Ip(_) => authz(
                        identifier.clone(),
                        false,
                        [HTTP_01, TLS_ALPN_01]
                            .iter()
                            .map(|k| challenge(k, None))
                            .collect(),
                    ),
                })
                .collect();
            (authzs, None)
        };
        // Valid authorizations of this account are reused (RFC 8555 §7.1.3, "authorization
        // reuse"); identity orders always get fresh ones, since their proofs are per order.
        let mut authorization_ids = Vec::with_capacity(authzs.len());
        let mut fresh = Vec::new();
        let mut expires = expires;
        for authz in authzs {
            let reused = if wire.is_none() {
                self.sa
                    .latest_authz(account.id(), &authz.identifier, authz.wildcard)?
                    .filter(|a| {
                        a.status == AuthorizationStatus::Valid && a.expires > now + REUSE_MARGIN
                    })
            } else {
                None
            };
            match reused {
                Some(previous) => {
                    expires = expires.min(previous.expires);
                    authorization_ids.push(previous.id);
                }
                None => {
                    authorization_ids.push(authz.id.clone());
                    fresh.push(authz);
                }
            }
        }
        self.check_pending_cap(account, fresh.len(), now)?;
        let status = if fresh.is_empty() {
            OrderStatus::Ready
        } else {
            OrderStatus::Pending
        };
        let profile = self.profile_for(is_wire, request.profile.as_deref())?;
        let order = OrderRecord {
            id: order_id,
            account_id: account.id().to_owned(),
            status,
            expires,
            identifiers: request.identifiers,
            not_before,
            not_after,
            authorizations: authorization_ids,
            error: None,
            certificate: None,
            wire,
            replaces: request.replaces.clone(),
            profile,
        };
        if let Some(cert_id) = &order.replaces {
            self.claim_replacement(account, &order, cert_id)?;
        }
        self.sa.create_order(&order, &fresh)?;
        Ok(order)
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
        let pending = self.sa.pending_authz_expiries(account.id(), now)?;
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

    /// The profile of a new order: `wire-identity` for identity orders, a configured one (or the
    /// default) for standard orders; anything else is `invalidProfile`.
    fn profile_for(&self, is_wire: bool, asked: Option<&str>) -> Result<String> {
        let invalid = |detail: String| Error::problem(ProblemType::InvalidProfile, detail);
        match (is_wire, asked) {
            (true, None | Some(IDENTITY_PROFILE)) => Ok(IDENTITY_PROFILE.to_owned()),
            (true, Some(other)) => Err(invalid(format!(
                "identity orders use the {IDENTITY_PROFILE} profile, not {other:?}"
            ))),
            (false, None) => Ok(self.config.default_profile.clone()),
            (false, Some(name)) if self.config.profiles.contains_key(name) => Ok(name.to_owned()),
            (false, Some(name)) => Err(invalid(format!("no profile {name:?} for dns/ip orders"))),
        }
    }

    /// An order of `account`, with expiry applied.
    pub fn order(&self, account: &AuthenticatedAccount, id: &str) -> Result<OrderRecord> {
        Ok(self.owned_order(account, id)?.value)
    }

    pub(super) fn owned_order(
        &self,
        account: &AuthenticatedAccount,
        id: &str,
    ) -> Result<Versioned<OrderRecord>> {
        loop {
            let order = self
                .sa
                .order(id)?
                .filter(|o| o.value.account_id == account.id())
                .ok_or_else(|| Error::NotFound("order".into()))?;
            let live = matches!(
                order.value.status,
                OrderStatus::Pending | OrderStatus::Ready
            );
            if !live || order.value.expires >= self.now() {
                return Ok(order);
            }
            let mut expired = order.value.clone();
            expired.status = OrderStatus::Invalid;
            expired.error = Some(Error::malformed("the order expired").to_problem().1);
            self.sa.replace_order(&order, &expired)?;
        }
    }

    /// An authorization of `account`, with expiry applied.
    pub fn authz(&self, account: &AuthenticatedAccount, id: &str) -> Result<AuthzRecord> {
        Ok(self.owned_authz(account, id)?.value)
    }

    pub(super) fn owned_authz(
        &self,
        account: &AuthenticatedAccount,
        id: &str,
    ) -> Result<Versioned<AuthzRecord>> {
        loop {
            let authz = self
                .sa
                .authz(id)?
                .filter(|a| a.value.account_id == account.id())
                .ok_or_else(|| Error::NotFound("authorization".into()))?;
            let live = matches!(
                authz.value.status,
                AuthorizationStatus::Pending | AuthorizationStatus::Valid
            );
            if !live || authz.value.expires >= self.now() {
                return Ok(authz);
            }
            let mut expired = authz.value.clone();
            expired.status = AuthorizationStatus::Expired;
            self.sa.replace_authz(&authz, &expired)?;
        }
    }

    /// Deactivates an authorization (RFC 8555 §7.5.2): only `pending` or `valid` ones; its order,
    /// if still pending or ready, becomes invalid.
    pub fn deactivate_authz(
        &self,
        account: &AuthenticatedAccount,
        id: &str,
    ) -> Result<AuthzRecord> {
        let authz = self.owned_authz(account, id)?;
        if !matches!(
            authz.value.status,
            AuthorizationStatus::Pending | AuthorizationStatus::Valid
        ) {
            return Err(Error::malformed(format!(
                "a {} authorization cannot be deactivated",
                status_name(authz.value.status)
            )));
        }
        let mut next = authz.value.clone();
        next.status = AuthorizationStatus::Deactivated;
        if !self.sa.replace_authz(&authz, &next)? {
            return Err(Error::malformed(
                "the authorization changed concurrently; retry",
            ));
        }
        loop {
            let order = self.owned_order(account, &next.order_id)?;
            if !matches!(
                order.value.status,
                OrderStatus::Pending | OrderStatus::Ready
            ) {
                break;
            }
            let mut invalid = order.value.clone();
            invalid.status = OrderStatus::Invalid;
            if self.sa.replace_order(&order, &invalid)? {
                break;
            }
        }
        Ok(next)
    }

    /// The PEM chain of a certificate of `account` (the default one, or alternate `n`) and how
    /// many alternate chains its CA offers.
    pub fn certificate_chain(
        &self,
        account: &AuthenticatedAccount,
        id: &str,
        alternate: Option<usize>,
    ) -> Result<(String, usize)> {
        let cert = self.certificate(account, id)?;
        let ca = self.issuer_of(&cert)?;
        let chain = match alternate {
            None => cert.chain_pem,
            Some(n) => ca
                .alternate_chain(&cert.chain_pem, n)
                .ok_or_else(|| Error::NotFound("alternate chain".into()))?,
        };
        Ok((chain, ca.alternate_count()))
    }

    /// The CA that signed `cert` (not found when it is the name CA and standard orders have
    /// been disabled since).
    pub(super) fn issuer_of(&self, cert: &CertificateRecord) -> Result<&CertificateAuthority> {
        let hierarchy = if cert.names_ca {
            Hierarchy::Names
        } else {
            Hierarchy::Identity
        };
        self.ca
            .get(hierarchy)
            .ok_or_else(|| Error::NotFound("certificate of a disabled CA".into()))
    }

    /// The ids of `account`'s orders that are not `invalid` (expiry applied): RFC 8555
    /// §7.1.2.1 says the list SHOULD NOT include invalid orders.
    pub fn orders_of(&self, account: &AuthenticatedAccount) -> Result<Vec<String>> {
        let mut listed = Vec::new();
        for id in self.sa.order_ids_of(account.id())? {
            match self.owned_order(account, &id) {
                Ok(order) if order.value.status != OrderStatus::Invalid => listed.push(id),
                // Invalid, or removed by the sweep since the ids were read.
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(listed)
    }

    /// A certificate of `account`.
    pub fn certificate(
        &self,
        account: &AuthenticatedAccount,
        id: &str,
    ) -> Result<CertificateRecord> {
        self.sa
            .certificate(id)?
            .filter(|c| c.account_id == account.id())
            .ok_or_else(|| Error::NotFound("certificate".into()))
    }

    pub(super) fn identity_of(order: &OrderRecord) -> Option<&proto::wire_id::WireIdentity> {
        order.wire.as_ref()
    }
}
