//! Server configuration: a TOML file, overridden by environment variables and command-line
//! flags (the binary merges those through clap), with defaults fit for a development run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (HTTPS).
    pub listen: SocketAddr,
    /// The public base URL clients use (issuer, `htu` base); never derived from `Host`.
    /// Empty means `https://{listen}`.
    pub public_url: String,
    /// Directory for the store, keys and dev PKI.
    pub data_dir: PathBuf,
    /// Where records are kept (`[store]`): the embedded store in `data_dir/store`, or a
    /// PostgreSQL database replicas share.
    pub store: server_kit::store::StoreConfig,
    /// Development mode: create TLS and signing keys in the data directory and seed a demo user
    /// and client.
    pub dev: bool,
    /// The Wire domain of this backend (client-id and handle URIs).
    pub domain: String,
    /// PEM certificate chain for TLS (required unless `dev`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (required unless `dev`).
    pub tls_key: Option<PathBuf>,
    /// Require a server-issued nonce in DPoP proofs at `/token` and resource endpoints
    /// (`use_dpop_nonce` otherwise, RFC 9449 §8, §9).
    pub require_dpop_nonce: bool,
    /// Seconds of clock difference tolerated between a device and this server in the Wire
    /// proof's times (`iat`/`nbf` ahead, `exp` behind, and on top of the `exp` cap).
    pub clock_skew: i64,
    /// Lifetimes in seconds.
    pub lifetimes: Lifetimes,
    /// Connections, timeouts and sizes (`[limits]`).
    pub limits: server_kit::limits::Limits,
    /// The CPUs the process plans for (`[runtime]`).
    pub runtime: server_kit::runtime::RuntimeConfig,
    /// Rate limits (`[rate_limits]`).
    pub rate_limits: crate::rate_limits::RateLimits,
    /// Password-check workers and how many checks may run and wait (`[password_checks]`).
    pub password_checks: crate::password_pool::PasswordChecks,
    /// Caps on what one user may hold (`[caps]`).
    pub caps: Caps,
    /// Which tokens the Wire device endpoints accept (`[device_access]`).
    pub device_access: DeviceAccess,
    /// Background removal of expired records (`[cleanup]`).
    pub cleanup: server_kit::cleanup::CleanupConfig,
    /// Whether users may log in with a handle and password; false makes a pure broker (the
    /// login page offers only the upstreams, password logins are refused).
    pub local_login: bool,
    /// Upstream identity providers users may log in through (`[[upstream]]`).
    pub upstream: Vec<crate::federation::UpstreamConfig>,
    /// Browser sessions (`[sessions]`).
    pub sessions: crate::sessions::SessionsConfig,
    /// Remote verifiers whose grant clients may use (`[[remote_auth]]`).
    pub remote_auth: Vec<crate::remote_auth::RemoteAuthConfig>,
    /// Trusted issuers of RFC 7523 grant assertions (`[[jwt_bearer_issuer]]`).
    pub jwt_bearer_issuer: Vec<crate::jwt_bearer::JwtBearerConfig>,
    /// The 32-byte key (0600) the upstreams' tokens are sealed with in the store; default
    /// `{data_dir}/upstream-tokens.key`, made at the first start with an upstream.
    pub upstream_tokens_key_file: Option<PathBuf>,
    /// Permission services asked for access-token claims at issuance (`[[claims_source]]`).
    pub claims_source: Vec<crate::claims_sources::ClaimsSourceConfig>,
}

/// Caps on what one user may hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Caps {
    /// Registered devices per user (Wire allows 7 permanent clients and 1 temporary one).
    pub devices_per_user: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            devices_per_user: 8,
        }
    }
}

/// Which access tokens the Wire device endpoints (`/clients…`) accept: they register devices
/// and hand out the tokens that get device certificates in the user's name, so a token needs
/// the device scope, and by default must have been issued to a first-party client.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceAccess {
    /// The scope a token needs (advertised in `scopes_supported`, explained on the consent page).
    pub scope: String,
    /// Accept only tokens of first-party clients (registered without `--third-party`).
    pub first_party_only: bool,
}

impl Default for DeviceAccess {
    fn default() -> Self {
        Self {
            scope: crate::scopes::DEFAULT_DEVICE_SCOPE.into(),
            first_party_only: true,
        }
    }
}

/// Lifetimes and windows, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifetimes {
    /// User access tokens from `/token`.
    pub access_token: i64,
    /// ID tokens.
    pub id_token: i64,
    /// Authorization codes.
    pub authorization_code: i64,
    /// Backend nonces.
    pub backend_nonce: i64,
    /// Wire client access tokens from `/clients/{id}/access-token`.
    pub client_access_token: i64,
    /// Furthest `exp` accepted in a client's DPoP proof, from now.
    pub max_proof_exp: i64,
    /// Furthest `exp` accepted in a `private_key_jwt` client assertion, from now (plus 60 s of
    /// clock skew); RFC 7523 sets no cap, Authlib signs for 3600 s. Each assertion's `jti` is
    /// remembered until its `exp`, so one is never accepted twice.
    pub max_client_assertion_exp: i64,
    /// Refresh tokens.
    pub refresh_token: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_token: 900,
            id_token: 300,
            authorization_code: 60,
            backend_nonce: 300,
            client_access_token: 360,
            max_proof_exp: 3600,
            max_client_assertion_exp: 3600,
            refresh_token: 30 * 86_400,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            public_url: String::new(),
            data_dir: PathBuf::from("authz-data"),
            store: server_kit::store::StoreConfig::default(),
            dev: false,
            domain: "wire.example".into(),
            tls_cert: None,
            tls_key: None,
            require_dpop_nonce: false,
            lifetimes: Lifetimes::default(),
            limits: server_kit::limits::Limits::default(),
            runtime: server_kit::runtime::RuntimeConfig::default(),
            clock_skew: proto::dpop::DEFAULT_WIRE_SKEW,
            rate_limits: crate::rate_limits::RateLimits::default(),
            password_checks: crate::password_pool::PasswordChecks::default(),
            caps: Caps::default(),
            device_access: DeviceAccess::default(),
            cleanup: server_kit::cleanup::CleanupConfig::default(),
            local_login: true,
            upstream: Vec::new(),
            sessions: crate::sessions::SessionsConfig::default(),
            remote_auth: Vec::new(),
            jwt_bearer_issuer: Vec::new(),
            upstream_tokens_key_file: None,
            claims_source: Vec::new(),
        }
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// The file of the key upstream tokens are sealed with.
    pub fn upstream_tokens_key_file(&self) -> PathBuf {
        self.upstream_tokens_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("upstream-tokens.key"))
    }

    /// Checks values that would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        self.runtime.validate()?;
        self.store.validate("authz")?;
        self.cleanup.validate()?;
        proto::wire_id::validate_domain(&self.domain).map_err(|_| {
            Error::Config(format!(
                "domain {:?} is not a lower-case DNS name",
                self.domain
            ))
        })?;
        if !self.public_url.is_empty() {
            let url = url::Url::parse(&self.public_url)
                .map_err(|e| Error::Config(format!("public_url: {e}")))?;
            if url.scheme() != "https" && url.scheme() != "http" {
                return Err(Error::Config("public_url must be an http(s) URL".into()));
            }
        }
        let device_scope = &self.device_access.scope;
        if !crate::scopes::is_scope_token(device_scope)
            || crate::scopes::IDENTITY_SCOPES.contains(&device_scope.as_str())
        {
            return Err(Error::Config(format!(
                "device_access.scope {device_scope:?} must be one scope-token (RFC 6749 §3.3) other than {}",
                crate::scopes::IDENTITY_SCOPES.join(", ")
            )));
        }
        if !self.dev && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err(Error::Config(
                "tls_cert and tls_key are required outside dev mode".into(),
            ));
        }
        if !(0..=3600).contains(&self.clock_skew) {
            return Err(Error::Config(
                "clock_skew must be between 0 and 3600 seconds".into(),
            ));
        }
        crate::federation::config::validate_all(&self.upstream)?;
        crate::claims_sources::config::validate_all(&self.claims_source)?;
        crate::remote_auth::validate_all(&self.remote_auth)?;
        crate::jwt_bearer::validate_all(&self.jwt_bearer_issuer)?;
        self.validate_identity_sources()?;
        self.sessions.validate()?;
        if !self.local_login && self.upstream.is_empty() {
            return Err(Error::Config(
                "local_login = false needs at least one [[upstream]] to log in through".into(),
            ));
        }
        if !self.local_login
            && let Some(u) = self
                .upstream
                .iter()
                .find(|u| u.first_login == crate::federation::FirstLogin::Link)
        {
            return Err(Error::Config(format!(
                "upstream {:?}: first_login = \"link\" needs local_login = true (the user logs in \
                 to the account to link with its password)",
                u.id
            )));
        }
        let l = &self.lifetimes;
        for (name, v) in [
            ("access_token", l.access_token),
            ("id_token", l.id_token),
            ("authorization_code", l.authorization_code),
            ("backend_nonce", l.backend_nonce),
            ("client_access_token", l.client_access_token),
            ("max_proof_exp", l.max_proof_exp),
            ("max_client_assertion_exp", l.max_client_assertion_exp),
            ("refresh_token", l.refresh_token),
        ] {
            if v <= 0 {
                return Err(Error::Config(format!("lifetimes.{name} must be positive")));
            }
        }
        Ok(())
    }

    /// The issuer the identities of the source `id` — an upstream, a remote verifier or a
    /// JWT-bearer issuer — are linked under.
    pub fn source_issuer(&self, id: &str) -> Option<String> {
        let upstream = self
            .upstream
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.issuer());
        let verifier = || {
            self.remote_auth
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.id.clone())
        };
        let issuer = || {
            self.jwt_bearer_issuer
                .iter()
                .find(|j| j.id == id)
                .map(|j| j.issuer.clone())
        };
        upstream.or_else(verifier).or_else(issuer)
    }

    /// Upstreams, remote verifiers and JWT-bearer issuers share one namespace of ids (links,
    /// client allow-lists, the audit log), and a remote verifier's id — the issuer its
    /// identities are linked under — is no JWT-bearer issuer's `iss`. (A JWT-bearer issuer may
    /// have an upstream's issuer: its subjects are then that upstream's identities.)
    fn validate_identity_sources(&self) -> Result<()> {
        let ids: Vec<(&str, &str)> = self
            .upstream
            .iter()
            .map(|u| ("upstream", u.id.as_str()))
            .chain(
                self.remote_auth
                    .iter()
                    .map(|r| ("remote_auth", r.id.as_str())),
            )
            .chain(
                self.jwt_bearer_issuer
                    .iter()
                    .map(|j| ("jwt_bearer_issuer", j.id.as_str())),
            )
            .collect();
        for (i, (kind, id)) in ids.iter().enumerate() {
            if let Some((other, _)) = ids[..i].iter().find(|(_, o)| o == id) {
                return Err(Error::Config(format!(
                    "{kind} {id:?}: the id is taken by {other} {id:?}; upstreams, remote verifiers \
                     and JWT-bearer issuers need ids of their own"
                )));
            }
        }
        if let Some(j) = self
            .jwt_bearer_issuer
            .iter()
            .find(|j| self.remote_auth.iter().any(|r| r.id == j.issuer))
        {
            return Err(Error::Config(format!(
                "jwt_bearer_issuer {:?}: its issuer is the id of a remote verifier, whose \
                 identities are linked under it",
                j.id
            )));
        }
        Ok(())
    }

    /// The public base URL without a trailing slash, once the listening address is known.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if self.public_url.is_empty() {
            format!("https://{bound}")
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }
}

/// A secret the configuration names by place, never by value: the contents of `file`
/// (owner-only, 0600) or of the environment variable `env`, trimmed; errors name the setting
/// (`{name}_file`, `{name}_env`) and never the secret.
pub fn read_secret_setting(
    name: &str,
    file: Option<&Path>,
    env: Option<&str>,
) -> std::result::Result<proto::secret::SecretString, String> {
    let secret = if let Some(path) = file {
        let bytes =
            server_kit::files::read_private(path).map_err(|e| format!("{name}_file: {e}"))?;
        String::from_utf8(bytes).map_err(|_| format!("{name}_file is not UTF-8"))?
    } else if let Some(var) = env {
        std::env::var(var).map_err(|_| format!("{name}_env: {var} is not set"))?
    } else {
        return Err(format!("no {name}"));
    };
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(format!("the {name} is empty"));
    }
    Ok(proto::secret::SecretString::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toml_with_defaults_and_refuses_unknown_keys() {
        let c: Config = toml::from_str(
            "listen = \"127.0.0.1:9000\"\ndev = true\ndomain = \"wire.com\"\n[lifetimes]\nbackend_nonce = 120\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.lifetimes.backend_nonce, 120);
        assert_eq!(c.lifetimes.access_token, 900);
        c.validate().unwrap();
        assert!(toml::from_str::<Config>("listn = \"x\"").is_err());
        let no_tls = Config {
            dev: false,
            ..Config::default()
        };
        assert!(no_tls.validate().is_err());
        let bad_domain = Config {
            dev: true,
            domain: "Wire.COM".into(),
            ..Config::default()
        };
        assert!(bad_domain.validate().is_err());
    }

    #[test]
    fn a_share_of_the_cpus_is_read_and_a_count_no_machine_has_is_refused() {
        let c: Config = toml::from_str("dev = true\n[runtime]\ncpus = 1\n").unwrap();
        c.validate().unwrap();
        assert_eq!(c.runtime.cpus(), 1);
        let too_many: Config = toml::from_str("dev = true\n[runtime]\ncpus = 5000\n").unwrap();
        let e = too_many.validate().unwrap_err().to_string();
        assert!(e.contains("runtime.cpus"), "{e}");
    }

    #[test]
    fn upstreams_are_read_and_a_pure_broker_needs_one() {
        let c: Config = toml::from_str(
            "dev = true\nlocal_login = false\n[[upstream]]\nid = \"corp\"\ndisplay_name = \"Corp\"\nkind = \"oidc\"\nissuer = \"https://idp.test\"\nclient_id = \"c\"\nclient_secret_env = \"X\"\nfirst_login = \"create\"\n[upstream.claims]\nteam = \"org\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.upstream[0].claims.team.as_deref(), Some("org"));
        let broker_without_upstreams = Config {
            dev: true,
            local_login: false,
            ..Config::default()
        };
        let e = broker_without_upstreams.validate().unwrap_err().to_string();
        assert!(e.contains("at least one [[upstream]]"), "{e}");
        let mut linking_broker = c.clone();
        linking_broker.upstream[0].first_login = crate::federation::FirstLogin::Link;
        let e = linking_broker.validate().unwrap_err().to_string();
        assert!(e.contains("needs local_login = true"), "{e}");
    }

    #[test]
    fn upstreams_verifiers_and_assertion_issuers_share_one_namespace_of_ids() {
        let upstream = "[[upstream]]\nid = \"corp\"\ndisplay_name = \"Corp\"\nkind = \"oidc\"\nissuer = \"https://idp.test\"\nclient_id = \"c\"\nclient_secret_env = \"X\"\n";
        let verifier = |id: &str, grant: &str| {
            format!(
                "[[remote_auth]]\nid = \"{id}\"\ngrant_type = \"https://auth.test/{grant}\"\nparams = [\"u\"]\nurl = \"https://v.test/?u={{u}}\"\n"
            )
        };
        let issuer = |id: &str, iss: &str| {
            format!(
                "[[jwt_bearer_issuer]]\nid = \"{id}\"\nissuer = \"{iss}\"\njwks_uri = \"https://j.test/keys\"\n"
            )
        };
        let check = |text: String| {
            toml::from_str::<Config>(&format!("dev = true\n{text}"))
                .unwrap()
                .validate()
        };
        check(format!(
            "{upstream}{}{}",
            verifier("mc", "mc"),
            issuer("partner", "https://idp.test")
        ))
        .unwrap();
        for (text, expected) in [
            (
                format!("{upstream}{}", verifier("corp", "mc")),
                "taken by upstream \"corp\"",
            ),
            (
                format!("{}{}", verifier("mc", "mc"), issuer("mc", "https://p.test")),
                "taken by remote_auth \"mc\"",
            ),
            (
                format!("{}{}", verifier("mc", "mc"), verifier("mc2", "mc")),
                "share an id or a grant_type",
            ),
            (
                format!(
                    "{}{}",
                    issuer("a", "https://p.test"),
                    issuer("b", "https://p.test")
                ),
                "share an id or an issuer",
            ),
            (
                format!("{}{}", verifier("mc", "mc"), issuer("partner", "mc")),
                "its issuer is the id of a remote verifier",
            ),
        ] {
            let e = check(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
        }
    }

    #[test]
    fn the_device_scope_is_one_scope_token_of_its_own() {
        let c: Config =
            toml::from_str("dev = true\n[device_access]\nscope = \"devices\"\n").unwrap();
        assert_eq!(c.device_access.scope, "devices");
        assert!(c.device_access.first_party_only);
        c.validate().unwrap();
        for bad in ["", "two words", "openid", "caf\u{e9}"] {
            let c = Config {
                dev: true,
                device_access: DeviceAccess {
                    scope: bad.into(),
                    first_party_only: true,
                },
                ..Config::default()
            };
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }
}
