//! What the test suite and the benchmark peers need besides Rust, how to tell whether each is
//! there, and how to install the ones that are not: Debian packages (apt-get, with sudo when
//! not root), rustup components, cargo-nextest, the pinned npm packages and a Python venv.

use std::path::{Path, PathBuf};

use crate::shell::{self, Step};

/// Where a prerequisite comes from.
#[derive(Debug)]
enum Source {
    /// Debian packages, installed together in one apt-get call.
    Debian(&'static [&'static str]),
    /// A rustup component of the active toolchain.
    Rustup(&'static str),
    /// A crate installed with `cargo install --locked`.
    Crate(&'static str),
    /// `npm ci` in this directory (relative to the workspace), pinned by its package-lock.json.
    Npm(&'static str),
    /// The Python venv of the interop tests, with the pinned packages of this requirements file.
    Venv(&'static str),
}

/// How to tell that a prerequisite is present (for npm and the venv: installed from the
/// lock file as it is now, see [`Workspace::stamp_matches`]).
#[derive(Debug)]
enum Check {
    OnPath(&'static [&'static str]),
    File(&'static str),
    Succeeds(&'static str, &'static [&'static str]),
    Cargo(&'static [&'static str]),
    Stamp,
}

#[derive(Debug)]
struct Prerequisite {
    what: &'static str,
    check: Check,
    source: Source,
}

const fn needs(what: &'static str, check: Check, source: Source) -> Prerequisite {
    Prerequisite {
        what,
        check,
        source,
    }
}

/// Everything, in install order (Debian first: npm and python3 come from there). Building
/// needs nothing but Rust: no crate of the workspace links a system library.
const PREREQUISITES: &[Prerequisite] = &[
    needs(
        "openssl (the end-to-end tests run `openssl verify`)",
        Check::OnPath(&["openssl"]),
        Source::Debian(&["openssl"]),
    ),
    needs(
        "certbot (ACME interop tests)",
        Check::OnPath(&["certbot"]),
        Source::Debian(&["certbot"]),
    ),
    needs(
        "lego (ACME interop tests)",
        Check::OnPath(&["lego"]),
        Source::Debian(&["lego"]),
    ),
    needs(
        "pebble and pebble-challtestsrv (dns-01 interop, `e2ei-bench acme`)",
        Check::OnPath(&["pebble", "pebble-challtestsrv"]),
        Source::Debian(&["pebble"]),
    ),
    needs(
        "PostgreSQL 15 or newer (the PostgreSQL store's tests start their own cluster)",
        Check::Succeeds(
            "sh",
            &[
                "-c",
                "ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl",
            ],
        ),
        Source::Debian(&["postgresql", "postgresql-client"]),
    ),
    needs(
        "chromium (browser tests drive /usr/bin/chromium)",
        Check::File("/usr/bin/chromium"),
        Source::Debian(&["chromium"]),
    ),
    needs(
        "node and npm (OAuth interop tests, `e2ei-bench token`)",
        Check::OnPath(&["node", "npm"]),
        Source::Debian(&["nodejs", "npm"]),
    ),
    needs(
        "python3 with venv (requests_oauth2client interop test)",
        Check::Succeeds("python3", &["-c", "import ensurepip, venv"]),
        Source::Debian(&["python3", "python3-venv"]),
    ),
    needs(
        "rustfmt",
        Check::Cargo(&["fmt", "--version"]),
        Source::Rustup("rustfmt"),
    ),
    needs(
        "clippy",
        Check::Cargo(&["clippy", "--version"]),
        Source::Rustup("clippy"),
    ),
    needs(
        "cargo-nextest (runs the suite; built from source, a few minutes)",
        Check::Cargo(&["nextest", "--version"]),
        Source::Crate("cargo-nextest"),
    ),
    needs(
        "npm packages of the interop tests (oauth4webapi, openid-client, oidc-provider, playwright-core)",
        Check::Stamp,
        Source::Npm("authz-server/tests/interop"),
    ),
    needs(
        "npm packages of the benchmark peers and the enterprise IdP test (oidc-provider)",
        Check::Stamp,
        Source::Npm("e2ei-stack/bench-peers"),
    ),
    needs(
        "Python venv of the interop tests (requests_oauth2client, Authlib)",
        Check::Stamp,
        Source::Venv("authz-server/tests/interop/requirements.txt"),
    ),
];

/// The checkout the tasks run in.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn venv(&self) -> PathBuf {
        self.root.join("target/interop-venv")
    }

    /// The venv's python, which the interop test runs (also its default when `INTEROP_PYTHON`
    /// is unset).
    pub fn venv_python(&self) -> PathBuf {
        self.venv().join("bin/python")
    }

    /// Where the copy of the lock file that was last installed is kept, and the lock file.
    fn stamp_and_lock(&self, source: &Source) -> Option<(PathBuf, PathBuf)> {
        match source {
            Source::Npm(dir) => Some((
                self.root
                    .join(dir)
                    .join("node_modules/.xtask-installed-lock.json"),
                self.root.join(dir).join("package-lock.json"),
            )),
            Source::Venv(requirements) => Some((
                self.venv().join(".xtask-installed-requirements.txt"),
                self.root.join(requirements),
            )),
            Source::Debian(_) | Source::Rustup(_) | Source::Crate(_) => None,
        }
    }

    /// Installed from the lock file as it is now: the copy kept after the last successful
    /// install is byte for byte the lock file (and, for the venv, its python exists).
    fn stamp_matches(&self, source: &Source) -> bool {
        let Some((stamp, lock)) = self.stamp_and_lock(source) else {
            return false;
        };
        if matches!(source, Source::Venv(_)) && !self.venv_python().exists() {
            return false;
        }
        match (std::fs::read(stamp), std::fs::read(lock)) {
            (Ok(installed), Ok(wanted)) => installed == wanted,
            _ => false,
        }
    }

    fn write_stamp(&self, source: &Source) -> Result<(), String> {
        if let Some((stamp, lock)) = self.stamp_and_lock(source) {
            std::fs::copy(&lock, &stamp)
                .map_err(|e| format!("recording {}: {e}", stamp.display()))?;
        }
        Ok(())
    }

    fn is_present(&self, prerequisite: &Prerequisite) -> bool {
        match prerequisite.check {
            Check::OnPath(programs) => programs.iter().all(|p| shell::on_path(p)),
            Check::File(path) => Path::new(path).exists(),
            Check::Succeeds(program, args) => shell::succeeds(program, args),
            Check::Cargo(args) => shell::succeeds(shell::cargo(), args),
            Check::Stamp => self.stamp_matches(&prerequisite.source),
        }
    }

    fn missing(&self) -> Vec<&'static Prerequisite> {
        PREREQUISITES
            .iter()
            .filter(|p| !self.is_present(p))
            .collect()
    }

    /// With `--no-install`: says what is missing, so the failures that follow are explained.
    pub fn report_missing(&self) {
        for prerequisite in self.missing() {
            println!(
                "xtask: not installed (the tests that need it will fail): {}",
                prerequisite.what
            );
        }
    }

    /// Installs what is missing, one line per thing, and checks afterwards that each is there.
    pub fn install_missing(&self) -> Result<(), String> {
        let missing = self.missing();
        if missing.is_empty() {
            println!("xtask: everything the tests need is installed");
            return Ok(());
        }
        for prerequisite in &missing {
            println!(
                "xtask: installing {} ({})",
                prerequisite.what,
                describe(&prerequisite.source)
            );
        }
        let debian: Vec<&str> = missing
            .iter()
            .filter_map(|p| match p.source {
                Source::Debian(packages) => Some(packages),
                _ => None,
            })
            .flatten()
            .copied()
            .collect();
        if !debian.is_empty() {
            apt_install(&debian)?;
        }
        let components: Vec<&str> = missing
            .iter()
            .filter_map(|p| match p.source {
                Source::Rustup(component) => Some(component),
                _ => None,
            })
            .collect();
        if !components.is_empty() {
            Step::new("rustup", ["component", "add"])
                .args(&components)
                .run_quietly_in(&self.root)?;
        }
        for prerequisite in &missing {
            self.install_one(&prerequisite.source)?;
        }
        let still_missing: Vec<&str> = self.missing().iter().map(|p| p.what).collect();
        if still_missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "still missing after installing: {}",
                still_missing.join("; ")
            ))
        }
    }

    /// The installs that are one command per prerequisite (Debian and rustup are batched).
    fn install_one(&self, source: &Source) -> Result<(), String> {
        match source {
            Source::Debian(_) | Source::Rustup(_) => return Ok(()),
            Source::Crate(name) => {
                Step::new(shell::cargo(), ["install", "--locked", name])
                    .run_quietly_in(&self.root)?;
            }
            Source::Npm(dir) => {
                Step::new("npm", ["ci", "--no-audit", "--no-fund"])
                    .run_quietly_in(&self.root.join(dir))?;
            }
            Source::Venv(requirements) => {
                let venv = self.venv();
                if !self.venv_python().exists() {
                    Step::new("python3", ["-m", "venv"])
                        .arg(&venv)
                        .run_quietly_in(&self.root)?;
                }
                Step::new(
                    venv.join("bin/pip"),
                    ["install", "-q", "--disable-pip-version-check", "-r"],
                )
                .arg(self.root.join(requirements))
                .run_quietly_in(&self.root)?;
            }
        }
        self.write_stamp(source)
    }
}

fn describe(source: &Source) -> String {
    match source {
        Source::Debian(packages) => format!("Debian: {}", packages.join(" ")),
        Source::Rustup(component) => format!("rustup component {component}"),
        Source::Crate(name) => format!("cargo install --locked {name}"),
        Source::Npm(dir) => format!("npm ci in {dir}"),
        Source::Venv(requirements) => format!("pip install -r {requirements}"),
    }
}

/// `apt-get install` as root, or through sudo; a clear refusal when neither is possible.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let list = packages.join(" ");
    if !shell::on_path("apt-get") {
        return Err(format!(
            "these Debian packages are missing and this system has no apt-get: {list}. \
             Install their equivalents yourself, then run `cargo xtask test --no-install`."
        ));
    }
    let as_root = shell::succeeds("sh", &["-c", "test \"$(id -u)\" = 0"]);
    let mut prefix: Vec<&str> = Vec::new();
    if !as_root {
        let sudo_ready =
            shell::on_path("sudo") && Step::new("sudo", ["-v"]).run_in(Path::new(".")).is_ok();
        if !sudo_ready {
            return Err(format!(
                "installing the Debian packages {list} needs root: run this as root or as a user \
                 who may use sudo, or run `sudo apt-get install {list}` yourself and then \
                 `cargo xtask test --no-install`."
            ));
        }
        prefix.push("sudo");
    }
    prefix.extend(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
    let (program, rest) = (prefix[0], &prefix[1..]);
    Step::new(program, rest)
        .args(["update", "-q"])
        .run_quietly_in(Path::new("."))?;
    Step::new(program, rest)
        .args(["install", "-y", "-q"])
        .args(packages)
        .run_quietly_in(Path::new("."))
}
