//! How fresh a login through an upstream must be. A client that asks us for a new login
//! (`prompt=login`) or a recent one (`max_age`) must not be satisfied by the upstream's own
//! session: the request goes on to an OpenID upstream as `prompt=login` and `max_age` (`0` for
//! `prompt=login`, so its ID token must carry `auth_time`, OpenID Connect Core §3.1.2.1), and
//! the `auth_time` that comes back is checked and becomes the login's time here. A plain OAuth
//! 2.0 upstream cannot say when its user logged in, so such requests are refused through it.

use std::collections::HashMap;

use proto::clock::UnixTime;

use crate::authorization::AuthorizationRequest;

/// What a waiting authorization request asks of the login's freshness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Freshness {
    /// `prompt=login`: a login after the request started.
    pub new_login: bool,
    /// `max_age`: a login at most this many seconds old.
    pub max_age: Option<i64>,
}

impl Freshness {
    /// What the authorization request `params` ask.
    pub fn of(params: &HashMap<String, String>) -> Self {
        Self {
            new_login: AuthorizationRequest::prompt_of(params).login,
            max_age: params
                .get("max_age")
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| *v >= 0),
        }
    }

    /// Whether anything is asked.
    pub fn asked(&self) -> bool {
        self.new_login || self.max_age.is_some()
    }

    /// The `max_age` to send the upstream: the request's, or 0 for a new login.
    pub fn upstream_max_age(&self) -> Option<i64> {
        match (self.new_login, self.max_age) {
            (true, _) => Some(0),
            (false, age) => age,
        }
    }

    /// Checks the upstream's `auth_time` against what was asked, for a login that started at
    /// `started`; why not, otherwise. With nothing asked, anything (or nothing) passes.
    pub fn check(
        &self,
        auth_time: Option<UnixTime>,
        started: UnixTime,
        now: UnixTime,
        skew: i64,
    ) -> Result<(), String> {
        if !self.asked() {
            return Ok(());
        }
        let Some(at) = auth_time else {
            return Err(
                "it did not say when the user logged in (auth_time), which a fresh \
                        login needs"
                    .into(),
            );
        };
        if at > now + skew {
            return Err("its auth_time is in the future".into());
        }
        if self.new_login && at + skew < started {
            return Err("the user was not asked to log in again".into());
        }
        if let Some(max_age) = self.max_age
            && now - at > max_age + skew
        {
            return Err(format!(
                "the user's login there is older than max_age ({max_age} s)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(pairs: &[(&str, &str)]) -> Freshness {
        Freshness::of(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_new_login_is_one_after_the_start_and_max_age_bounds_its_age() {
        let (started, now, skew) = (1000, 1100, 5);
        let none = asked(&[]);
        assert!(none.check(None, started, now, skew).is_ok());
        assert_eq!(none.upstream_max_age(), None);

        let login = asked(&[("prompt", "login")]);
        assert_eq!(login.upstream_max_age(), Some(0));
        assert!(login.check(Some(1050), started, now, skew).is_ok());
        assert!(
            login.check(Some(996), started, now, skew).is_ok(),
            "within the skew"
        );
        let old = login.check(Some(900), started, now, skew).unwrap_err();
        assert!(old.contains("not asked to log in again"), "{old}");
        assert!(
            login
                .check(None, started, now, skew)
                .unwrap_err()
                .contains("auth_time")
        );
        assert!(login.check(Some(now + 60), started, now, skew).is_err());

        let recent = asked(&[("max_age", "60")]);
        assert_eq!(recent.upstream_max_age(), Some(60));
        assert!(recent.check(Some(now - 60), started, now, skew).is_ok());
        let stale = recent
            .check(Some(now - 120), started, now, skew)
            .unwrap_err();
        assert!(stale.contains("older than max_age (60 s)"), "{stale}");
        assert_eq!(asked(&[("max_age", "-3")]), none);
    }
}
