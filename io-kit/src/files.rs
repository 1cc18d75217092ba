//! Private files (keys, passwords): written atomically with mode 0600, and refused on reading
//! when group or others can read them; public files (certificates) written the same way with
//! mode 0644; and the data directory that holds them and the store: created 0700, refused when
//! group or others can enter it.
//!
//! Every write is durable when it returns: the bytes go to a new temp file that is fsynced,
//! renamed over the target, and the directory is fsynced so that the rename itself survives a
//! power loss. A crash at any point leaves either the old file or the new one, never an empty
//! or half-written one; so does a directory made by [`create_dir`].

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Writes a file readable by its owner only, atomically and durably (temp file + fsync +
/// rename + fsync of the directory). The temp file is always a new file of ours (a stale one is
/// removed first, and a link or a file planted in its place is never written through).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_durably(path, bytes, 0o600)
}

/// Writes a public file (a certificate), atomically and durably like [`write_private`].
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    write_durably(path, bytes, 0o644)
}

/// Writes `bytes` to `path` with `mode`: a new temp file, fsynced, renamed over `path`, and the
/// directory fsynced.
fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&tmp, e)),
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
    f.sync_all().map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
    sync_parent(path)
}

/// Removes a file durably (the directory fsynced after); a file that is not there is fine.
pub fn remove_durably(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Fsyncs the directory holding `path`, so that a rename, creation or removal in it survives a
/// power loss.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// Reads a private file, refusing one that group or others can read.
pub fn read_private(path: &Path) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Config(format!(
            "{} is readable by group or others; chmod 600 it",
            path.display()
        )));
    }
    fs::read(path).map_err(|e| io_error(path, e))
}

/// Reads a public file.
pub fn read_public(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| io_error(path, e))
}

/// The data directory: created owner-only (0700) when it does not exist, and made so when it
/// exists but is empty (just made by `mkdir` or a temp-dir helper: nothing can have leaked
/// yet). A directory with contents that group or others can read, write or enter is refused:
/// the store inside holds password hashes, tokens and MAC keys, which may already have been
/// read. A directory (or a link to one) owned by another user is refused whatever its mode: its
/// owner could read, replace or plant keys in it at will.
pub fn private_dir(path: &Path) -> Result<()> {
    private_dir_of(path, rustix::process::geteuid().as_raw())
}

/// [`private_dir`] for the user `ours`.
fn private_dir_of(path: &Path, ours: u32) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner_only = || {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|e| io_error(path, e))
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::Config(format!(
            "{} is a symbolic link; give the data directory's real path",
            path.display()
        ))),
        Ok(meta) if !meta.is_dir() => Err(Error::Config(format!(
            "{} is not a directory",
            path.display()
        ))),
        Ok(meta) if meta.uid() != ours => Err(Error::Config(format!(
            "{} belongs to user {}, not to this server's user {ours}; use a directory of this \
             user's own",
            path.display(),
            meta.uid()
        ))),
        Ok(meta) if meta.permissions().mode() & 0o077 == 0 => Ok(()),
        Ok(meta) => {
            let empty = fs::read_dir(path)
                .map_err(|e| io_error(path, e))?
                .next()
                .is_none();
            if empty {
                owner_only()
            } else {
                Err(Error::Config(format!(
                    "{} is accessible by group or others (mode {:o}) and holds data; check who \
                     may have read it, then chmod 700 it",
                    path.display(),
                    meta.permissions().mode() & 0o777
                )))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_dir(path)?;
            owner_only()
        }
        Err(e) => Err(io_error(path, e)),
    }
}

/// Makes everything under `dir` (and `dir` itself) owner-only: directories 0700, files 0600.
/// For what another library created with the process umask (the sled store's files).
pub fn restrict_tree(dir: &Path) -> Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| io_error(dir, e))?;
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io_error(&path, e))?;
        if kind.is_dir() {
            restrict_tree(&path)?;
        } else if kind.is_file() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(|e| io_error(&path, e))?;
        }
    }
    Ok(())
}

/// Creates a directory and its parents, durably: each directory made is fsynced into its
/// parent.
pub fn create_dir(path: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(dir);
        at = dir.parent();
    }
    fs::create_dir_all(path).map_err(|e| io_error(path, e))?;
    for dir in missing.into_iter().rev() {
        sync_parent(dir)?;
    }
    Ok(())
}

/// An I/O failure on `path` as a configuration error naming the path.
pub fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Config(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_owner_only_and_world_readable_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_private(&path, b"secret").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_private(&path).unwrap(), b"secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_private(&path), Err(Error::Config(_))));
    }

    #[test]
    fn the_data_directory_is_made_owner_only_and_an_open_one_with_data_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let data = parent.path().join("data");
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        // An empty directory someone made with the default umask is taken and closed.
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        // With data in it, it is refused and left as it is.
        fs::write(data.join("db"), b"x").unwrap();
        private_dir(&data).unwrap();
        for open in [0o755, 0o750, 0o701] {
            fs::set_permissions(&data, fs::Permissions::from_mode(open)).unwrap();
            let refused = private_dir(&data).unwrap_err().to_string();
            assert!(refused.contains("chmod 700"), "{open:o}: {refused}");
            assert_eq!(mode(&data), open);
        }
    }

    #[test]
    fn a_data_directory_of_another_user_or_a_link_is_refused_whatever_its_mode() {
        use std::os::unix::fs::MetadataExt;
        let parent = tempfile::tempdir().unwrap();
        let data = parent.path().join("data");
        private_dir(&data).unwrap();
        let owner = fs::metadata(&data).unwrap().uid();
        // The same directory, 0700 and empty, seen by a server running as another user.
        let refused = private_dir_of(&data, owner + 1).unwrap_err().to_string();
        assert!(refused.contains("belongs to user"), "{refused}");
        let link = parent.path().join("link");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        let refused = private_dir(&link).unwrap_err().to_string();
        assert!(refused.contains("symbolic link"), "{refused}");
    }

    #[test]
    fn a_planted_temp_file_or_link_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.der");
        // Someone left a world-writable temp file, and a link pointing elsewhere.
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"untouched").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("key.tmp")).unwrap();
        write_private(&key, b"secret").unwrap();
        assert_eq!(fs::read(&elsewhere).unwrap(), b"untouched");
        fs::write(dir.path().join("key.tmp"), b"planted").unwrap();
        fs::set_permissions(
            dir.path().join("key.tmp"),
            fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        write_private(&key, b"secret 2").unwrap();
        let mode = fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read(&key).unwrap(), b"secret 2");
    }

    #[test]
    fn public_files_replace_the_old_one_whole_and_removal_tolerates_absence() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        create_dir(&nested).unwrap();
        let cert = nested.join("root.pem");
        std::fs::write(cert.with_extension("tmp"), b"left by a crash").unwrap();
        write_public(&cert, b"first").unwrap();
        write_public(&cert, b"second").unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), b"second");
        assert_eq!(
            std::fs::metadata(&cert).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(!cert.with_extension("tmp").exists());
        remove_durably(&cert).unwrap();
        remove_durably(&cert).unwrap();
        assert!(!cert.exists());
    }

    #[test]
    fn restrict_tree_leaves_nothing_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        fs::create_dir_all(&nested).unwrap();
        fs::write(nested.join("db"), b"x").unwrap();
        fs::set_permissions(nested.join("db"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&nested, fs::Permissions::from_mode(0o755)).unwrap();
        restrict_tree(dir.path()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&nested.join("db")), 0o600);
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(dir.path()), 0o700);
    }
}
