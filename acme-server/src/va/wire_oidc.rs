//! `wire-oidc-01` (DESIGN §4 step 7): the identity provider's ID token, verified by `proto`:
//! issuer signature, `iss`, `aud`, times, `keyauth` = token.thumbprint(account key),
//! `acme_aud` = this challenge's URL, and the mapped name and handle.

use proto::clock::UnixTime;
use proto::id_token::{ClaimMapping, IdTokenCheck, verify_id_token};
use proto::jwk::Jwk;
use proto::wire_id::key_authorization;

use super::WireContext;
use crate::config::OidcConfig;

/// Verifies `id_token` for the challenge in `ctx`, with the issuer's `keys`.
pub fn check(
    id_token: &str,
    ctx: &WireContext<'_>,
    keys: &[Jwk],
    config: &OidcConfig,
    now: UnixTime,
) -> proto::Result<()> {
    let keyauth = key_authorization(ctx.token, &ctx.account_key.thumbprint());
    let mapping = ClaimMapping {
        handle: config.handle_claim.clone(),
        name: config.name_claim.clone(),
    };
    let check = IdTokenCheck {
        issuer_keys: keys,
        issuer: &config.issuer,
        client_id: &config.client_id,
        keyauth: &keyauth,
        acme_aud: ctx.url,
        identity: ctx.subject.identity,
        mapping: &mapping,
    };
    verify_id_token(id_token, &check, config.leeway, now).map(|_| ())
}
