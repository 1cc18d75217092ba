//! Deactivating an authorization (RFC 8555 §7.5.2): only a `pending` or `valid` one; its order,
//! if still pending or ready, becomes invalid.

use proto::acme::{AuthorizationStatus, OrderStatus};

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, Result, status_name};
use crate::model::{AuthzRecord, OrderRecord};
use crate::sa::Decision;

impl RegistrationAuthority {
    /// Deactivates an authorization of `account`.
    pub fn deactivate_authz(
        &self,
        account: &AuthenticatedAccount,
        id: &str,
    ) -> Result<AuthzRecord> {
        let deactivated = self.update_owned(account, id, |authz: &AuthzRecord| {
            if !matches!(
                authz.status,
                AuthorizationStatus::Pending | AuthorizationStatus::Valid
            ) {
                return Err(Error::malformed(format!(
                    "a {} authorization cannot be deactivated",
                    status_name(authz.status)
                )));
            }
            let deactivated = AuthzRecord {
                status: AuthorizationStatus::Deactivated,
                ..authz.clone()
            };
            Ok(Decision::Write(deactivated.clone(), deactivated))
        })?;
        self.update_owned(account, &deactivated.order_id, |order: &OrderRecord| {
            Ok(
                if matches!(order.status, OrderStatus::Pending | OrderStatus::Ready) {
                    let invalid = OrderRecord {
                        status: OrderStatus::Invalid,
                        ..order.clone()
                    };
                    Decision::Write(invalid, ())
                } else {
                    Decision::Keep(())
                },
            )
        })?;
        Ok(deactivated)
    }
}
