//! Private files (keys, passwords): written atomically with mode 0600, and refused on reading
//! when group or others can read them; and the data directory that holds them and the store:
//! created 0700, refused when group or others can enter it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Writes a file readable by its owner only, atomically (temp file + fsync + rename). The
/// temp file is always a new file of ours (a stale one is removed first, and a link or a file
/// planted in its place is never written through).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&tmp, e)),
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
    f.sync_all().map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// Writes a public file (a certificate) atomically.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))
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
            fs::create_dir_all(path).map_err(|e| io_error(path, e))?;
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

/// Creates a directory and its parents.
pub fn create_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| io_error(path, e))
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
