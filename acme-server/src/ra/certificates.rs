//! Issued certificates of an account: the record, its PEM chain (or an alternate one), and the
//! CA that signed it.

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::ca::{CertificateAuthority, Hierarchy};
use crate::error::{Error, Result};
use crate::model::CertificateRecord;

impl RegistrationAuthority {
    /// A certificate of `account`.
    pub fn certificate(
        &self,
        account: &AuthenticatedAccount,
        id: &str,
    ) -> Result<CertificateRecord> {
        self.sa
            .reader()
            .certificate(id)?
            .filter(|c| c.account_id == account.id())
            .ok_or_else(|| Error::NotFound("certificate".into()))
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
}
