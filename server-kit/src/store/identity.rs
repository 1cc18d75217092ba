//! The identity of an embedded store: a random id written into the store when it is made and
//! into the file `identity` beside the store's files. A store whose records were lost (an
//! engine opens a truncated or replaced database file as a new, empty one, saying nothing) no
//! longer holds the id its file names, and is refused instead of served empty.

use std::path::Path;

use super::{Store, Tree};
use crate::{Error, Result};

/// The tree holding the store's identity (never exported: it belongs to these files).
pub(super) const IDENTITY: Tree = Tree::new("__store_identity");

/// The file naming the identity, beside the store's files.
pub(super) const IDENTITY_FILE: &str = "identity";

/// Checks that the store in `dir` holds the identity its file names; a store that has none yet
/// (a new one, or one made before identities) gets one.
pub(super) fn check(store: &dyn Store, dir: &Path, files: &str) -> Result<()> {
    let file = dir.join(IDENTITY_FILE);
    let stored = store.get(IDENTITY, "id")?;
    match (file.exists(), stored) {
        (true, stored) => {
            let expected = crate::files::read_private(&file)?;
            if stored.as_deref() != Some(expected.as_slice()) {
                return Err(Error::Storage(format!(
                    "the store in {} has lost its records (it no longer holds the identity \
                     its file {IDENTITY_FILE} names): {files} were damaged or replaced. Restore \
                     the directory from a backup (`store backup`), or `store import` an export \
                     into an empty one; moving the directory aside starts empty",
                    dir.display()
                )));
            }
        }
        (false, Some(id)) => crate::files::write_private(&file, &id)?,
        (false, None) => {
            let mut raw = [0u8; 16];
            getrandom::fill(&mut raw).map_err(|e| Error::Storage(format!("random: {e}")))?;
            let id: Vec<u8> = raw
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes();
            // In the store first: a crash before the file is written leaves a store whose
            // identity the next open writes out (the arm above).
            store.put(IDENTITY, "id", &id)?;
            store.flush()?;
            crate::files::write_private(&file, &id)?;
        }
    }
    Ok(())
}
