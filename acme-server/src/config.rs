//! Server configuration: a TOML file, overridden by environment variables and flags (merged by
//! the binary through clap), with defaults fit for a development run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use server_kit::rate_limit::Rate;

use crate::error::{Error, Result};

/// The placeholder in [`DpopConfig::target`] replaced by the device id.
pub const DEVICE_ID_PLACEHOLDER: &str = "{device-id}";

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (HTTPS).
    pub listen: SocketAddr,
    /// Public base URL clients use; every ACME URL and JWS `url` is built from it, never from
    /// `Host`. Empty means `https://{listen}`.
    pub public_url: String,
    /// Directory for the store, the CA and the dev PKI.
    pub data_dir: PathBuf,
    /// Where records are kept (`[store]`): the embedded store in `data_dir/store`, or a
    /// PostgreSQL database replicas share.
    pub store: server_kit::store::StoreConfig,
    /// Development mode: create the TLS certificate and the CA in the data directory.
    pub dev: bool,
    /// PEM certificate chain for TLS (required unless `dev`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (required unless `dev`).
    pub tls_key: Option<PathBuf>,
    /// Extra PEM root certificates trusted for outbound HTTPS (the backend's JWKS, the identity
    /// provider), on top of none: outbound TLS trusts only what is listed here.
    pub trust_anchors: Vec<PathBuf>,
    /// `meta.termsOfService` of the directory.
    pub terms_of_service: Option<String>,
    /// `meta.website` of the directory.
    pub website: Option<String>,
    /// Wire domains this CA certifies identities for.
    pub domains: Vec<String>,
    /// newAccount requires an External Account Binding (keys from `acme-server eab add`).
    pub external_account_required: bool,
    /// Lifetimes in seconds.
    pub lifetimes: Lifetimes,
    /// Connections, timeouts and sizes (`[limits]`).
    pub limits: server_kit::limits::Limits,
    /// The CPUs the process plans for (`[runtime]`).
    pub runtime: server_kit::runtime::RuntimeConfig,
    /// Rate limits (`[rate_limits]`).
    pub rate_limits: RateLimits,
    /// Caps on what one account may hold at once (`[caps]`).
    pub caps: Caps,
    /// Background removal of expired records (`[cleanup]`).
    pub cleanup: server_kit::cleanup::CleanupConfig,
    /// The identity CA's files.
    pub ca: CaFiles,
    /// Standard (dns/ip) orders: off unless enabled, signed by a CA of their own.
    pub standard_orders: StandardOrders,
    /// The Wire identity certificate profile (`wire-identity`).
    pub certificate: CertificateProfile,
    /// Profiles of standard (dns/ip) certificates, by name (`meta.profiles`, `profile` in
    /// newOrder).
    pub profiles: std::collections::BTreeMap<String, NameProfile>,
    /// The profile of standard orders that name none.
    pub default_profile: String,
    /// `wire-dpop-01` verification.
    pub wire_dpop: DpopConfig,
    /// `wire-oidc-01` verification.
    pub wire_oidc: OidcConfig,
    /// http-01, dns-01 and tls-alpn-01 validation.
    pub validation: ValidationConfig,
}

/// How the standard challenges are validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Port of http-01 requests (80; tests use another).
    pub http_port: u16,
    /// Port of tls-alpn-01 connections (443).
    pub tls_port: u16,
    /// DNS server of validation: dns-01 TXT lookups and the A/AAAA lookups of http-01 and
    /// tls-alpn-01; empty means the first `nameserver` of /etc/resolv.conf.
    pub dns_server: Option<SocketAddr>,
    /// Test setups only: connect every http-01/tls-alpn-01 validation of a DNS name to this
    /// address instead of resolving it. The address policy applies to it like to any other.
    pub resolve_to: Option<std::net::IpAddr>,
    /// Networks validation may connect to although the address policy refuses them by default
    /// (loopback, private, link-local, ...; see [`crate::va::addresses`]), e.g.
    /// `["127.0.0.0/8", "::1/128"]` for tests on one machine.
    pub allowed_networks: Vec<crate::va::addresses::Network>,
    /// Timeout of one validation, in seconds.
    pub timeout: u64,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            http_port: 80,
            tls_port: 443,
            dns_server: None,
            resolve_to: None,
            allowed_networks: Vec::new(),
            timeout: 10,
        }
    }
}

/// Token-bucket rate limits (`{ per_minute, burst }`; `per_minute = 0` disables one).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Accounts created per client IP address.
    pub new_accounts_per_ip: Rate,
    /// Orders created per account.
    pub new_orders_per_account: Rate,
    /// Failed challenge validations per account.
    pub failed_validations_per_account: Rate,
    /// Failed challenge validations per identifier (name, address or Wire identity).
    pub failed_validations_per_identifier: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            new_accounts_per_ip: Rate::new(60, 300),
            new_orders_per_account: Rate::new(300, 300),
            failed_validations_per_account: Rate::new(30, 60),
            failed_validations_per_identifier: Rate::new(10, 20),
        }
    }
}

/// Caps on what one account may hold at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Caps {
    /// Unexpired pending authorizations per account; a new order that would pass it gets
    /// `rateLimited` until some complete or expire.
    pub pending_authorizations_per_account: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            pending_authorizations_per_account: 300,
        }
    }
}

/// Lifetimes, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifetimes {
    /// Anti-replay nonces.
    pub nonce: i64,
    /// Orders (and their authorizations) from creation.
    pub order: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            nonce: 600,
            order: 3600,
        }
    }
}

/// Standard (dns/ip) orders (`[standard_orders]`). This server is an identity CA first: a relying
/// party trusting its identity root for mutual TLS must never admit a certificate for a name or
/// address, so standard orders are off by default and, when on, are signed by a hierarchy of
/// their own (`[standard_orders.ca]`) that shares nothing with the identity CA.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StandardOrders {
    /// Accept newOrder for `dns` and `ip` identifiers (`rejectedIdentifier` otherwise).
    pub enabled: bool,
    /// Accept them only from accounts created with an External Account Binding
    /// (`unauthorized` otherwise).
    pub require_eab: bool,
    /// The name CA's files; empty paths mean those `ca init` (or dev mode) writes under
    /// `data_dir/ca/names/`.
    pub ca: CaFiles,
}

/// Paths of a CA; empty means the files `ca init` writes under `data_dir/ca/` (the identity CA)
/// or `data_dir/ca/names/` (the name CA).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaFiles {
    /// Root certificate (PEM), served after the intermediate in every chain.
    pub root_cert: Option<PathBuf>,
    /// Intermediate certificate (PEM), the issuer of leaf certificates.
    pub intermediate_cert: Option<PathBuf>,
    /// Intermediate private key (PKCS#8 PEM, mode 0600).
    pub intermediate_key: Option<PathBuf>,
    /// Alternate chains (PEM files holding the certificates that follow the leaf, e.g. a
    /// cross-signed intermediate), offered with `Link: rel="alternate"` (RFC 8555 §7.4.2).
    pub alternate_chains: Vec<PathBuf>,
}

/// What issued certificates look like.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CertificateProfile {
    /// Validity, in seconds from issuance (the order's `notAfter` may shorten it).
    pub validity: i64,
    /// How far `notBefore` is set back to absorb clock skew, in seconds: at least the leeway of
    /// the challenge checks (`wire_dpop.leeway`, `wire_oidc.leeway`), so that a device whose
    /// clock is behind by as much as they tolerate finds its certificate valid already.
    pub backdate: i64,
}

impl Default for CertificateProfile {
    fn default() -> Self {
        Self {
            validity: 90 * 86_400,
            backdate: proto::dpop::DEFAULT_WIRE_SKEW,
        }
    }
}

/// The name of the Wire identity profile.
pub const IDENTITY_PROFILE: &str = "wire-identity";

/// A profile of standard certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NameProfile {
    /// What `meta.profiles` says about it.
    pub description: String,
    /// Validity in seconds (the order's `notAfter` may shorten it).
    pub validity: i64,
    /// EKU serverAuth.
    pub server_auth: bool,
    /// EKU clientAuth.
    pub client_auth: bool,
}

impl Default for NameProfile {
    fn default() -> Self {
        Self {
            description: "TLS server and client certificate, 90 days".into(),
            validity: 90 * 86_400,
            server_auth: true,
            client_auth: true,
        }
    }
}

fn default_profiles() -> std::collections::BTreeMap<String, NameProfile> {
    let mut profiles = std::collections::BTreeMap::new();
    profiles.insert("tls".to_owned(), NameProfile::default());
    profiles.insert(
        "shortlived".to_owned(),
        NameProfile {
            description: "TLS server certificate, 6 days".into(),
            validity: 6 * 86_400,
            server_auth: true,
            client_auth: false,
        },
    );
    profiles
}

/// `wire-dpop-01`: where the backend's access tokens come from and what they must say.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpopConfig {
    /// The access-token URL template announced as challenge `target` and required as the
    /// token's `iss`; `{device-id}` is replaced by the order's device id.
    pub target: String,
    /// The backend's JWKS URL (keys fetched and cached).
    pub backend_jwks_url: Option<String>,
    /// The backend's public keys as PEM files (used instead of, or besides, the JWKS).
    pub backend_keys: Vec<PathBuf>,
    /// Clock skew tolerated, in seconds, for the access token and the device's proof in it.
    pub leeway: i64,
    /// Furthest acceptable token `exp` after now, in seconds.
    pub max_token_lifetime: i64,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            target: format!("https://127.0.0.1:8443/clients/{DEVICE_ID_PLACEHOLDER}/access-token"),
            backend_jwks_url: None,
            backend_keys: Vec::new(),
            leeway: proto::dpop::DEFAULT_WIRE_SKEW,
            max_token_lifetime: 3600,
        }
    }
}

/// `wire-oidc-01`: the identity provider and how its ID tokens map to the order.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer URL (challenge `target`; `iss` must equal it exactly).
    pub issuer: String,
    /// The OAuth client id ID tokens are issued to (`aud`).
    pub client_id: String,
    /// JWKS URL; empty means discovery (`{issuer}/.well-known/openid-configuration`).
    pub jwks_url: Option<String>,
    /// The claim carrying the handle.
    pub handle_claim: String,
    /// The claim carrying the display name.
    pub name_claim: String,
    /// Clock skew tolerated, in seconds.
    pub leeway: i64,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: "https://127.0.0.1:8443".into(),
            client_id: "wireapp".into(),
            jwks_url: None,
            handle_claim: "preferred_username".into(),
            name_claim: "name".into(),
            leeway: proto::dpop::DEFAULT_WIRE_SKEW,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
            public_url: String::new(),
            data_dir: PathBuf::from("acme-data"),
            store: server_kit::store::StoreConfig::default(),
            dev: false,
            tls_cert: None,
            tls_key: None,
            trust_anchors: Vec::new(),
            terms_of_service: None,
            website: None,
            domains: vec!["wire.example".into()],
            external_account_required: false,
            lifetimes: Lifetimes::default(),
            limits: server_kit::limits::Limits::default(),
            runtime: server_kit::runtime::RuntimeConfig::default(),
            rate_limits: RateLimits::default(),
            caps: Caps::default(),
            cleanup: server_kit::cleanup::CleanupConfig::default(),
            ca: CaFiles::default(),
            standard_orders: StandardOrders::default(),
            certificate: CertificateProfile::default(),
            profiles: default_profiles(),
            default_profile: "tls".into(),
            wire_dpop: DpopConfig::default(),
            wire_oidc: OidcConfig::default(),
            validation: ValidationConfig::default(),
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

    /// Checks values that would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        self.runtime.validate()?;
        self.store.validate("acme")?;
        self.cleanup.validate()?;
        if self.domains.is_empty() {
            return Err(Error::Config("at least one domain is required".into()));
        }
        for domain in &self.domains {
            proto::wire_id::validate_domain(domain).map_err(|_| {
                Error::Config(format!("domain {domain:?} is not a lower-case DNS name"))
            })?;
        }
        for (name, value) in [
            ("public_url", self.public_url.as_str()),
            ("wire_oidc.issuer", self.wire_oidc.issuer.as_str()),
        ] {
            if !value.is_empty() {
                check_http_url(name, value)?;
            }
        }
        let template = self.wire_dpop.target.replace(DEVICE_ID_PLACEHOLDER, "0");
        check_http_url("wire_dpop.target", &template)?;
        if !self.wire_dpop.target.contains(DEVICE_ID_PLACEHOLDER) {
            return Err(Error::Config(format!(
                "wire_dpop.target must contain {DEVICE_ID_PLACEHOLDER}"
            )));
        }
        if self.wire_dpop.backend_jwks_url.is_none() && self.wire_dpop.backend_keys.is_empty() {
            return Err(Error::Config(
                "wire_dpop needs backend_jwks_url or backend_keys".into(),
            ));
        }
        if self.wire_oidc.issuer.is_empty() || self.wire_oidc.client_id.is_empty() {
            return Err(Error::Config(
                "wire_oidc.issuer and client_id are required".into(),
            ));
        }
        if !self.profiles.contains_key(&self.default_profile) {
            return Err(Error::Config(format!(
                "default_profile {:?} is not among [profiles]",
                self.default_profile
            )));
        }
        if self.profiles.contains_key(IDENTITY_PROFILE) {
            return Err(Error::Config(format!(
                "{IDENTITY_PROFILE} is the identity profile ([certificate]); name standard profiles otherwise"
            )));
        }
        for (name, profile) in &self.profiles {
            if profile.validity <= 0 || !(profile.server_auth || profile.client_auth) {
                return Err(Error::Config(format!(
                    "profile {name}: validity must be positive and at least one EKU set"
                )));
            }
        }
        if !self.dev && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err(Error::Config(
                "tls_cert and tls_key are required outside dev mode".into(),
            ));
        }
        for (name, v) in [
            ("lifetimes.nonce", self.lifetimes.nonce),
            ("lifetimes.order", self.lifetimes.order),
            ("certificate.validity", self.certificate.validity),
            (
                "wire_dpop.max_token_lifetime",
                self.wire_dpop.max_token_lifetime,
            ),
        ] {
            if v <= 0 {
                return Err(Error::Config(format!("{name} must be positive")));
            }
        }
        for (name, v) in [
            ("certificate.backdate", self.certificate.backdate),
            ("wire_dpop.leeway", self.wire_dpop.leeway),
            ("wire_oidc.leeway", self.wire_oidc.leeway),
        ] {
            if !(0..=3600).contains(&v) {
                return Err(Error::Config(format!("{name} must be between 0 and 3600")));
            }
        }
        let leeway = self.wire_dpop.leeway.max(self.wire_oidc.leeway);
        if self.certificate.backdate < leeway {
            return Err(Error::Config(format!(
                "certificate.backdate ({} s) must be at least the challenges' leeway ({leeway} s): \
                 a device whose clock is behind by what they accept would get a certificate \
                 that is not valid yet",
                self.certificate.backdate
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

    /// `meta.profiles`: every profile's name and description (the standard ones only when
    /// standard orders are enabled).
    pub fn profile_descriptions(&self) -> std::collections::BTreeMap<String, String> {
        let mut all: std::collections::BTreeMap<String, String> = self
            .profiles
            .iter()
            .filter(|_| self.standard_orders.enabled)
            .map(|(name, p)| (name.clone(), p.description.clone()))
            .collect();
        all.insert(
            IDENTITY_PROFILE.into(),
            "Wire device identity (clientAuth), for wireapp-device + wireapp-user orders".into(),
        );
        all
    }

    /// The identity CA's files, defaulting to `data_dir/ca/`.
    pub fn ca_paths(&self) -> crate::ca::CaPaths {
        ca_paths_of(&self.ca, &self.data_dir.join("ca"))
    }

    /// The name CA's files (standard orders), defaulting to `data_dir/ca/names/`.
    pub fn names_ca_paths(&self) -> crate::ca::CaPaths {
        ca_paths_of(
            &self.standard_orders.ca,
            &self.data_dir.join("ca").join("names"),
        )
    }
}

fn ca_paths_of(files: &CaFiles, dir: &Path) -> crate::ca::CaPaths {
    let or_default =
        |path: &Option<PathBuf>, name: &str| path.clone().unwrap_or_else(|| dir.join(name));
    crate::ca::CaPaths {
        root_cert: or_default(&files.root_cert, "root.pem"),
        root_key: dir.join("root-key.pem"),
        intermediate_cert: or_default(&files.intermediate_cert, "intermediate.pem"),
        intermediate_key: or_default(&files.intermediate_key, "intermediate-key.pem"),
        alternate_chains: files.alternate_chains.clone(),
    }
}

fn check_http_url(name: &str, value: &str) -> Result<()> {
    let url = url::Url::parse(value).map_err(|e| Error::Config(format!("{name}: {e}")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(Error::Config(format!("{name} must be an http(s) URL")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toml_with_defaults_and_refuses_bad_values() {
        let c: Config = toml::from_str(
            "dev = true\ndomains = [\"wire.com\"]\n[wire_dpop]\nbackend_jwks_url = \"https://b.test/jwks\"\ntarget = \"https://b.test/clients/{device-id}/access-token\"\n[wire_oidc]\nissuer = \"https://idp.test\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.certificate.validity, 90 * 86_400);
        assert_eq!(c.wire_oidc.client_id, "wireapp");
        assert!(toml::from_str::<Config>("domians = []").is_err());
        let no_placeholder = Config {
            wire_dpop: DpopConfig {
                target: "https://b.test/access-token".into(),
                ..c.wire_dpop.clone()
            },
            ..c.clone()
        };
        assert!(no_placeholder.validate().is_err());
        let no_keys = Config {
            wire_dpop: DpopConfig {
                backend_jwks_url: None,
                ..c.wire_dpop.clone()
            },
            ..c.clone()
        };
        assert!(no_keys.validate().is_err());
        let mut more_cpus_than_any_machine = c.clone();
        more_cpus_than_any_machine.runtime.cpus = 5000;
        let e = more_cpus_than_any_machine
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtime.cpus"), "{e}");
        let mut short_backdate = c.clone();
        short_backdate.certificate.backdate = 60;
        let e = short_backdate.validate().unwrap_err().to_string();
        assert!(
            e.contains("must be at least the challenges' leeway (300 s)"),
            "{e}"
        );
        short_backdate.wire_dpop.leeway = 60;
        short_backdate.wire_oidc.leeway = 30;
        short_backdate.validate().unwrap();
        let no_tls = Config { dev: false, ..c };
        assert!(no_tls.validate().is_err());
    }
}
