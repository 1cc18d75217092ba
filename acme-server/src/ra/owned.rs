//! An account's own orders and authorizations as they stand now. Another account's are not
//! found (their existence is not disclosed), and a live one past its expiry is seen, and
//! recorded, as expired: a pending or ready order becomes `invalid`, a pending or valid
//! authorization `expired`. Every read and change the account makes to them goes through
//! [`RegistrationAuthority::update_owned`].

use proto::acme::{AuthorizationStatus, OrderStatus};
use proto::clock::UnixTime;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, Result};
use crate::model::{AuthzRecord, OrderRecord};
use crate::sa::{Decision, StoredRecord};

/// A record an account owns and that expires.
pub(super) trait Owned: StoredRecord + Clone {
    /// What it is called when it is not found.
    const NAME: &'static str;

    /// The owner.
    fn account_id(&self) -> &str;

    /// The record as it stands at `now` when that is not what is stored: expired.
    fn expired_at(&self, now: UnixTime) -> Option<Self>;
}

impl Owned for OrderRecord {
    const NAME: &'static str = "order";

    fn account_id(&self) -> &str {
        &self.account_id
    }

    fn expired_at(&self, now: UnixTime) -> Option<Self> {
        let live = matches!(self.status, OrderStatus::Pending | OrderStatus::Ready);
        (live && self.expires < now).then(|| Self {
            status: OrderStatus::Invalid,
            error: Some(Error::malformed("the order expired").to_problem().1),
            ..self.clone()
        })
    }
}

impl Owned for AuthzRecord {
    const NAME: &'static str = "authorization";

    fn account_id(&self) -> &str {
        &self.account_id
    }

    fn expired_at(&self, now: UnixTime) -> Option<Self> {
        let live = matches!(
            self.status,
            AuthorizationStatus::Pending | AuthorizationStatus::Valid
        );
        (live && self.expires < now).then(|| Self {
            status: AuthorizationStatus::Expired,
            ..self.clone()
        })
    }
}

impl RegistrationAuthority {
    /// Applies `decide` to `account`'s record `id` as it stands now, by compare-and-swap. An
    /// expiry it finds is recorded whatever `decide` answers.
    pub(super) fn update_owned<R: Owned, T>(
        &self,
        account: &AuthenticatedAccount,
        id: &str,
        mut decide: impl FnMut(&R) -> Result<Decision<R, T>>,
    ) -> Result<T> {
        let now = self.now();
        self.sa.transition(id, |stored: Option<&R>| {
            let stored = stored
                .filter(|r| r.account_id() == account.id())
                .ok_or_else(|| Error::NotFound(R::NAME.into()))?;
            let Some(expired) = stored.expired_at(now) else {
                return Ok(match decide(stored)? {
                    Decision::Write(next, outcome) => Decision::Write(next, Ok(outcome)),
                    Decision::Keep(outcome) => Decision::Keep(Ok(outcome)),
                });
            };
            Ok(match decide(&expired) {
                Ok(Decision::Write(next, outcome)) => Decision::Write(next, Ok(outcome)),
                Ok(Decision::Keep(outcome)) => Decision::Write(expired, Ok(outcome)),
                Err(refusal) => Decision::Write(expired, Err(refusal)),
            })
        })?
    }

    /// `account`'s record `id`, with expiry applied.
    fn read_owned<R: Owned>(&self, account: &AuthenticatedAccount, id: &str) -> Result<R> {
        self.update_owned(account, id, |record: &R| Ok(Decision::Keep(record.clone())))
    }

    /// An order of `account`, with expiry applied.
    pub fn order(&self, account: &AuthenticatedAccount, id: &str) -> Result<OrderRecord> {
        self.read_owned(account, id)
    }

    /// An authorization of `account`, with expiry applied.
    pub fn authz(&self, account: &AuthenticatedAccount, id: &str) -> Result<AuthzRecord> {
        self.read_owned(account, id)
    }
}
