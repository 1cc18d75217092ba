//! Answering a challenge (RFC 8555 §7.5.1): the answer is verified synchronously by the
//! validation authority; the challenge and its authorization become `valid` (and the order
//! `ready` once every authorization is) or `invalid` (and the order with them), each step a
//! compare-and-swap on the stored status. A POST-as-GET, or a POST to a challenge that is no
//! longer pending, returns the challenge as it is.

use proto::acme::{AuthorizationStatus, ChallengeStatus, OrderStatus};
use server_kit::store::Versioned;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, Result, status_name};
use crate::sa::{AuthzRecord, ChallengeRecord};
use crate::va::{ChallengeContext, Outcome, StandardContext, ValidatedAnswer};

/// A challenge with the authorization it belongs to.
#[derive(Debug, Clone)]
pub struct ChallengeState {
    /// The authorization.
    pub authz: AuthzRecord,
    /// Index of the challenge in `authz.challenges`.
    pub index: usize,
}

impl ChallengeState {
    /// The challenge.
    pub fn challenge(&self) -> &ChallengeRecord {
        &self.authz.challenges[self.index]
    }
}

impl RegistrationAuthority {
    /// Handles a POST to a challenge URL. `url` is the challenge's public URL (its `aud` /
    /// `acme_aud`); an empty `payload` is a POST-as-GET.
    pub async fn answer_challenge(
        &self,
        account: &AuthenticatedAccount,
        authz_id: &str,
        challenge_id: &str,
        url: &str,
        payload: &[u8],
    ) -> Result<ChallengeState> {
        let authz = self.owned_authz(account, authz_id)?;
        let index = authz
            .value
            .challenges
            .iter()
            .position(|c| c.id == challenge_id)
            .ok_or_else(|| Error::NotFound("challenge".into()))?;
        let current = ChallengeState {
            authz: authz.value.clone(),
            index,
        };
        let challenge = current.challenge().clone();
        if payload.is_empty() || challenge.status != ChallengeStatus::Pending {
            return Ok(current);
        }
        if authz.value.status != AuthorizationStatus::Pending {
            return Err(Error::malformed(format!(
                "the authorization is {}; its challenges can no longer be answered",
                status_name(authz.value.status)
            )));
        }
        let order = self.owned_order(account, &authz.value.order_id)?;
        if order.value.status != OrderStatus::Pending {
            return Err(Error::malformed("the order is no longer pending"));
        }
        let identifier = limit_key(&authz.value.identifier);
        // Reserved before validating, so concurrent answers cannot all run before the first
        // failure is counted; given back unless the validation fails.
        let reservation = self
            .rate_limits
            .reserve_validation(account.id(), &identifier)?;
        let now = self.now();
        let outcome = match Self::identity_of(&order.value) {
            Some(identity) => {
                let target = challenge.target.clone().unwrap_or_default();
                let ctx = ChallengeContext {
                    account_key: account.key(),
                    url,
                    token: &challenge.token,
                    target: &target,
                    identity,
                };
                self.va.validate(&challenge.kind, payload, &ctx, now).await
            }
            None => {
                let ctx = StandardContext {
                    account_key: account.key(),
                    url,
                    token: &challenge.token,
                    identifier: &authz.value.identifier,
                };
                self.va
                    .validate_standard(&challenge.kind, payload, &ctx)
                    .await
            }
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(fault) => {
                // Not the client's failure (a malformed answer, our own fault).
                reservation.refund();
                return Err(fault);
            }
        };
        match outcome {
            Outcome::Valid(proof) => {
                reservation.refund();
                self.record_valid(account, authz, index, &proof, url)
            }
            Outcome::Refused(problem) => {
                // The failure keeps its tokens.
                drop(reservation);
                self.record_invalid(authz, index, &problem)?;
                if challenge.kind.starts_with("wire-") {
                    // Wire clients expect the refusal as the response (step-ca's behaviour).
                    return Err(problem);
                }
                // Standard clients read the outcome from the challenge (RFC 8555 §7.5.1).
                let stored = self.owned_authz(account, authz_id)?;
                Ok(ChallengeState {
                    authz: stored.value,
                    index,
                })
            }
        }
    }

    fn record_valid(
        &self,
        account: &AuthenticatedAccount,
        authz: Versioned<AuthzRecord>,
        index: usize,
        proof: &ValidatedAnswer,
        url: &str,
    ) -> Result<ChallengeState> {
        if proof.challenge_url() != url {
            return Err(Error::Internal("validated another challenge".into()));
        }
        let mut next = authz.value.clone();
        next.challenges[index].status = ChallengeStatus::Valid;
        next.challenges[index].validated = Some(self.now());
        next.status = AuthorizationStatus::Valid;
        if !self.sa.replace_authz(&authz, &next)? {
            // Decided concurrently; report what was stored.
            let stored = self.owned_authz(account, &next.id)?;
            return Ok(ChallengeState {
                authz: stored.value,
                index,
            });
        }
        self.advance_order_if_ready(account, &next.order_id)?;
        Ok(ChallengeState { authz: next, index })
    }

    fn advance_order_if_ready(&self, account: &AuthenticatedAccount, order_id: &str) -> Result<()> {
        loop {
            let order = self.owned_order(account, order_id)?;
            if order.value.status != OrderStatus::Pending {
                return Ok(());
            }
            for id in &order.value.authorizations {
                let authz = self.owned_authz(account, id)?;
                if authz.value.status != AuthorizationStatus::Valid {
                    return Ok(());
                }
            }
            let mut ready = order.value.clone();
            ready.status = OrderStatus::Ready;
            if self.sa.replace_order(&order, &ready)? {
                return Ok(());
            }
        }
    }

    fn record_invalid(
        &self,
        authz: Versioned<AuthzRecord>,
        index: usize,
        problem: &Error,
    ) -> Result<()> {
        let document = problem.to_problem().1;
        let mut next = authz.value.clone();
        next.challenges[index].status = ChallengeStatus::Invalid;
        next.challenges[index].error = Some(document.clone());
        next.status = AuthorizationStatus::Invalid;
        if !self.sa.replace_authz(&authz, &next)? {
            return Ok(());
        }
        while let Some(order) = self.sa.order(&next.order_id)? {
            if order.value.status != OrderStatus::Pending {
                break;
            }
            let mut invalid = order.value.clone();
            invalid.status = OrderStatus::Invalid;
            invalid.error = Some(document.clone());
            if self.sa.replace_order(&order, &invalid)? {
                break;
            }
        }
        Ok(())
    }
}

/// The key an identifier's failed validations are counted under: its canonical form, so the
/// same identity or name written another way (spacing or key order of a Wire identifier's JSON,
/// letter case of a DNS name, another spelling of an address) shares one bucket.
fn limit_key(identifier: &proto::acme::Identifier) -> String {
    use proto::wire_id::{DeviceIdentifier, UserIdentifier};
    let value = &identifier.value;
    let canonical = match identifier.kind.as_str() {
        "wireapp-device" => DeviceIdentifier::parse(value)
            .map(|d| d.client_id.to_uri())
            .ok(),
        "wireapp-user" => UserIdentifier::parse(value).map(|u| u.handle.to_uri()).ok(),
        "dns" => Some(value.to_ascii_lowercase()),
        "ip" => value
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_string())
            .ok(),
        _ => None,
    };
    format!(
        "{}:{}",
        identifier.kind,
        canonical.unwrap_or_else(|| value.clone())
    )
}

#[cfg(test)]
mod tests {
    use proto::acme::Identifier;

    use super::limit_key;

    fn id(kind: &str, value: &str) -> Identifier {
        Identifier {
            kind: kind.into(),
            value: value.into(),
        }
    }

    #[test]
    fn one_identity_written_two_ways_shares_its_failure_bucket() {
        let compact = r#"{"client-id":"wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com","handle":"wireapp://%40alice_wire@wire.com","name":"Alice Smith","domain":"wire.com"}"#;
        let spaced = r#"{"domain": "wire.com", "name": "Alice Smith", "handle": "wireapp://%40alice_wire@wire.com", "client-id": "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com"}"#;
        assert_eq!(
            limit_key(&id("wireapp-device", compact)),
            limit_key(&id("wireapp-device", spaced))
        );
        assert_eq!(
            limit_key(&id("dns", "Example.TEST")),
            limit_key(&id("dns", "example.test"))
        );
        assert_eq!(limit_key(&id("ip", "::0001")), limit_key(&id("ip", "::1")));
        assert_ne!(
            limit_key(&id("dns", "a.test")),
            limit_key(&id("dns", "b.test"))
        );
    }
}
