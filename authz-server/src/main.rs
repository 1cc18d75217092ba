//! `authz-server`: run the server, or manage its users and OAuth clients.
//!
//! Configuration comes from `--config FILE` (TOML), then environment variables (`AUTHZ_*`),
//! then flags. Operator commands open the same data directory as the server; run them while
//! the server is stopped (the embedded store admits one process at a time).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use authz_server::config::Config;
use authz_server::oauth_clients::{self, OAuthClient};
use authz_server::server::open_store;
use authz_server::users::{self, NewUser};
use clap::{Parser, Subcommand};
use proto::clock::SystemClock;
use proto::secret::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "authz-server",
    version,
    about = "OAuth 2.1 / OpenID Provider issuing DPoP access tokens"
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "AUTHZ_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory (store, keys, dev PKI).
    #[arg(long, env = "AUTHZ_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "AUTHZ_LISTEN")]
        listen: Option<SocketAddr>,
        /// Public base URL.
        #[arg(long, env = "AUTHZ_PUBLIC_URL")]
        public_url: Option<String>,
        /// Wire domain.
        #[arg(long, env = "AUTHZ_DOMAIN")]
        domain: Option<String>,
        /// Development mode: generate TLS and keys, seed a demo user and client.
        #[arg(long, env = "AUTHZ_DEV")]
        dev: bool,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage OAuth clients.
    Client {
        #[command(subcommand)]
        action: ClientAction,
    },
    /// Manage the token signing key (run while the server is stopped, or on a PostgreSQL
    /// store while the replicas run).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// The store: export all records to a file, import a file into an empty store, verify,
    /// back up the embedded store while serving.
    Store {
        #[command(subcommand)]
        action: server_kit::store::transfer::StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Make a new signing key: published at once, signing 60 s later (the running servers pick
    /// it up); the old one stays published and accepted until the tokens it signed have
    /// expired. On an older sled store: with the server stopped, signing at its next start.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Add a user; the password is read from standard input (never from the command line).
    Add {
        #[arg(long)]
        handle: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        team: Option<String>,
        /// Defaults to the configured domain.
        #[arg(long)]
        domain: Option<String>,
        /// The user's email address (the `email` claim); none by default.
        #[arg(long)]
        email: Option<String>,
        /// The email address is known to be the user's (`email_verified` true).
        #[arg(long, requires = "email")]
        email_verified: bool,
    },
    /// Set or (without `--email`) remove a user's email address.
    SetEmail {
        #[arg(long)]
        handle: String,
        #[arg(long)]
        email: Option<String>,
        /// The email address is known to be the user's (`email_verified` true).
        #[arg(long, requires = "email")]
        email_verified: bool,
    },
    /// Replace a user's roles (`--role`, repeatable) and groups (`--group`, repeatable); a list
    /// not named is left as it is, `--clear-roles`/`--clear-groups` empty one.
    SetRoles {
        #[arg(long)]
        handle: String,
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long, conflicts_with = "roles")]
        clear_roles: bool,
        #[arg(long, conflicts_with = "groups")]
        clear_groups: bool,
    },
    /// Link an identity of an upstream, remote verifier or JWT-bearer issuer (by its id) to a
    /// user, so it logs in to that account (for sources with `first_login = "refuse"`).
    Link {
        #[arg(long)]
        handle: String,
        /// The upstream's, verifier's or issuer's id.
        #[arg(long)]
        source: String,
        /// The user's stable id there (its subject).
        #[arg(long)]
        subject: String,
    },
    /// GA4GH visas asserted for a user (released, signed by this server, at `/userinfo` with
    /// the `ga4gh_passport_v1` scope).
    Visa {
        #[command(subcommand)]
        action: VisaAction,
    },
    /// List users: id, handle, name, team, domain, email, roles, groups.
    List,
    /// Remove a user and their devices.
    Remove {
        #[arg(long)]
        handle: String,
    },
}

#[derive(Debug, Subcommand)]
enum VisaAction {
    /// Assert a visa for a user (e.g. `--type ControlledAccessGrants --value DATASET-URL
    /// --source DAC-URL --by dac --valid-for 31536000`); prints its id.
    Add {
        #[arg(long)]
        handle: String,
        /// The visa type: a GA4GH standard type or a URL.
        #[arg(long = "type")]
        visa_type: String,
        #[arg(long)]
        value: String,
        /// The organisation that made the assertion (a URL).
        #[arg(long)]
        source: String,
        /// self, peer, system, so or dac.
        #[arg(long)]
        by: Option<String>,
        /// The `conditions`, as JSON.
        #[arg(long)]
        conditions: Option<String>,
        /// When the assertion was made (seconds since the epoch; default now).
        #[arg(long)]
        asserted: Option<i64>,
        /// Until when the visa holds (seconds since the epoch).
        #[arg(
            long,
            required_unless_present = "valid_for",
            conflicts_with = "valid_for"
        )]
        expires_at: Option<i64>,
        /// Until when the visa holds, in seconds from now.
        #[arg(long)]
        valid_for: Option<i64>,
    },
    /// List a user's asserted visas: id, type, value, source, by, asserted, expires_at.
    List {
        #[arg(long)]
        handle: String,
    },
    /// Remove one of a user's asserted visas.
    Remove {
        #[arg(long)]
        handle: String,
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClientAction {
    /// Add (or replace) a client.
    Add {
        #[arg(long)]
        id: String,
        /// Redirect URI (repeatable; required for public clients).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A confidential client: a secret is generated and printed once.
        #[arg(long)]
        confidential: bool,
        /// A third-party client: users are asked for consent, and its tokens are refused at the
        /// device endpoints while `device_access.first_party_only` is set.
        #[arg(long)]
        third_party: bool,
        /// A scope the client may be granted (repeatable, or several separated by spaces).
        /// Without any: openid, profile, email, offline_access, wire_client_id, and for
        /// first-party clients the device scope.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Where RP-initiated logout may send the browser afterwards (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// An upstream (its id) whose kept tokens the client may get by RFC 8693 token
        /// exchange (repeatable; confidential clients only).
        #[arg(long = "token-exchange", requires = "confidential")]
        token_exchange: Vec<String>,
        /// A remote verifier (its `[[remote_auth]]` id) whose grant the client may use
        /// (repeatable).
        #[arg(long = "remote-auth")]
        remote_auth: Vec<String>,
        /// A JWT-bearer issuer (its `[[jwt_bearer_issuer]]` id) whose RFC 7523 assertions the
        /// client may present as grants (repeatable; confidential clients only).
        #[arg(long = "jwt-bearer", requires = "confidential")]
        jwt_bearer: Vec<String>,
    },
    /// Replace the remote verifiers whose grant a client may use (keeps everything else);
    /// without any, the client may use none.
    SetRemoteAuth {
        #[arg(long)]
        id: String,
        /// A remote verifier id (repeatable).
        #[arg(long = "remote-auth")]
        verifiers: Vec<String>,
    },
    /// Replace the JWT-bearer issuers whose assertions a client may present (keeps everything
    /// else); without any, the client may present none.
    SetJwtBearer {
        #[arg(long)]
        id: String,
        /// A JWT-bearer issuer id (repeatable).
        #[arg(long = "jwt-bearer")]
        issuers: Vec<String>,
    },
    /// Replace the upstreams whose kept tokens a client may get by token exchange (keeps
    /// everything else); without any, the client may exchange none.
    SetTokenExchange {
        #[arg(long)]
        id: String,
        /// An upstream id (repeatable).
        #[arg(long = "token-exchange")]
        upstreams: Vec<String>,
    },
    /// Replace the scopes a client may be granted (keeps its secret and keys).
    SetScopes {
        #[arg(long)]
        id: String,
        /// A scope (repeatable, or several separated by spaces); none: back to the default.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List clients: id, kind, allowed scopes, redirect URIs, token exchange upstreams.
    List,
    /// Remove a client.
    Remove {
        #[arg(long)]
        id: String,
    },
}

/// mimalloc: the token path allocates per request on every worker thread; see
/// docs/benchmarks.md for the before/after.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    server_kit::process::init();
    server_kit::process::exit_code("authz-server", run(Cli::parse()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Serve {
            listen,
            public_url,
            domain,
            dev,
        } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(u) = public_url {
                config.public_url = u;
            }
            if let Some(d) = domain {
                config.domain = d;
            }
            config.dev |= dev;
            serve(config)
        }
        Command::User { action } => user_command(&config, action),
        Command::Store { action } => {
            println!(
                "{}",
                server_kit::store::transfer::open_and_run(
                    &action,
                    &config.store,
                    &config.data_dir,
                    "authz"
                )?
            );
            Ok(())
        }
        Command::Client { action } => client_command(&config, action),
        Command::Keys {
            action: KeysAction::Rotate,
        } => {
            let l = &config.lifetimes;
            let longest = l.access_token.max(l.id_token).max(l.client_access_token);
            let now = proto::clock::Clock::now(&SystemClock);
            // A mistyped data directory is refused, not taken for a new store.
            let store = config.store.open_existing(&config.data_dir, "authz")?;
            if store.written_beside_the_server() {
                // In the store, picked up by the running servers; seeded from the key files
                // first when no server has started on the store yet.
                let keys_dir = config.data_dir.join("keys");
                authz_server::keys::KeyRing::shared(store.clone(), &keys_dir, now)?;
                let (kid, from) =
                    authz_server::keys::rotate_shared(store.as_ref(), now, longest + 60)?;
                println!(
                    "new signing key {kid}: published now, signing from {}",
                    proto::rfc3339::format(from)
                );
            } else {
                drop(store);
                let kid =
                    authz_server::keys::rotate(&config.data_dir.join("keys"), now + longest + 60)?;
                println!("new signing key {kid}");
            }
            Ok(())
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    config.runtime.clone().block_on(async {
        // Caught before the ready line, so a stop right after it is graceful.
        let stop = server_kit::process::ShutdownSignal::install()?;
        let server = authz_server::start(config, Arc::new(SystemClock)).await?;
        // A closed stdout (a supervisor that stopped reading) must not take the server down.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "authz-server listening on {}", server.base_url);
        if let Some(ca) = &server.dev_ca_cert {
            let _ = writeln!(out, "dev root CA: {}", ca.display());
        }
        stop.recv().await;
        server.shutdown().await?;
        Ok(())
    })
}

fn user_command(config: &Config, action: UserAction) -> anyhow::Result<()> {
    let store = open_store(config)?;
    match action {
        UserAction::Add {
            handle,
            name,
            team,
            domain,
            email,
            email_verified,
        } => {
            // Checked before the password is read, so a typo costs nothing.
            let email = email
                .map(|e| users::Email::new(&e, email_verified))
                .transpose()?;
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = SecretString::new(password.trim_end_matches(['\r', '\n']));
            let domain = domain.unwrap_or_else(|| config.domain.clone());
            let user = users::add_with_email(
                store.as_ref(),
                &NewUser {
                    handle: &handle,
                    name: &name,
                    team: team.as_deref(),
                    domain: &domain,
                    password: &password,
                },
                email,
            )?;
            println!("added user {} ({})", user.handle, user.id);
        }
        UserAction::SetEmail {
            handle,
            email,
            email_verified,
        } => {
            let email = email
                .map(|e| users::Email::new(&e, email_verified))
                .transpose()?;
            if !users::set_email(store.as_ref(), &handle, email)? {
                anyhow::bail!("no user with handle {handle}");
            }
            println!("set the email address of {handle}");
        }
        UserAction::SetRoles {
            handle,
            roles,
            groups,
            clear_roles,
            clear_groups,
        } => {
            let roles = (clear_roles || !roles.is_empty()).then_some(roles);
            let groups = (clear_groups || !groups.is_empty()).then_some(groups);
            if roles.is_none() && groups.is_none() {
                anyhow::bail!("name a --role or --group (or --clear-roles / --clear-groups)");
            }
            if users::set_authorization(
                store.as_ref(),
                &handle,
                roles.as_deref(),
                groups.as_deref(),
            )?
            .is_none()
            {
                anyhow::bail!("no user with handle {handle}");
            }
            println!("set the roles and groups of {handle}");
        }
        UserAction::Link {
            handle,
            source,
            subject,
        } => {
            let Some(issuer) = config.source_issuer(&source) else {
                anyhow::bail!(
                    "no upstream, remote verifier or JWT-bearer issuer {source:?} is configured"
                );
            };
            let now = proto::clock::Clock::now(&SystemClock);
            users::link_identity(store.as_ref(), &handle, &source, &issuer, &subject, now)?;
            println!("linked the {source} identity {subject:?} to {handle}");
        }
        UserAction::Visa { action } => visa_command(config, store.as_ref(), action)?,
        UserAction::List => {
            for u in users::list(store.as_ref())? {
                let email = u.email.as_ref().map_or_else(
                    || "-".to_owned(),
                    |e| {
                        let verified = if e.verified { "" } else { " (unverified)" };
                        format!("{}{verified}", e.address)
                    },
                );
                let list = |l: &[String]| {
                    if l.is_empty() {
                        "-".to_owned()
                    } else {
                        l.join(",")
                    }
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{email}\t{}\t{}",
                    u.id,
                    u.handle,
                    u.name,
                    u.team.as_deref().unwrap_or("-"),
                    u.domain,
                    list(&u.roles),
                    list(&u.groups)
                );
            }
        }
        UserAction::Remove { handle } => {
            if !users::remove(store.as_ref(), &handle)? {
                anyhow::bail!("no user with handle {handle}");
            }
            println!("removed user {handle}");
        }
    }
    Ok(())
}

fn visa_command(
    config: &Config,
    store: &dyn authz_server::store::Store,
    action: VisaAction,
) -> anyhow::Result<()> {
    use authz_server::passports::asserted::{self, Assertion};
    let now = proto::clock::Clock::now(&SystemClock);
    match action {
        VisaAction::Add {
            handle,
            visa_type,
            value,
            source,
            by,
            conditions,
            asserted,
            expires_at,
            valid_for,
        } => {
            let conditions = conditions
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--conditions is not JSON: {e}"))?;
            let expires_at = expires_at
                .or(valid_for.map(|secs| now.saturating_add(secs)))
                .unwrap_or(now);
            let assertion = Assertion {
                visa_type,
                value,
                source,
                by,
                conditions,
                asserted,
                expires_at,
            };
            let Some(visa) = asserted::add(
                store,
                &handle,
                assertion,
                "operator",
                now,
                config.clock_skew,
            )?
            else {
                anyhow::bail!("no user with handle {handle}");
            };
            println!("added visa {} for {handle}", visa.id);
        }
        VisaAction::List { handle } => {
            let Some(visas) = asserted::list(store, &handle)? else {
                anyhow::bail!("no user with handle {handle}");
            };
            for v in visas {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    v.id,
                    v.visa_type,
                    v.value,
                    v.source,
                    v.by.as_deref().unwrap_or("-"),
                    v.asserted,
                    v.expires_at
                );
            }
        }
        VisaAction::Remove { handle, id } => match asserted::remove(store, &handle, &id)? {
            None => anyhow::bail!("no user with handle {handle}"),
            Some(false) => anyhow::bail!("{handle} has no visa {id}"),
            Some(true) => println!("removed visa {id} of {handle}"),
        },
    }
    Ok(())
}

/// The `--scope` values as a list, each scope once (a value may hold several, space-separated);
/// none given: `None`, the default.
fn scope_list(values: &[String]) -> anyhow::Result<Option<Vec<String>>> {
    let scopes = authz_server::scopes::parse(&values.join(" ")).map_err(anyhow::Error::msg)?;
    Ok((!scopes.is_empty()).then_some(scopes))
}

fn client_command(config: &Config, action: ClientAction) -> anyhow::Result<()> {
    let store = open_store(config)?;
    match action {
        ClientAction::Add {
            id,
            redirect_uris,
            confidential,
            third_party,
            scopes,
            post_logout_redirect_uris,
            token_exchange,
            remote_auth,
            jwt_bearer,
        } => {
            let secret = confidential.then(oauth_clients::new_secret);
            oauth_clients::add(
                store.as_ref(),
                &OAuthClient {
                    id: id.clone(),
                    redirect_uris,
                    secret_sha256: secret.as_ref().map(|(_, digest)| digest.clone()),
                    consent_required: third_party,
                    jwks: None,
                    scopes: scope_list(&scopes)?,
                    post_logout_redirect_uris,
                    token_exchange,
                    remote_auth,
                    jwt_bearer,
                },
            )?;
            println!("added client {id}");
            if let Some((secret, _)) = secret {
                println!("client secret {}", secret.expose());
            }
        }
        ClientAction::SetScopes { id, scopes } => {
            let found = oauth_clients::set_scopes(store.as_ref(), &id, scope_list(&scopes)?)?;
            client_updated(found, &id, "scopes")?;
        }
        ClientAction::SetTokenExchange { id, upstreams } => {
            let found = oauth_clients::set_token_exchange(store.as_ref(), &id, upstreams)?;
            client_updated(found, &id, "token exchange upstreams")?;
        }
        ClientAction::SetRemoteAuth { id, verifiers } => {
            let found = oauth_clients::set_remote_auth(store.as_ref(), &id, verifiers)?;
            client_updated(found, &id, "remote verifiers")?;
        }
        ClientAction::SetJwtBearer { id, issuers } => {
            let found = oauth_clients::set_jwt_bearer(store.as_ref(), &id, issuers)?;
            client_updated(found, &id, "JWT-bearer issuers")?;
        }
        ClientAction::List => {
            let device_scope = &config.device_access.scope;
            for c in oauth_clients::list(store.as_ref())? {
                let kind = match (c.is_first_party(), c.is_confidential()) {
                    (true, false) => "first-party public",
                    (true, true) => "first-party confidential",
                    (false, false) => "third-party public",
                    (false, true) => "third-party confidential",
                };
                let listed = |ids: &[String]| {
                    if ids.is_empty() {
                        "-".to_owned()
                    } else {
                        ids.join(" ")
                    }
                };
                let exchange = listed(&c.token_exchange);
                let remote = listed(&c.remote_auth);
                let bearer = listed(&c.jwt_bearer);
                println!(
                    "{}\t{kind}\t{}\t{}\t{exchange}\t{remote}\t{bearer}",
                    c.id,
                    authz_server::scopes::allowed(&c, device_scope).join(" "),
                    c.redirect_uris.join(" ")
                );
            }
        }
        ClientAction::Remove { id } => {
            if !oauth_clients::remove(store.as_ref(), &id)? {
                anyhow::bail!("no client {id}");
            }
            println!("removed client {id}");
        }
    }
    Ok(())
}

/// The end of a `client set-…` command: `no client ID` when there is none, else what was set.
fn client_updated(found: bool, id: &str, what: &str) -> anyhow::Result<()> {
    if !found {
        anyhow::bail!("no client {id}");
    }
    println!("set the {what} of client {id}");
    Ok(())
}
