//! `wire-dpop-01` (DESIGN §4 step 6): the backend's access token, verified by `proto` against
//! this challenge, this account's key and this order's identity.

use proto::access_token::{AccessTokenCheck, AccessTokenPolicy, verify_access_token};
use proto::clock::UnixTime;
use proto::jwk::Jwk;

use super::WireContext;
use crate::config::DpopConfig;

/// The access-token policy for a configuration.
pub fn policy(config: &DpopConfig) -> AccessTokenPolicy {
    AccessTokenPolicy {
        leeway: config.leeway,
        max_lifetime: config.max_token_lifetime,
        // The device's embedded proof: the same allowance for the device's clock.
        proof: proto::dpop::DpopPolicy::wire().with_skew(config.leeway),
        ..AccessTokenPolicy::default()
    }
}

/// Verifies `access_token` for the challenge in `ctx`, with the backend's `keys`.
pub fn check(
    access_token: &str,
    ctx: &WireContext<'_>,
    keys: &[Jwk],
    policy: &AccessTokenPolicy,
    now: UnixTime,
) -> proto::Result<()> {
    let check = AccessTokenCheck {
        backend_keys: keys,
        issuer: ctx.subject.target,
        audience: ctx.url,
        account_key: ctx.account_key,
        challenge_token: ctx.token,
        identity: ctx.subject.identity,
    };
    verify_access_token(access_token, &check, policy, now).map(|_| ())
}
