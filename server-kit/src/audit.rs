//! The audit log: one JSON object per line in `data_dir/audit.jsonl` (owner-only), for the events
//! an operator must be able to reconstruct: logins, token issuance, device registration,
//! certificate issuance and revocation. Each line says when (`at`, Unix seconds), what (`event`)
//! and who and which (the event's fields: user, client, device, account, serial, address).
//!
//! Callers pass identifiers only, never a credential: no password, token, code, nonce or key
//! is a field of any event (the log-scan test checks a whole enrollment). Lines are appended
//! with one write each and reach the disk with the operating system's write-back, not an fsync
//! per line; a failed write is reported on the error log and never fails the request.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The file name under the data directory.
pub const FILE_NAME: &str = "audit.jsonl";

/// An append-only JSON-lines audit log.
#[derive(Debug)]
pub struct AuditLog {
    file: Option<Mutex<File>>,
}

impl AuditLog {
    /// Opens (or creates, mode 0600) `data_dir/audit.jsonl` for appending.
    pub fn open(data_dir: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = data_dir.join(FILE_NAME);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Ok(Self {
            file: Some(Mutex::new(file)),
        })
    }

    /// A log that records nothing (tools that serve no requests).
    pub fn disabled() -> Self {
        Self { file: None }
    }

    /// Appends `{"at": at, "event": event, ...fields}`; `fields` must be a JSON object of
    /// identifiers.
    pub fn record(&self, at: i64, event: &'static str, fields: Value) {
        let Some(file) = &self.file else {
            return;
        };
        let mut line = Map::new();
        line.insert("at".into(), at.into());
        line.insert("event".into(), event.into());
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let mut bytes = Value::Object(line).to_string().into_bytes();
        bytes.push(b'\n');
        let written = file
            .lock()
            .map_err(|_| std::io::Error::other("audit log lock poisoned"))
            .and_then(|mut f| f.write_all(&bytes));
        if let Err(e) = written {
            tracing::error!(target: "audit", error = %e, event, "audit log write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn appends_one_json_object_per_line_to_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(100, "login.succeeded", serde_json::json!({"user": "u1"}));
        log.record(
            101,
            "device.registered",
            serde_json::json!({"device": "d1"}),
        );
        drop(log);
        let reopened = AuditLog::open(dir.path()).unwrap();
        reopened.record(102, "login.failed", serde_json::json!({"handle": "h"}));
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["event"], "login.succeeded");
        assert_eq!(lines[0]["user"], "u1");
        assert_eq!(lines[1]["at"], 101);
        assert_eq!(lines[2]["handle"], "h");
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
