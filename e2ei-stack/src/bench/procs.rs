//! The servers as separate processes for the benchmark, so their CPU time and memory are their
//! own: users added with the operator CLI, both servers started in dev mode on ephemeral ports,
//! CPU seconds and peak RSS read from /proc.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::stack::DOMAIN;

/// A server binary next to the running executable (`cargo build --release --bins`).
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("no executable directory"))?;
    for candidate in [dir.join(name), dir.join("..").join(name)] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!(
        "{name} is not built next to {}; run `cargo build --release --bins` first",
        exe.display()
    )
}

/// A running server process.
#[derive(Debug)]
pub struct Server {
    /// The child.
    pub child: Child,
    /// What it printed after the ready prefix.
    pub lines: Vec<String>,
}

impl Server {
    /// Starts `program args` and collects stdout until a line starts with `ready` (and
    /// `extra` more lines after it).
    pub async fn start(program: &Path, args: &[String], ready: &str, extra: usize) -> Result<Self> {
        Self::start_logging(program, args, ready, extra, None).await
    }

    /// [`Server::start`], with the log (stderr) at trace level appended to `log` when given.
    pub async fn start_logging(
        program: &Path,
        args: &[String],
        ready: &str,
        extra: usize,
        log: Option<&Path>,
    ) -> Result<Self> {
        let mut command = Command::new(program);
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                command.env("RUST_LOG", "trace").stderr(file);
            }
            None => {
                command.stderr(Stdio::null());
            }
        }
        let mut child = command
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("{}", program.display()))?;
        let mut out = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut lines = Vec::new();
        while let Some(line) = out.next_line().await? {
            if !lines.is_empty() || line.starts_with(ready) {
                lines.push(line);
                if lines.len() > extra {
                    break;
                }
            }
        }
        if lines.is_empty() {
            bail!("{} exited before it was ready", program.display());
        }
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
        Ok(Self { child, lines })
    }

    /// CPU seconds (user + system) so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(self.child.id().context("exited")?)
    }

    /// Peak resident set size in MiB.
    pub fn peak_rss_mib(&self) -> Result<f64> {
        peak_rss_mib(self.child.id().context("exited")?)
    }
}

/// CPU seconds (user + system) of process `pid` so far, from /proc/<pid>/stat.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    stat_seconds(pid, false)
}

/// CPU seconds of process `pid` and of its children (a PostgreSQL server: the postmaster and
/// its backends), from /proc: those running now, and those that have ended (their time is
/// `pid`'s once it has reaped them), so a backend ending between two readings keeps its CPU.
pub fn tree_cpu_seconds(pid: u32) -> Result<f64> {
    let children: f64 = server_kit::testing::children_of(pid)
        .into_iter()
        .map(|child| cpu_seconds(child).unwrap_or(0.0))
        .sum();
    Ok(stat_seconds(pid, true)? + children)
}

/// User and system time of `pid` in seconds, with that of its reaped children when `reaped`.
fn stat_seconds(pid: u32, reaped: bool) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').context("stat")?.1;
    // Fields 14 to 17 of stat (utime, stime, cutime, cstime) are the 12th to 15th after the
    // name.
    let fields = if reaped { 11..15 } else { 11..13 };
    let ticks = after_name
        .split_whitespace()
        .skip(fields.start)
        .take(fields.len())
        .map(|field| field.parse::<f64>().context("stat field"))
        .sum::<Result<f64>>()?;
    Ok(ticks / 100.0)
}

/// Peak resident set size of process `pid` in MiB (VmHWM).
pub fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// Adds users `bench0..bench{n-1}` (password `bench password {i}`) to an authz data dir.
pub async fn add_users(authz: &Path, data: &Path, n: usize) -> Result<()> {
    add_users_with(authz, data, None, n).await
}

/// [`add_users`] with a configuration file (its `[store]`).
pub async fn add_users_with(
    authz: &Path,
    data: &Path,
    config: Option<&Path>,
    n: usize,
) -> Result<()> {
    for i in 0..n {
        let mut command = Command::new(authz);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .args(["--data-dir", &data.display().to_string(), "user", "add"])
            .args([
                "--handle",
                &format!("bench{i}"),
                "--name",
                &format!("Bench User {i}"),
            ])
            .args(["--domain", DOMAIN])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child.stdin.take().context("stdin")?;
        server_kit::process::input_given(stdin.write_all(password(i).as_bytes()).await)?;
        drop(stdin);
        if !child.wait().await?.success() {
            bail!("user add bench{i} failed");
        }
    }
    Ok(())
}

/// The password of bench user `i`.
pub fn password(i: usize) -> String {
    format!("bench password {i}")
}

/// Bytes under a directory.
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
