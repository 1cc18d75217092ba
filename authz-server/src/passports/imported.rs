//! Visas imported from upstreams. An upstream configured with `visas = true` may release a
//! `ga4gh_passport_v1` claim (in its ID token, or at its userinfo endpoint with `userinfo =
//! true`); at every login through it (and once a pending link is made) the visas of that claim
//! replace those kept for (upstream, user) before, and a login without the claim leaves none.
//! They go when the identity is unlinked or the user removed.
//!
//! This server passes them on as they came, with their issuers' signatures (AAI, "Conformance
//! for Brokers", item 7: "as is") — it holds no keys of their issuers and does not vouch for
//! them — but it passes on no garbage: a visa is kept only if [`proto::visa::inspect_unverified`]
//! finds a visa's header (ES256/RS256, `typ`, `jku`, `kid`), well-formed claims and an `exp`
//! still ahead, and an issuer other than this server; at most [`MAX_IMPORTED_VISAS`] of at most [`proto::visa::MAX_VISA_BYTES`] each
//! (the whole answer is bounded already, [`crate::federation::MAX_UPSTREAM_BODY`]). Verifying
//! signatures is the clearinghouse's job ([`proto::visa::verify_visa`]).

use proto::clock::UnixTime;
use proto::visa;

use crate::error::Result;
use crate::federation::Upstream;
use crate::federation::claims::UpstreamIdentity;
use crate::provider::Provider;
use crate::store::imported_visas::{self, ImportedVisa, ImportedVisas};

/// The most visas kept from one login.
pub const MAX_IMPORTED_VISAS: usize = 32;

/// The visas `identity` brings from `upstream` at `now`, screened; `None` when the upstream's
/// visas are not imported at all. A visa naming `ours` (this server) as its issuer is left
/// out: we never get our own visas from an upstream, and one of ours passed on — a real one,
/// about another of our users — would verify as ours in this user's Passport.
pub fn screened(
    upstream: &Upstream,
    identity: &UpstreamIdentity,
    ours: &str,
    now: UnixTime,
    leeway: i64,
) -> Option<Vec<ImportedVisa>> {
    if !upstream.config.visas {
        return None;
    }
    let offered = visa::passport_visas(&identity.claims).unwrap_or_else(|_| {
        tracing::warn!(
            upstream = upstream.id(),
            "ga4gh_passport_v1 is not an array of strings"
        );
        Vec::new()
    });
    let kept: Vec<ImportedVisa> = offered
        .iter()
        .filter_map(|jwt| match visa::inspect_unverified(jwt, now, leeway) {
            Ok(claims) if claims.iss == ours => {
                tracing::warn!(
                    upstream = upstream.id(),
                    "an upstream visa naming this server as its issuer was left out"
                );
                None
            }
            Ok(claims) => Some(ImportedVisa {
                jwt: (*jwt).to_owned(),
                exp: claims.exp,
            }),
            Err(why) => {
                tracing::info!(upstream = upstream.id(), %why, "an upstream visa was left out");
                None
            }
        })
        .take(MAX_IMPORTED_VISAS)
        .collect();
    Some(kept)
}

impl Provider {
    /// Keeps the visas `identity` brings from `upstream` for `user_id` (nothing happens when
    /// the upstream's visas are not imported).
    pub(crate) fn import_visas(
        &self,
        upstream: &Upstream,
        identity: &UpstreamIdentity,
        user_id: &str,
    ) -> Result<()> {
        let visas = screened(
            upstream,
            identity,
            &self.base_url,
            self.now(),
            self.config.clock_skew,
        );
        self.keep_imported_visas(upstream.id(), user_id, visas)
    }

    /// Keeps `visas` (screened before) from the upstream `upstream_id` for `user_id`,
    /// replacing those kept before (none: removing them); `None` changes nothing.
    pub(crate) fn keep_imported_visas(
        &self,
        upstream_id: &str,
        user_id: &str,
        visas: Option<Vec<ImportedVisa>>,
    ) -> Result<()> {
        let Some(visas) = visas else {
            return Ok(());
        };
        let store = self.store();
        let count = visas.len();
        match visas.iter().map(|v| v.exp).max() {
            None => imported_visas::remove_of(store, upstream_id, user_id)?,
            Some(expires_at) => imported_visas::put(
                store,
                &ImportedVisas {
                    upstream: upstream_id.to_owned(),
                    user_id: user_id.to_owned(),
                    visas,
                    expires_at,
                    stored_at: self.now(),
                },
            )?,
        }
        crate::store::flush(store)?;
        self.audit.record(
            self.now(),
            "upstream.visas_imported",
            serde_json::json!({"user": user_id, "upstream": upstream_id, "visas": count}),
        );
        Ok(())
    }

    /// The imported visas of `user_id` still valid at `now`, from upstreams still configured
    /// to import them, in the upstreams' configured order: (upstream id, visa).
    pub(super) fn imported_visas_of(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<Vec<(String, String)>> {
        let mut records = imported_visas::of_user(self.store(), user_id)?;
        let order = self.upstream_buttons();
        records.retain(|r| {
            self.upstreams
                .get(&r.upstream)
                .is_some_and(|u| u.config.visas)
        });
        records.sort_by_key(|r| order.iter().position(|(id, _)| *id == r.upstream));
        Ok(records
            .into_iter()
            .flat_map(|r| {
                let upstream = r.upstream;
                r.visas
                    .into_iter()
                    .filter(|v| v.exp > now)
                    .map(move |v| (upstream.clone(), v.jwt))
            })
            .collect())
    }
}
