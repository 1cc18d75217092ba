//! An RFC 7523 assertion verified by the checks of §3: its issuer one of the trusted
//! (`iss` exactly, item 1), a `sub` (item 2, at most 255 bytes), an `aud` naming one of the
//! issuer's audiences (item 3), an `exp` not passed (item 4) and at most `max_lifetime_secs`
//! ahead, `nbf` reached (item 5), `iat`, when present, neither ahead nor older than
//! `max_lifetime_secs` (item 6), all within `leeway_secs`; a `jti` (item 7: this server
//! requires one, for it uses each assertion once — [`crate::grants`] records it), and a
//! signature (item 9) by a key of the issuer's with one of its algorithms — never `none`, never
//! a MAC. Refusals are `invalid_grant` (§3.1) with what failed.

use proto::clock::UnixTime;
use proto::jws::Claims;

use super::{JwtBearerIssuer, JwtBearerIssuers};
use crate::error::{Error, Result};
use crate::federation::claims::UpstreamIdentity;
use crate::federation::id_token::{IdToken, audiences};

/// The longest assertion read (bytes).
pub const MAX_ASSERTION: usize = 16 * 1024;

/// The longest `jti` accepted (bytes).
const MAX_JTI: usize = 255;

/// A verified assertion: the identity it asserts and what makes it single-use.
#[derive(Debug)]
pub struct VerifiedAssertion {
    /// The subject, with every claim of the assertion.
    pub identity: UpstreamIdentity,
    /// Its `jti`.
    pub jti: String,
    /// Until when it could be accepted (its `exp` plus the leeway): how long its `jti` is kept.
    pub usable_until: UnixTime,
}

fn refused(why: impl std::fmt::Display) -> Error {
    Error::invalid_grant(format!("the assertion is not acceptable: {why}"))
}

impl JwtBearerIssuers {
    /// The trusted issuer `assertion` names in `iss` — read before the signature is checked,
    /// only to pick the keys to check it with; `invalid_grant` for any other issuer.
    pub fn issuer_of(&self, assertion: &str) -> Result<&JwtBearerIssuer> {
        let payload = assertion.split('.').nth(1).unwrap_or_default();
        let claims: serde_json::Value = proto::b64::decode(payload, "assertion")
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| refused("it is not a JWT"))?;
        let iss = claims["iss"]
            .as_str()
            .ok_or_else(|| refused("it has no iss"))?;
        self.by_issuer(iss)
            .ok_or_else(|| refused("its issuer is not trusted here"))
    }
}

impl JwtBearerIssuer {
    /// Verifies `assertion` at `now`: signed by one of this issuer's keys and passing
    /// [`check`] for `default_audiences` (ours) unless the issuer names its own.
    pub async fn verify(
        &self,
        assertion: &str,
        default_audiences: &[String],
        now: UnixTime,
    ) -> Result<VerifiedAssertion> {
        let token = IdToken::parse_with(assertion, self.algorithms()).map_err(refused)?;
        let mut keys = self.keys(now, false).await?;
        if token.key_in(&keys).is_none() {
            keys = self.keys(now, true).await?;
        }
        let key = token
            .key_in(&keys)
            .ok_or_else(|| refused("it names no key of its issuer"))?
            .clone();
        let claims = token.signed_claims(&key).map_err(refused)?;
        let audiences = if self.config.audience.is_empty() {
            default_audiences
        } else {
            &self.config.audience
        };
        check(&claims, self, audiences, now).map_err(refused)?;
        let jti = claims.string("jti").map_err(refused)?.to_owned();
        let usable_until = claims
            .int("exp")
            .map_err(refused)?
            .saturating_add(self.config.leeway_secs);
        let identity = UpstreamIdentity::new(&self.config.claims, claims.0).map_err(refused)?;
        Ok(VerifiedAssertion {
            identity,
            jti,
            usable_until,
        })
    }
}

/// The claim checks of RFC 7523 §3 (the signature checked before).
pub fn check(
    claims: &Claims,
    issuer: &JwtBearerIssuer,
    audiences_accepted: &[String],
    now: UnixTime,
) -> std::result::Result<(), String> {
    let config = &issuer.config;
    let leeway = config.leeway_secs;
    let text = |name| crate::federation::id_token::required_text(claims, name);
    let int = |name| crate::federation::id_token::required_int(claims, name);
    if text("iss")? != config.issuer {
        return Err("issuer mismatch".into());
    }
    let sub = text("sub")?;
    if sub.is_empty() || sub.len() > 255 {
        return Err("the sub claim is empty or longer than 255 bytes".into());
    }
    let named = audiences(claims)?;
    if !named
        .iter()
        .any(|a| audiences_accepted.iter().any(|ours| ours == a))
    {
        return Err("its audience is not this server".into());
    }
    let exp = int("exp")?;
    if exp.saturating_add(leeway) < now {
        return Err("expired".into());
    }
    if exp > now.saturating_add(config.max_lifetime_secs.saturating_add(leeway)) {
        return Err(format!(
            "exp is more than {} s ahead",
            config.max_lifetime_secs
        ));
    }
    if claims.get("nbf").is_some() && int("nbf")? > now.saturating_add(leeway) {
        return Err("not valid yet (nbf)".into());
    }
    if claims.get("iat").is_some() {
        let iat = int("iat")?;
        if iat > now.saturating_add(leeway) {
            return Err("issued in the future".into());
        }
        if now.saturating_sub(iat) > config.max_lifetime_secs.saturating_add(leeway) {
            return Err(format!(
                "issued more than {} s ago",
                config.max_lifetime_secs
            ));
        }
    }
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI {
        return Err(format!(
            "the jti claim is empty or longer than {MAX_JTI} bytes"
        ));
    }
    Ok(())
}
