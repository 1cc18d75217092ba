//! Browser sessions (single sign-on at the authorization server): a login — by password, through
//! an upstream, or both — starts a session whose cookie lets a later `/authorize`, the device
//! page and the account page in the same browser go on without asking again, within an idle
//! and an absolute lifetime (`[sessions]`). What a login proves is an [`Authentication`]: the
//! user, `auth_time`, `amr` and the session's id (`sid`), which the code and the ID token
//! carry. Sessions are stored server-side ([`crate::store::sessions`]), listed and revoked on
//! the account page, ended by RP-initiated logout, and gone with their user.

use proto::clock::UnixTime;
use proto::secret::SecretString;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::sessions::{self as stored, SessionRecord, StoredSession};
use crate::store::users::User;
use crate::store::{self, digest};

/// A session is touched (its `last_seen` written) at most this often, in seconds.
const TOUCH_EVERY: i64 = 60;

/// The longest `User-Agent` kept with a session.
const MAX_USER_AGENT: usize = 200;

/// `[sessions]`: browser sessions at the authorization server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// Whether a login starts a session (false: every `/authorize` asks again).
    pub enabled: bool,
    /// Seconds a session lasts without being used.
    pub idle_secs: i64,
    /// Seconds a session lasts at most after its login, used or not.
    pub absolute_secs: i64,
    /// Sessions one user may have; a login beyond it ends the least recently used ones.
    pub max_per_user: usize,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            idle_secs: 30 * 60,
            absolute_secs: 10 * 3600,
            max_per_user: 50,
        }
    }
}

impl SessionsConfig {
    /// Checks the lifetimes.
    pub fn validate(&self) -> Result<()> {
        if !(60..=86_400).contains(&self.idle_secs) {
            return Err(Error::Config(
                "sessions.idle_secs must be between 60 and 86400".into(),
            ));
        }
        if !(1..=1000).contains(&self.max_per_user) {
            return Err(Error::Config(
                "sessions.max_per_user must be between 1 and 1000".into(),
            ));
        }
        if !(self.idle_secs..=30 * 86_400).contains(&self.absolute_secs) {
            return Err(Error::Config(
                "sessions.absolute_secs must be at least idle_secs and at most 30 days".into(),
            ));
        }
        Ok(())
    }
}

/// How the user authenticated (`amr`, OpenID Connect Core §2; RFC 8176 names `pwd`, and `fed`
/// marks a login through an upstream identity provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// The local password.
    Password,
    /// The upstream with this id, where the user logged in at the time it says (if it does).
    Upstream(String, Option<UnixTime>),
    /// The upstream with this id, then the local password (linking at first login).
    UpstreamThenPassword(String),
}

impl Method {
    fn amr(&self) -> Vec<String> {
        match self {
            Self::Password => vec!["pwd".into()],
            Self::Upstream(..) => vec!["fed".into()],
            Self::UpstreamThenPassword(_) => vec!["fed".into(), "pwd".into()],
        }
    }

    /// When the user logged in: the upstream's time when it said, else `now`.
    fn auth_time(&self, now: UnixTime) -> UnixTime {
        match self {
            Self::Upstream(_, Some(at)) => (*at).min(now),
            _ => now,
        }
    }

    fn upstream(&self) -> Option<String> {
        match self {
            Self::Password => None,
            Self::Upstream(id, _) | Self::UpstreamThenPassword(id) => Some(id.clone()),
        }
    }
}

/// What a login proved, now or earlier in this browser's session: an authorization code, the
/// device page and the account page take one, never a bare user.
#[derive(Debug, Clone)]
pub struct Authentication {
    /// The user.
    pub user: User,
    /// When the user authenticated.
    pub auth_time: UnixTime,
    /// How (`amr`).
    pub amr: Vec<String>,
    /// The session (`sid`), when one holds the login.
    pub session_id: Option<String>,
}

/// A session's cookie value: the user id, the session id and the secret (`Debug` shows none).
pub struct SessionCookie(SecretString);

impl SessionCookie {
    /// The cookie's value.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCookie(…)")
    }
}

/// A session as the account page lists it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// Its id.
    pub id: String,
    /// The stored record.
    pub record: SessionRecord,
}

/// The user id, session id and secret of a cookie value.
fn parse_cookie(value: &str) -> Option<(&str, &str, &str)> {
    let mut parts = value.splitn(3, '.');
    let (user, session, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let fine = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (fine(user) && fine(session) && fine(secret)).then_some((user, session, secret))
}

impl Provider {
    /// Whether logins start sessions.
    pub fn sessions_enabled(&self) -> bool {
        self.config.sessions.enabled
    }

    /// Records that `user` just logged in by `method`: a new session (unless sessions are off),
    /// ending the one of `replacing` (the browser's current cookie) if any.
    pub fn start_session(
        &self,
        user: User,
        method: &Method,
        user_agent: &str,
        replacing: Option<&str>,
    ) -> Result<(Authentication, Option<SessionCookie>)> {
        let now = self.now();
        let amr = method.amr();
        let auth_time = method.auth_time(now);
        if let Some(old) = replacing {
            self.end_session(old)?;
        }
        if !self.sessions_enabled() {
            let auth = Authentication {
                user,
                auth_time,
                amr,
                session_id: None,
            };
            return Ok((auth, None));
        }
        let lifetimes = &self.config.sessions;
        let session_id = proto::random::token(128);
        let secret = proto::random::token(256);
        let record = SessionRecord {
            secret_sha256: digest(&secret),
            auth_time,
            amr: amr.clone(),
            upstream: method.upstream(),
            last_seen: now,
            expires_at: now + lifetimes.idle_secs.min(lifetimes.absolute_secs),
            absolute_end: auth_time + lifetimes.absolute_secs,
            user_agent: user_agent
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_USER_AGENT)
                .collect(),
        };
        stored::insert(self.store(), &user.id, &session_id, &record)?;
        self.evict_beyond_cap(&user.id, &session_id)?;
        store::flush(self.store())?;
        self.audit.record(
            now,
            "session.started",
            serde_json::json!({"user": user.id, "session": session_id, "amr": amr,
                               "upstream": record.upstream}),
        );
        let cookie = SessionCookie(SecretString::new(format!(
            "{}.{session_id}.{secret}",
            user.id
        )));
        let auth = Authentication {
            user,
            auth_time,
            amr,
            session_id: Some(session_id),
        };
        Ok((auth, Some(cookie)))
    }

    /// Ends the least recently used sessions of `user_id` beyond `max_per_user`, never `keep`
    /// (the one just started). Each login trims after its own insert, so however many logins
    /// race, no more than the cap are left once they are done.
    fn evict_beyond_cap(&self, user_id: &str, keep: &str) -> Result<()> {
        let cap = self.config.sessions.max_per_user;
        let mut sessions = stored::of_user(self.store(), user_id)?;
        if sessions.len() <= cap {
            return Ok(());
        }
        sessions.sort_by_key(|(id, r)| (id != keep, std::cmp::Reverse((r.last_seen, r.auth_time))));
        for (id, _) in sessions.split_off(cap) {
            self.revoke_session(user_id, &id, "session.evicted")?;
        }
        Ok(())
    }

    /// The login the session of `cookie` holds, if it is a live session of an existing user;
    /// a lapsed session (or one whose user is gone) is removed. Touches the session.
    pub fn session(&self, cookie: Option<&str>) -> Result<Option<Authentication>> {
        if !self.sessions_enabled() {
            return Ok(None);
        }
        let Some((user_id, session_id, read)) = cookie
            .map(|c| self.session_of_cookie(c))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let (user_id, session_id) = (user_id.as_str(), session_id.as_str());
        let store = self.store();
        let now = self.now();
        let user = store::users::get(store, user_id)?;
        let Some(user) = user.filter(|_| read.value().expires_at > now) else {
            stored::remove(store, user_id, session_id)?;
            return Ok(None);
        };
        let record = read.value();
        if now - record.last_seen >= TOUCH_EVERY {
            let mut touched = record.clone();
            touched.last_seen = now;
            touched.expires_at = (now + self.config.sessions.idle_secs).min(record.absolute_end);
            // Lost to a logout (or another touch): gone if it is gone.
            if !store::replace(store, &read, &touched)?
                && stored::get(store, user_id, session_id)?.is_none()
            {
                return Ok(None);
            }
        }
        Ok(Some(Authentication {
            user,
            auth_time: record.auth_time,
            amr: record.amr.clone(),
            session_id: Some(session_id.to_owned()),
        }))
    }

    /// Ends the session of `cookie` (logout); the user and session ids when there was one.
    pub fn end_session(&self, cookie: &str) -> Result<Option<(String, String)>> {
        let Some((user_id, session_id, _)) = self.session_of_cookie(cookie)? else {
            return Ok(None);
        };
        self.revoke_session(&user_id, &session_id, "session.ended")?;
        Ok(Some((user_id, session_id)))
    }

    /// The stored session a cookie names, with its user and session ids, if the cookie's secret
    /// is the session's (lapsed or not).
    fn session_of_cookie(&self, cookie: &str) -> Result<Option<(String, String, StoredSession)>> {
        let Some((user_id, session_id, secret)) = parse_cookie(cookie) else {
            return Ok(None);
        };
        Ok(stored::get(self.store(), user_id, session_id)?
            .filter(|read| stored::secret_matches(read.value(), secret))
            .map(|read| (user_id.to_owned(), session_id.to_owned(), read)))
    }

    /// Removes the session `session_id` of `user_id` (durable on return); whether it was there.
    pub fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        event: &'static str,
    ) -> Result<bool> {
        let store = self.store();
        let removed = stored::remove(store, user_id, session_id)?;
        if removed {
            store::flush(store)?;
            self.audit.record(
                self.now(),
                event,
                serde_json::json!({"user": user_id, "session": session_id}),
            );
        }
        Ok(removed)
    }

    /// Refuses unless `session_id` is a live session of `user_id` (a link started from the
    /// account page is made only while the session that started it lives).
    pub fn require_live_session(&self, user_id: &str, session_id: Option<&str>) -> Result<()> {
        let live = match session_id {
            Some(sid) => stored::get(self.store(), user_id, sid)?
                .is_some_and(|read| read.value().expires_at > self.now()),
            None => false,
        };
        if live {
            Ok(())
        } else {
            Err(Error::upstream_denied(
                "the session that started this link has ended; sign in and start again",
            ))
        }
    }

    /// The live sessions of `user_id`, newest login first.
    pub fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionSummary>> {
        let now = self.now();
        let mut sessions: Vec<SessionSummary> = stored::of_user(self.store(), user_id)?
            .into_iter()
            .filter(|(_, r)| r.expires_at > now)
            .map(|(id, record)| SessionSummary { id, record })
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.record.auth_time));
        Ok(sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_has_three_plain_parts() {
        assert_eq!(parse_cookie("u-1.s_2.abc"), Some(("u-1", "s_2", "abc")));
        for bad in ["", "a.b", "a..c", "a.b.c.d", "a.b.c;d", "a.b. c"] {
            assert_eq!(parse_cookie(bad), None, "{bad:?}");
        }
        assert_eq!(parse_cookie(&format!("a.b.{}", "x".repeat(65))), None);
    }

    #[test]
    fn lifetimes_are_checked() {
        let mut config = SessionsConfig::default();
        config.validate().unwrap();
        config.absolute_secs = config.idle_secs - 1;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("absolute_secs")
        );
        config = SessionsConfig {
            idle_secs: 10,
            ..SessionsConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("idle_secs")
        );
    }

    #[test]
    fn amr_says_how() {
        assert_eq!(Method::Password.amr(), ["pwd"]);
        assert_eq!(Method::Upstream("corp".into(), None).amr(), ["fed"]);
        assert_eq!(Method::Upstream("corp".into(), Some(90)).auth_time(100), 90);
        assert_eq!(
            Method::Upstream("corp".into(), Some(110)).auth_time(100),
            100
        );
        assert_eq!(Method::Password.auth_time(100), 100);
        assert_eq!(
            Method::UpstreamThenPassword("corp".into())
                .upstream()
                .as_deref(),
            Some("corp")
        );
    }
}
