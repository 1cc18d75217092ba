//! Logging a user in with handle and password (the login form at `/authorize` and the device
//! verification page): within the failed-login limits of the user and of the client's address,
//! on the password workers, with an audit event either way; refused outright when
//! `local_login = false` (users log in through upstreams only).

use std::net::IpAddr;

use proto::secret::SecretString;

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::users::User;

/// The longest password a login form may carry.
const MAX_PASSWORD_BYTES: usize = 1024;

/// The failed-login bucket of every handle no user can have.
const IMPLAUSIBLE_HANDLE: &str = "(not a handle)";

impl Provider {
    /// Checks a password on the password workers, within the failed-login limits of the user
    /// and of the client's address `ip`: their tokens are taken before the check and given back
    /// unless the password was wrong.
    pub async fn log_in(&self, ip: IpAddr, handle: String, password: SecretString) -> Result<User> {
        if !self.config.local_login {
            return Err(Error::PasswordLoginOff);
        }
        // A handle no user can have (or an absurdly long password) is refused like a wrong
        // password, without hashing, and counted under one shared name: what was typed is
        // neither kept as a limiter key nor logged (it may be a password typed in the wrong
        // field), so it cannot grow memory or the audit log.
        let plausible = proto::wire_id::validate_handle(&handle).is_ok()
            && password.expose().len() <= MAX_PASSWORD_BYTES;
        if !plausible {
            drop(self.limiters.reserve_login(IMPLAUSIBLE_HANDLE, ip)?);
            self.audit.record(
                self.now(),
                "login.failed",
                serde_json::json!({"handle": null, "ip": ip.to_string()}),
            );
            return Err(Error::BadCredentials);
        }
        let reservation = self.limiters.reserve_login(&handle, ip)?;
        let outcome = self
            .passwords
            .check(ip, self.store.clone(), handle.clone(), password)
            .await;
        let now = self.now();
        match &outcome {
            Ok(user) => {
                reservation.refund();
                self.audit.record(
                    now,
                    "login.succeeded",
                    serde_json::json!({"user": user.id, "handle": handle, "ip": ip.to_string()}),
                );
            }
            Err(Error::BadCredentials) => {
                drop(reservation);
                self.audit.record(
                    now,
                    "login.failed",
                    serde_json::json!({"handle": handle, "ip": ip.to_string()}),
                );
            }
            // Not checked (no room on the workers) or not the client's failure.
            Err(_) => reservation.refund(),
        }
        outcome
    }
}
