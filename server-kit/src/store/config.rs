//! `[store]`: where a server keeps its records. Without `url`, the embedded SQLite database in
//! `data_dir/store` (one server process; sled's for a directory made before SQLite); with a `postgres://` URL, a PostgreSQL database that several
//! replicas of the server share.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::postgres_store::{PostgresSettings, PostgresStore};
use super::{SqliteStore, Store};
use crate::{Error, Result};

/// The `[store]` section of both servers' configuration.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user@host:port/database` (or the key=value form of libpq); none means the
    /// embedded store. A password in it is refused: it belongs in `password_file` or
    /// `password_env`, which logs and process lists never show.
    pub url: Option<String>,
    /// A file (0600) holding the database password.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the database password.
    pub password_env: Option<String>,
    /// A PEM file of the roots the database's TLS certificate must chain to: TLS is then
    /// required and the certificate checked against the URL's host (libpq's `verify-full`).
    /// Without it the connection is not encrypted: keep the database on a trusted network.
    pub ca_file: Option<PathBuf>,
    /// The PostgreSQL schema of this server's tables; default `e2ei_{server}`
    /// (`e2ei_authz`, `e2ei_acme`), so both servers may use one database.
    pub schema: Option<String>,
    /// Connections (each served by its own thread); requests beyond them wait in line.
    pub pool_size: usize,
    /// How long opening a connection may take.
    pub connect_timeout_ms: u64,
    /// How long one statement may run (set on the server as `statement_timeout`, and the
    /// longest a request waits for its answer, line included, on top of `connect_timeout_ms`).
    pub statement_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            password_file: None,
            password_env: None,
            ca_file: None,
            schema: None,
            pool_size: 8,
            connect_timeout_ms: 3_000,
            statement_timeout_ms: 5_000,
        }
    }
}

/// Never the password: `url` is shown (it may not hold one), the rest are names of places.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url)
            .field("password_file", &self.password_file)
            .field("password_env", &self.password_env)
            .field("ca_file", &self.ca_file)
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

impl StoreConfig {
    /// Whether records live in a database other processes share.
    pub fn is_shared(&self) -> bool {
        self.url.is_some()
    }

    /// Checks the settings without connecting.
    pub fn validate(&self, server: &str) -> Result<()> {
        if self.url.is_some() {
            self.postgres_settings(server)?;
        }
        Ok(())
    }

    /// Opens the store: the embedded one in `data_dir/store`, or the database of `url`
    /// (connecting and bringing its schema up to date first). `server` names the default
    /// schema (`e2ei_{server}`).
    pub fn open(&self, data_dir: &Path, server: &str) -> Result<Arc<dyn Store>> {
        match &self.url {
            None => {
                crate::files::private_dir(data_dir)?;
                super::open_embedded(&data_dir.join("store"))
            }
            Some(_) => Ok(Arc::new(PostgresStore::open(
                self.postgres_settings(server)?,
            )?)),
        }
    }

    /// Opens the store for a server to serve: the embedded store locked against a second
    /// server on the same data directory (sled locks itself), and refused when an import into
    /// it did not finish.
    /// A store that cannot be opened for now (a full disk, a database not reachable) fails the
    /// start with the reason, not as a request's 503.
    pub fn open_to_serve(&self, data_dir: &Path, server: &str) -> Result<Arc<dyn Store>> {
        self.open_serving(data_dir, server).map_err(|e| match e {
            Error::Unavailable(reason) => Error::Storage(format!("cannot start: {reason}")),
            other => other,
        })
    }

    /// Opens the store for an operator command that reads it: refused when the embedded store
    /// does not exist yet (a mistyped data directory is not taken for an empty store).
    pub fn open_existing(&self, data_dir: &Path, server: &str) -> Result<Arc<dyn Store>> {
        let dir = data_dir.join("store");
        if self.url.is_none() && !dir.exists() {
            return Err(Error::Config(format!(
                "there is no store in {}: check the data directory (a server makes its store \
                 at its first start)",
                dir.display()
            )));
        }
        self.open(data_dir, server)
    }

    /// Opens the store for `store import`: the embedded store held as a server holds it, so
    /// that no server starts on it while the import runs, nor while one serves it.
    pub fn open_to_import(&self, data_dir: &Path, server: &str) -> Result<Arc<dyn Store>> {
        self.open_held(data_dir, server)
    }

    fn open_serving(&self, data_dir: &Path, server: &str) -> Result<Arc<dyn Store>> {
        let store = self.open_held(data_dir, server)?;
        super::transfer::refuse_unfinished_import(store.as_ref())?;
        Ok(store)
    }

    /// The embedded SQLite store held by this process (`serving.lock`: a second holder is
    /// refused); PostgreSQL, or an older sled store (which locks itself), opened as usual.
    fn open_held(&self, data_dir: &Path, server: &str) -> Result<Arc<dyn Store>> {
        let dir = data_dir.join("store");
        if self.url.is_some() {
            return self.open(data_dir, server);
        }
        if super::is_sled(&dir) {
            tracing::warn!(
                store = %dir.display(),
                "this data directory uses the older sled store; move it to SQLite with `store \
                 export` and `store import` (docs/operations.md)"
            );
            return self.open(data_dir, server);
        }
        crate::files::private_dir(data_dir)?;
        Ok(Arc::new(SqliteStore::open_to_serve(&dir)?))
    }

    fn postgres_settings(&self, server: &str) -> Result<PostgresSettings> {
        let url = self.url.as_deref().unwrap_or_default();
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Config(format!("store.url: {e}")))?;
        if config.get_password().is_some() {
            return Err(Error::Config(
                "store.url holds a password; put it in store.password_file or store.password_env"
                    .into(),
            ));
        }
        if let Some(password) = self.password()? {
            config.password(password);
        }
        if self.pool_size == 0 || self.pool_size > 256 {
            return Err(Error::Config(
                "store.pool_size must be between 1 and 256".into(),
            ));
        }
        if self.connect_timeout_ms == 0 || self.statement_timeout_ms == 0 {
            return Err(Error::Config(
                "store.connect_timeout_ms and store.statement_timeout_ms must be positive".into(),
            ));
        }
        let schema = self
            .schema
            .clone()
            .unwrap_or_else(|| format!("e2ei_{server}"));
        if !is_identifier(&schema) {
            return Err(Error::Config(format!(
                "store.schema {schema:?}: use lower-case letters, digits and _ (at most 63, not \
                 starting with a digit)"
            )));
        }
        config.application_name(format!("e2ei-{server}"));
        let tls = match &self.ca_file {
            Some(roots) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let client = crate::tls::client_config(std::slice::from_ref(roots))
                    .map_err(|e| Error::Config(format!("store.ca_file: {e}")))?;
                Some(super::postgres_tls::RustlsMakeConnect::new(client))
            }
            None => None,
        };
        Ok(PostgresSettings {
            config,
            tls,
            schema,
            pool_size: self.pool_size,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        })
    }

    fn password(&self) -> Result<Option<String>> {
        let password = match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "store: give password_file or password_env, not both".into(),
                ));
            }
            (Some(path), None) => {
                let bytes = crate::files::read_private(path)
                    .map_err(|e| Error::Config(format!("store.password_file: {e}")))?;
                String::from_utf8(bytes)
                    .map_err(|_| Error::Config("store.password_file is not UTF-8".into()))?
            }
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| Error::Config(format!("store.password_env: {var} is not set")))?,
            (None, None) => return Ok(None),
        };
        let password = password.trim();
        if password.is_empty() {
            return Err(Error::Config(
                "store: the database password is empty".into(),
            ));
        }
        Ok(Some(password.to_owned()))
    }
}

/// A PostgreSQL identifier that needs no quoting.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> StoreConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_echoed() {
        let config = parse("url = \"postgres://e2ei:hunter2@127.0.0.1/e2ei\"\n");
        let refused = config.validate("acme").unwrap_err().to_string();
        assert!(refused.contains("password_file"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
    }

    #[test]
    fn the_schema_must_be_a_plain_identifier() {
        for bad in ["E2ei", "1abc", "a-b", "a;drop", ""] {
            let config = StoreConfig {
                url: Some("postgres://e2ei@127.0.0.1/e2ei".into()),
                schema: Some(bad.into()),
                ..StoreConfig::default()
            };
            assert!(config.validate("acme").is_err(), "{bad:?} accepted");
        }
        let config = parse("url = \"postgres://e2ei@127.0.0.1/e2ei\"\n");
        assert_eq!(
            config.postgres_settings("acme").unwrap().schema,
            "e2ei_acme"
        );
    }

    #[test]
    fn an_unknown_key_is_refused() {
        assert!(toml::from_str::<StoreConfig>("urll = \"x\"\n").is_err());
    }
}
