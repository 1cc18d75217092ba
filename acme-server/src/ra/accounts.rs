//! Accounts (RFC 8555 §7.3): creation (one account per key; `onlyReturnExisting`; agreement to
//! the terms of service when the directory advertises them), contacts (e-mail only, `mailto:`
//! or Wire's bare address), lookup, contact update and deactivation.

use proto::acme::{AccountStatus, AccountUpdate, NewAccount};
use proto::jwk::Jwk;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, ProblemType, Result};
use crate::model::{AccountRecord, EabKey, account_key};
use crate::sa::{Created, Decision};

/// Whether newAccount created the account.
#[derive(Debug, Clone)]
pub enum AccountOutcome {
    /// Created now (201).
    Created(AccountRecord),
    /// The key already had this account (200).
    Existing(AccountRecord),
}

const MAX_CONTACTS: usize = 10;

/// Whether `s` is a URI scheme (RFC 3986 §3.1).
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Checks contacts (RFC 8555 §7.3): `mailto:` URIs of one e-mail address each, or a bare e-mail
/// address, which Wire's client sends (`anonymous@anonymous.invalid`) and step-ca accepts; a
/// bare address is an e-mail contact, kept as given (this server sends no mail). Another
/// scheme is `unsupportedContact`; anything that is not one plain address, `invalidContact`.
fn check_contacts(contacts: &[String]) -> Result<()> {
    if contacts.len() > MAX_CONTACTS {
        return Err(Error::problem(
            ProblemType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    for contact in contacts {
        let address = match contact.split_once(':') {
            None => contact.as_str(),
            Some((scheme, address)) if scheme.eq_ignore_ascii_case("mailto") => address,
            Some((scheme, _)) if is_scheme(scheme) => {
                return Err(Error::problem(
                    ProblemType::UnsupportedContact,
                    format!("only e-mail contacts (mailto:) are supported, not {contact:?}"),
                ));
            }
            Some(_) => "",
        };
        let valid = address.len() <= 254
            && !address.contains(|c: char| matches!(c, ',' | '?' | ':') || c.is_whitespace())
            && address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
            });
        if !valid {
            return Err(Error::problem(
                ProblemType::InvalidContact,
                format!("{contact:?} is not a single e-mail address"),
            ));
        }
    }
    Ok(())
}

impl RegistrationAuthority {
    /// newAccount for the verified `jwk`, asked by a client at `client_ip`.
    pub fn new_account(
        &self,
        jwk: &Jwk,
        request: NewAccount,
        new_account_url: &str,
        client_ip: std::net::IpAddr,
    ) -> Result<AccountOutcome> {
        let thumbprint = jwk.thumbprint();
        if let Some(existing) = self.sa.reader().account_by_thumbprint(&thumbprint)? {
            return Ok(AccountOutcome::Existing(existing));
        }
        if request.only_return_existing == Some(true) {
            return Err(Error::problem(
                ProblemType::AccountDoesNotExist,
                "no account exists for this key",
            ));
        }
        let contact = request.contact.clone().unwrap_or_default();
        check_contacts(&contact)?;
        if let Some(terms) = &self.config.terms_of_service
            && request.terms_of_service_agreed != Some(true)
        {
            return Err(Error::TermsOfServiceNotAgreed {
                terms: terms.clone(),
            });
        }
        self.rate_limits.new_account(client_ip)?;
        let id = proto::random::token(128);
        let external_account_binding = match &request.external_account_binding {
            Some(binding) => {
                Some(self.bind_external_account(binding, jwk, new_account_url, &id)?)
            }
            None if self.config.external_account_required => {
                return Err(Error::problem(
                    ProblemType::ExternalAccountRequired,
                    "this server requires an External Account Binding",
                ));
            }
            None => None,
        };
        let record = AccountRecord {
            id,
            jwk: account_key(jwk),
            thumbprint,
            status: AccountStatus::Valid,
            contact,
            terms_of_service_agreed: request.terms_of_service_agreed,
            created_at: self.now(),
            external_account_binding,
        };
        Ok(match self.sa.create_account(record)? {
            Created::New(r) => {
                self.audit.record(
                    r.created_at,
                    "account.created",
                    serde_json::json!({"account": r.id, "jkt": r.thumbprint}),
                );
                AccountOutcome::Created(r)
            }
            Created::Existing(r) => AccountOutcome::Existing(r),
        })
    }

    /// Checks an External Account Binding (RFC 8555 §7.3.4) and binds its key to `account_id`;
    /// the key id.
    fn bind_external_account(
        &self,
        binding: &serde_json::Value,
        jwk: &Jwk,
        url: &str,
        account_id: &str,
    ) -> Result<String> {
        let refuse =
            |detail: String| Error::unauthorized(format!("externalAccountBinding: {detail}"));
        let parsed = proto::eab::Binding::parse(binding)
            .map_err(|e| Error::malformed(format!("externalAccountBinding: {e}")))?;
        if parsed.url() != url {
            return Err(Error::malformed(
                "externalAccountBinding: url is not newAccount",
            ));
        }
        let key = self
            .sa
            .reader()
            .eab_key(parsed.kid())?
            .ok_or_else(|| refuse("unknown key id".into()))?;
        parsed
            .verify(key.mac_key_bytes()?.expose(), jwk)
            .map_err(|e| refuse(e.to_string()))?;
        // A key binds one account: the first binding wins.
        let bound = self
            .sa
            .transition(parsed.kid(), |stored: Option<&EabKey>| {
                Ok(match stored {
                    Some(key) if key.account_id.is_none() => {
                        let bound = EabKey {
                            account_id: Some(account_id.to_owned()),
                            ..key.clone()
                        };
                        Decision::Write(bound, true)
                    }
                    _ => Decision::Keep(false),
                })
            })?;
        if !bound {
            return Err(refuse("the key is already bound to an account".into()));
        }
        Ok(parsed.kid().to_owned())
    }

    /// Account update (§7.3.2: contacts; `termsOfServiceAgreed` is ignored, so an agreement
    /// cannot be rewritten) or deactivation (§7.3.6); an empty update returns the account.
    pub fn update_account(
        &self,
        account: &AuthenticatedAccount,
        update: AccountUpdate,
    ) -> Result<AccountRecord> {
        match update.status {
            None | Some(AccountStatus::Deactivated) => {}
            Some(_) => {
                return Err(Error::malformed(
                    "the only status a client may set is \"deactivated\"",
                ));
            }
        }
        if let Some(contact) = &update.contact {
            check_contacts(contact)?;
        }
        self.sa
            .transition(account.id(), |stored: Option<&AccountRecord>| {
                let mut next = stored
                    .ok_or_else(|| Error::NotFound("account".into()))?
                    .clone();
                if let Some(status) = update.status {
                    next.status = status;
                }
                if let Some(contact) = &update.contact {
                    next.contact.clone_from(contact);
                }
                Ok(Decision::Write(next.clone(), next))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_single_e_mail_addresses_with_or_without_mailto() {
        for good in [
            "mailto:ops@example.com",
            "MAILTO:ops@example.com",
            "anonymous@anonymous.invalid",
        ] {
            check_contacts(&[good.into()]).unwrap();
        }
        let kind = |contact: &str| match check_contacts(&[contact.into()]) {
            Err(Error::Problem { kind, .. }) => kind,
            other => panic!("{contact}: {other:?}"),
        };
        for unsupported in ["tel:+1", "https://example.com", "xmpp:a@example.com"] {
            assert_eq!(kind(unsupported), ProblemType::UnsupportedContact);
        }
        for bad in [
            "mailto:",
            "mailto:a@b",
            "mailto:a@example.com,b@example.com",
            "mailto:a@example.com?subject=x",
            "",
            "anonymous",
            "a b@example.com",
            "a@b",
            "@example.com",
            "1tel:a@example.com",
        ] {
            assert_eq!(kind(bad), ProblemType::InvalidContact, "{bad}");
        }
    }
}
