//! Leases on refreshing kept upstream tokens (`refresh_leases`, by the kept record's key): one
//! refresh of a record at a time across every process using the store. Replicas each hold an
//! in-process lock per record, which keeps one replica's requests from refreshing together;
//! the lease keeps two replicas from refreshing together, which would spend a single-use
//! upstream refresh token twice (the upstream refuses the second, and the user would have to
//! log in again). A lease names its holder and ends at `expires_at`: released after the
//! refresh, taken over once expired (a holder that crashed), swept once expired
//! ([`super::cleanup`]).

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::Result;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    /// A random name of the holder (one per claim).
    holder: String,
    expires_at: UnixTime,
}

/// A lease this process holds; [`release`] ends it.
#[derive(Debug)]
pub struct Held {
    key: String,
    raw: Vec<u8>,
}

/// Claims the lease on refreshing `record_key` until `now + secs`: `None` while another holds
/// an unexpired one.
pub fn claim(
    store: &dyn Store,
    record_key: &str,
    now: UnixTime,
    secs: i64,
) -> Result<Option<Held>> {
    let lease = Lease {
        holder: proto::random::token(128),
        expires_at: now.saturating_add(secs),
    };
    let raw = super::encode(&lease)?;
    loop {
        let current = store.get(trees::REFRESH_LEASES, record_key)?;
        if let Some(bytes) = &current {
            let held = serde_json::from_slice::<Lease>(bytes)
                .map(|l| l.expires_at > now)
                .unwrap_or(false);
            if held {
                return Ok(None);
            }
        }
        if store.compare_and_swap(
            trees::REFRESH_LEASES,
            record_key,
            current.as_deref(),
            Some(&raw),
        )? {
            return Ok(Some(Held {
                key: record_key.to_owned(),
                raw,
            }));
        }
    }
}

/// Ends a lease (unless it expired and another took it over meanwhile).
pub fn release(store: &dyn Store, held: Held) -> Result<()> {
    store.compare_and_swap(trees::REFRESH_LEASES, &held.key, Some(&held.raw), None)?;
    Ok(())
}
