//! Checks a password against its stored argon2 hash (a PHC string), with the hashing memory
//! kept on the checking thread from one check to the next.
//!
//! argon2's own verifier allocates the whole memory cost (19 MiB by default) for every check,
//! so each check also zeroes it and faults its pages in; with several server processes hashing
//! on the same cores that cost grows (`docs/benchmarks.md`, "Password checks"). The blocks
//! kept are overwritten whole by the next check and never leave the thread.

use std::cell::RefCell;

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// The most memory kept on a thread between checks, in 1 KiB blocks (64 MiB): a hash with a
/// larger memory cost is still checked, with memory given back after it.
const KEEP_AT_MOST: usize = 64 * 1024;

/// The largest memory cost checked, in 1 KiB blocks (1 GiB): a stored hash asking for more
/// (only a changed store could hold one) matches nothing instead of exhausting memory.
const CHECK_AT_MOST: usize = 1024 * 1024;

thread_local! {
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Whether `password` hashes to `stored`, compared in constant time; false too when `stored`
/// is not a complete argon2 hash.
pub fn matches(password: &[u8], stored: &PasswordHash<'_>) -> bool {
    recompute(password, stored).is_some_and(|computed| stored.hash == Some(computed))
}

/// The hash of `password` with the algorithm, version, parameters and salt of `stored`.
fn recompute(password: &[u8], stored: &PasswordHash<'_>) -> Option<Output> {
    let algorithm = Algorithm::try_from(stored.algorithm).ok()?;
    let version = match stored.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(stored).ok()?;
    let mut salt = [0u8; 64];
    let salt = stored.salt?.decode_b64(&mut salt).ok()?;
    let blocks = params.block_count();
    if blocks > CHECK_AT_MOST {
        return None;
    }
    let length = stored.hash?.len();
    let argon2 = Argon2::new(algorithm, version, params);
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let computed = Output::init_with(length, |out| {
            argon2
                .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
                .map_err(|_| argon2::password_hash::Error::Password)
        });
        if memory.len() > KEEP_AT_MOST {
            *memory = Vec::new();
        }
        computed.ok()
    })
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, SaltString};

    use super::*;

    fn hashed(password: &str, argon2: &Argon2<'_>) -> String {
        let salt = SaltString::encode_b64(b"sixteen byte sal").expect("salt");
        argon2
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    #[test]
    fn a_hash_matches_its_password_only() {
        let stored = hashed("correct horse", &Argon2::default());
        let parsed = PasswordHash::new(&stored).expect("parse");
        assert!(matches(b"correct horse", &parsed));
        assert!(!matches(b"correct horsf", &parsed));
        assert!(!matches(b"", &parsed));
        // Again on the same thread, with the memory the first checks left.
        assert!(matches(b"correct horse", &parsed));
    }

    #[test]
    fn hashes_with_other_parameters_and_algorithms_are_checked_with_theirs() {
        let small = Params::new(1024, 1, 1, Some(24)).expect("params");
        let large = Params::new(65 * 1024, 1, 2, None).expect("params");
        for argon2 in [
            Argon2::new(Algorithm::Argon2i, Version::V0x10, small),
            Argon2::new(Algorithm::Argon2d, Version::V0x13, large),
            Argon2::default(),
        ] {
            let stored = hashed("pw", &argon2);
            let parsed = PasswordHash::new(&stored).expect("parse");
            assert!(matches(b"pw", &parsed), "{stored}");
            assert!(!matches(b"pv", &parsed), "{stored}");
        }
    }

    #[test]
    fn a_hash_without_its_output_or_salt_or_of_another_algorithm_matches_nothing() {
        let stored = hashed("pw", &Argon2::default());
        let mut parsed = PasswordHash::new(&stored).expect("parse");
        parsed.hash = None;
        assert!(!matches(b"pw", &parsed));
        let mut parsed = PasswordHash::new(&stored).expect("parse");
        parsed.salt = None;
        assert!(!matches(b"pw", &parsed));
        let bcrypt_like = "$2b$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2rR9tOaFz0GkVAh2dcaQW5eRl4Qpbhw4cP+0K0Ef9oE";
        let parsed = PasswordHash::new(bcrypt_like).expect("parse");
        assert!(!matches(b"pw", &parsed));
        // A memory cost past the cap (2 GiB) is refused before any memory is taken.
        let greedy = stored.replace("m=19456", "m=2097152");
        let parsed = PasswordHash::new(&greedy).expect("parse");
        assert!(!matches(b"pw", &parsed));
    }
}
