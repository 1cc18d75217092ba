//! GA4GH Passports (Passport v1.2, <https://ga4gh.github.io/data-security/ga4gh-passport>;
//! AAI OpenID Connect profile v1.2,
//! <https://ga4gh.github.io/data-security/aai-openid-connect-profile>): with the
//! `ga4gh_passport_v1` scope, `/userinfo` answers a `ga4gh_passport_v1` array of visas (AAI,
//! "Visas provided by a Broker via UserInfo Endpoint"); access and ID tokens carry none (AAI,
//! "Conformance for Brokers", item 1.4.2).
//!
//! The Passport of a user ([`Provider::passport`]), in this order:
//!
//! 1. our `LinkedIdentities` visa, when the account has linked upstream identities: `sub` = the
//!    user's id, `iss` = this server, `value` = the (subject, issuer) of each link (Passport
//!    §"LinkedIdentities"), `source` = this server, `by` = `system`, `asserted` = the latest
//!    link's time;
//! 2. the visas an operator or admin asserts for the user ([`asserted`]);
//! 3. the visas upstreams released at the user's last login through each ([`imported`]),
//!    passed on unchanged with their own signatures (AAI, "Conformance for Brokers", item 7),
//!    from upstreams still configured with `visas = true`, those not expired.
//!
//! The consent page lists what the scope would release ([`Provider::passport_preview`]: each
//! visa's type, value, source and who says it), and a third-party client gets the Passport only
//! once the user allowed the scope.
//!
//! Our visas are signed at each request with the token signing key (ES256, `kid` = its
//! thumbprint), `typ` `vnd.ga4gh.visa+jwt` and `jku` = our `jwks_uri`
//! ([`proto::visa::VisaClaims::sign`]); each expires one access-token lifetime after it is
//! minted (an asserted one no later than its assertion), so a clearinghouse re-reads
//! `/userinfo` rather than holding a visa for long (Passport §"Visa Expiry", option B).

pub mod asserted;
pub mod imported;

use proto::clock::UnixTime;
use proto::visa::{self, VisaClaims, VisaObject};

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::asserted_visas::AssertedVisa;
use crate::store::upstream_links::UpstreamLink;
use crate::store::{self, users::User};

/// What a user's Passport holds now, before anything of ours is signed.
struct Contents {
    /// The account's upstream links (our `LinkedIdentities` visa, when there are any).
    links: Vec<UpstreamLink>,
    /// The asserted visas still holding.
    asserted: Vec<AssertedVisa>,
    /// The imported visas still valid: (upstream id, visa).
    imported: Vec<(String, String)>,
}

impl Provider {
    /// What `user`'s Passport holds at `now`.
    fn contents(&self, user: &User, now: UnixTime) -> Result<Contents> {
        let mut asserted = store::asserted_visas::of_user(self.store(), &user.id)?;
        asserted.retain(|a| a.expires_at > now);
        Ok(Contents {
            links: self.links_of(&user.id)?,
            asserted,
            imported: self.imported_visas_of(&user.id, now)?,
        })
    }

    /// The visas of `user`'s Passport now (see the module's documentation).
    pub fn passport(&self, user: &User) -> Result<Vec<String>> {
        let now = self.now();
        let contents = self.contents(user, now)?;
        let mut visas = Vec::new();
        if let Some(linked) = self.linked_identities_visa(user, &contents.links, now)? {
            visas.push(linked);
        }
        for assertion in contents.asserted {
            let exp = assertion.expires_at.min(self.visa_expiry(now));
            visas.push(self.sign_visa(user, assertion.visa_object(), exp, now)?);
        }
        visas.extend(contents.imported.into_iter().map(|(_, jwt)| jwt));
        Ok(visas)
    }

    /// What `user`'s Passport would release now, one line per visa for the consent page:
    /// (visa type, what it says and who says it).
    pub fn passport_preview(&self, user: &User) -> Result<Vec<(String, String)>> {
        let now = self.now();
        let contents = self.contents(user, now)?;
        let mut lines = Vec::new();
        if !contents.links.is_empty() {
            let identities: Vec<String> = contents
                .links
                .iter()
                .map(|l| format!("{} at {}", l.subject, self.upstream_name(&l.upstream)))
                .collect();
            lines.push((
                visa::LINKED_IDENTITIES.to_owned(),
                format!("you are {}", identities.join(", ")),
            ));
        }
        let said =
            |object: &VisaObject, by: &str| format!("{} ({}, {by})", object.value, object.source);
        for assertion in &contents.asserted {
            let object = assertion.visa_object();
            lines.push((object.visa_type.clone(), said(&object, "asserted here")));
        }
        for (upstream, jwt) in &contents.imported {
            if let Ok(claims) = visa::inspect_unverified(jwt, now, self.config.clock_skew) {
                let from = format!("from {}", self.upstream_name(upstream));
                lines.push((claims.visa.visa_type.clone(), said(&claims.visa, &from)));
            }
        }
        Ok(lines)
    }

    /// Our `LinkedIdentities` visa of `user`, when the account has linked identities.
    fn linked_identities_visa(
        &self,
        user: &User,
        links: &[UpstreamLink],
        now: UnixTime,
    ) -> Result<Option<String>> {
        let Some(latest) = links.iter().map(|l| l.linked_at).max() else {
            return Ok(None);
        };
        let object = VisaObject {
            visa_type: visa::LINKED_IDENTITIES.into(),
            asserted: latest,
            value: visa::linked_identities(
                links
                    .iter()
                    .map(|l| (l.subject.as_str(), l.issuer.as_str())),
            ),
            source: self.base_url.clone(),
            by: Some("system".into()),
            conditions: None,
        };
        self.sign_visa(user, object, self.visa_expiry(now), now)
            .map(Some)
    }

    /// When a visa we mint at `now` expires at the latest.
    fn visa_expiry(&self, now: UnixTime) -> UnixTime {
        now + self.config.lifetimes.access_token
    }

    /// `object` about `user` as a visa of ours, minted at `now`, expiring at `exp`.
    fn sign_visa(
        &self,
        user: &User,
        object: VisaObject,
        exp: UnixTime,
        now: UnixTime,
    ) -> Result<String> {
        let claims = VisaClaims {
            iss: self.base_url.clone(),
            sub: user.id.clone(),
            iat: now,
            exp,
            jti: Some(proto::random::token(128)),
            visa: object,
        };
        claims
            .sign(&self.signing_key(), &self.url("/jwks"))
            .map_err(|e| Error::Internal(format!("signing a visa: {e}")))
    }
}
