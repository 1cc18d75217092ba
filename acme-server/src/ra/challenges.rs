//! Answering a challenge (RFC 8555 §7.5.1): the answer is verified synchronously by the
//! validation authority; the challenge and its authorization become `valid` (and the order
//! `ready` once every authorization is) or `invalid` (and the order with them), each step a
//! compare-and-swap on the stored record. A POST-as-GET, or a POST to a challenge that is no
//! longer pending, returns the challenge as it is. A refused answer is reported where the
//! order's profile says: as the response, or in the challenge.

use proto::acme::{AuthorizationStatus, ChallengeStatus, OrderStatus, Problem};
use proto::clock::UnixTime;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, Result, status_name};
use crate::model::{AuthzRecord, ChallengeRecord, OrderRecord, RefusalDelivery};
use crate::sa::Decision;
use crate::va::{Answer, Outcome, ValidatedAnswer};

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

/// How an answer ended.
#[derive(Debug)]
enum Verdict {
    /// It held, validated at this time.
    Valid { at: UnixTime },
    /// It was refused with this problem.
    Invalid(Problem),
}

/// Whether the stored authorization still waits for an answer to its challenge `index`: the
/// only state an answer's outcome is recorded in.
fn awaits_answer(authz: &AuthzRecord, index: usize) -> bool {
    authz.status == AuthorizationStatus::Pending
        && authz
            .challenges
            .get(index)
            .is_some_and(|c| c.status == ChallengeStatus::Pending)
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
        let authz = self.authz(account, authz_id)?;
        let index = authz
            .challenges
            .iter()
            .position(|c| c.id == challenge_id)
            .ok_or_else(|| Error::NotFound("challenge".into()))?;
        let challenge = &authz.challenges[index];
        if payload.is_empty() || challenge.status != ChallengeStatus::Pending {
            return Ok(ChallengeState { authz, index });
        }
        if authz.status != AuthorizationStatus::Pending {
            return Err(Error::malformed(format!(
                "the authorization is {}; its challenges can no longer be answered",
                status_name(authz.status)
            )));
        }
        let order = self.order(account, &authz.order_id)?;
        if order.status != OrderStatus::Pending {
            return Err(Error::malformed("the order is no longer pending"));
        }
        // Reserved before validating, so concurrent answers cannot all run before the first
        // failure is counted; given back unless the validation fails.
        let reservation = self
            .rate_limits
            .reserve_validation(account.id(), &authz.identifier.canonical_key())?;
        let answer = Answer {
            payload,
            challenge,
            url,
            account_key: account.key(),
            identifier: &authz.identifier,
            profile: &order.profile,
        };
        let outcome = match self.va.validate(&answer, self.now()).await {
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
                self.record_valid(account, &authz, index, &proof, url)
            }
            Outcome::Refused(problem) => {
                // The failure keeps its tokens.
                drop(reservation);
                self.record_invalid(&authz, index, &problem)?;
                match order.profile.refusal_delivery() {
                    RefusalDelivery::AsResponse => Err(problem),
                    RefusalDelivery::InChallenge => Ok(ChallengeState {
                        authz: self.authz(account, authz_id)?,
                        index,
                    }),
                }
            }
        }
    }

    fn record_valid(
        &self,
        account: &AuthenticatedAccount,
        authz: &AuthzRecord,
        index: usize,
        proof: &ValidatedAnswer,
        url: &str,
    ) -> Result<ChallengeState> {
        if proof.challenge_url() != url {
            return Err(Error::Internal("validated another challenge".into()));
        }
        let verdict = Verdict::Valid { at: self.now() };
        let Some(valid) = self.record_verdict(&authz.id, index, &verdict)? else {
            // Decided concurrently; report what was stored.
            return Ok(ChallengeState {
                authz: self.authz(account, &authz.id)?,
                index,
            });
        };
        self.advance_order_if_ready(account, &valid.order_id)?;
        Ok(ChallengeState {
            authz: valid,
            index,
        })
    }

    fn advance_order_if_ready(&self, account: &AuthenticatedAccount, order_id: &str) -> Result<()> {
        self.update_owned(account, order_id, |order: &OrderRecord| {
            if order.status != OrderStatus::Pending {
                return Ok(Decision::Keep(()));
            }
            for id in &order.authorizations {
                if self.authz(account, id)?.status != AuthorizationStatus::Valid {
                    return Ok(Decision::Keep(()));
                }
            }
            let ready = OrderRecord {
                status: OrderStatus::Ready,
                ..order.clone()
            };
            Ok(Decision::Write(ready, ()))
        })
    }

    fn record_invalid(&self, authz: &AuthzRecord, index: usize, problem: &Error) -> Result<()> {
        let document = problem.to_problem().1;
        let verdict = Verdict::Invalid(document.clone());
        if self.record_verdict(&authz.id, index, &verdict)?.is_none() {
            return Ok(());
        }
        self.invalidate_order(&authz.order_id, OrderStatus::Pending, &document)
    }

    /// Records `verdict` on challenge `index` of the stored authorization, and the
    /// authorization's status with it, if the authorization still awaits that answer; the
    /// authorization as recorded, or `None` when it was decided concurrently.
    fn record_verdict(
        &self,
        authz_id: &str,
        index: usize,
        verdict: &Verdict,
    ) -> Result<Option<AuthzRecord>> {
        self.sa
            .transition(authz_id, |stored: Option<&AuthzRecord>| {
                let Some(stored) = stored.filter(|a| awaits_answer(a, index)) else {
                    return Ok(Decision::Keep(None));
                };
                let mut decided = stored.clone();
                let challenge = &mut decided.challenges[index];
                decided.status = match verdict {
                    Verdict::Valid { at } => {
                        challenge.status = ChallengeStatus::Valid;
                        challenge.validated = Some(*at);
                        AuthorizationStatus::Valid
                    }
                    Verdict::Invalid(problem) => {
                        challenge.status = ChallengeStatus::Invalid;
                        challenge.error = Some(problem.clone());
                        AuthorizationStatus::Invalid
                    }
                };
                Ok(Decision::Write(decided.clone(), Some(decided)))
            })
    }
}
