//! Finalize (RFC 8555 §7.4): only a `ready` order; the CSR is checked against what the order
//! certifies ([`crate::ca::csr::validate`]) while the order is still `ready`, then the order
//! moves `ready → processing` by compare-and-swap (so only one finalize issues), the CA signs,
//! and the certificate and the `valid` order are stored (durable before any response shows
//! them: see [`crate::sa`]). The order's profile says when the certificate is issued: before the
//! response for identity orders (Wire clients expect `valid`), in the background for standard
//! orders, which answer `processing` with `Retry-After`.

use proto::acme::OrderStatus;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::ca::Hierarchy;
use crate::ca::csr::{self, ValidatedCsr};
use crate::error::{Error, ProblemType, Result, status_name};
use crate::model::{CertificateRecord, IssuanceTiming, OrderRecord};
use crate::sa::Decision;

/// An order in `processing` with the CSR it will be issued for.
#[derive(Debug)]
pub struct Issuance {
    account_id: String,
    order: OrderRecord,
    csr: ValidatedCsr,
    validity: i64,
}

impl Issuance {
    /// The `processing` order.
    pub fn order(&self) -> &OrderRecord {
        &self.order
    }
}

/// A finalized order.
#[derive(Debug)]
pub enum Finalized {
    /// Issued before answering: the `valid` order.
    Valid(Box<OrderRecord>),
    /// To be issued in the background ([`RegistrationAuthority::issue`]); the response shows
    /// the `processing` order.
    Processing(Box<Issuance>),
}

/// Refuses an order that is not `ready`.
fn require_ready(order: &OrderRecord) -> Result<()> {
    if order.status == OrderStatus::Ready {
        return Ok(());
    }
    Err(Error::problem(
        ProblemType::OrderNotReady,
        format!("the order is {}, not ready", status_name(order.status)),
    ))
}

impl RegistrationAuthority {
    /// Finalizes an order with a DER CSR: issues before returning, or leaves the order
    /// `processing` for [`Self::issue`] in the background, as its profile says.
    pub fn finalize(
        &self,
        account: &AuthenticatedAccount,
        order_id: &str,
        csr_der: &[u8],
    ) -> Result<Finalized> {
        let issuance = self.begin_finalize(account, order_id, csr_der)?;
        Ok(match issuance.order.profile.issuance_timing() {
            IssuanceTiming::BeforeResponse => Finalized::Valid(Box::new(self.issue(issuance)?)),
            IssuanceTiming::InBackground => Finalized::Processing(Box::new(issuance)),
        })
    }

    /// Checks the CSR of a `ready` order and moves it to `processing`; the returned
    /// [`Issuance`] is the only way to [`Self::issue`].
    fn begin_finalize(
        &self,
        account: &AuthenticatedAccount,
        order_id: &str,
        csr_der: &[u8],
    ) -> Result<Issuance> {
        let order = self.order(account, order_id)?;
        require_ready(&order)?;
        let terms = self.terms(&order)?;
        let validated = csr::validate(csr_der, &order.profile, |thumbprint| {
            self.sa.reader().is_account_key(thumbprint)
        })?
        .with_usages(terms.server_auth, terms.client_auth);
        let processing = self.update_owned(account, order_id, |order: &OrderRecord| {
            require_ready(order)?;
            let processing = OrderRecord {
                status: OrderStatus::Processing,
                ..order.clone()
            };
            Ok(Decision::Write(processing.clone(), processing))
        })?;
        Ok(Issuance {
            account_id: account.id().to_owned(),
            order: processing,
            csr: validated,
            validity: terms.validity,
        })
    }

    /// Signs the certificate of a `processing` order, stores it and the `valid` order (or the
    /// `invalid` one with the error).
    pub fn issue(&self, issuance: Issuance) -> Result<OrderRecord> {
        let Issuance {
            account_id,
            order,
            csr: validated,
            validity,
        } = issuance;
        let order_id = order.id;
        if self.sa.reader().order(&order_id)?.is_none() {
            return Err(Error::Storage("order vanished".into()));
        }
        let now = self.now();
        let backdate = self.config.certificate.backdate;
        let not_before = (now - backdate).max(order.not_before.unwrap_or(i64::MIN));
        let not_after = (now + validity).min(order.not_after.unwrap_or(i64::MAX));
        let hierarchy = validated.hierarchy();
        let signed = self
            .ca
            .get(hierarchy)
            .ok_or_else(|| Error::Config(format!("no {} CA is loaded", hierarchy.label())))
            .and_then(|ca| ca.issue(&validated, not_before, not_after));
        let issued = match signed {
            Ok(issued) => issued,
            Err(e) => {
                self.invalidate_order(&order_id, OrderStatus::Processing, &e.to_problem().1)?;
                return Err(e);
            }
        };
        let certificate = CertificateRecord {
            id: proto::random::token(128),
            account_id,
            order_id: order_id.clone(),
            serial: issued.serial,
            chain_pem: issued.chain_pem,
            not_before: issued.not_before,
            not_after: issued.not_after,
            revoked: None,
            replaced_by: None,
            replacement_expires: None,
            names_ca: hierarchy == Hierarchy::Names,
        };
        self.sa.put_certificate(&certificate)?;
        let valid = self
            .sa
            .transition(&order_id, |stored: Option<&OrderRecord>| match stored {
                Some(order) if order.status == OrderStatus::Processing => {
                    let valid = OrderRecord {
                        status: OrderStatus::Valid,
                        certificate: Some(certificate.id.clone()),
                        ..order.clone()
                    };
                    Ok(Decision::Write(valid.clone(), valid))
                }
                _ => Err(Error::Internal("order changed while processing".into())),
            })?;
        self.audit.record(
            now,
            "certificate.issued",
            serde_json::json!({"account": certificate.account_id, "order": order_id,
                               "serial": certificate.serial, "not_after": certificate.not_after,
                               "identity": valid.profile.identity().map(|w| w.client_id().to_uri()),
                               "identifiers": valid.identifiers}),
        );
        tracing::info!(
            order = %order_id,
            serial = %certificate.serial,
            not_after = certificate.not_after,
            "certificate issued"
        );
        Ok(valid)
    }
}
