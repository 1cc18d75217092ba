//! Keys for tests: a fresh key for every algorithm, RSA loaded from a key committed for tests
//! (RSA keys are not generated here). Compiled only for tests (`cfg(test)`, or the `test-keys`
//! feature that the workspace's crates enable for their own tests).

use crate::jws::{Algorithm, SigningKey};

/// A 2048-bit RSA key made for tests with `openssl genpkey` (PKCS#8 DER); never use it for
/// anything else.
pub const RSA_TEST_KEY: &[u8] = include_bytes!("../tests/vectors/rsa-2048-test-key.pk8.der");

/// A second one, for "signed by another key" tests.
pub const SECOND_RSA_TEST_KEY: &[u8] =
    include_bytes!("../tests/vectors/rsa-2048-second-test-key.pk8.der");

/// A key for `alg`.
pub fn key_for(alg: Algorithm) -> SigningKey {
    load_or_generate(alg, RSA_TEST_KEY)
}

/// A key for `alg` that is not [`key_for`]'s (for RSA, the second test key; else a fresh one).
pub fn another_key_for(alg: Algorithm) -> SigningKey {
    load_or_generate(alg, SECOND_RSA_TEST_KEY)
}

fn load_or_generate(alg: Algorithm, rsa: &[u8]) -> SigningKey {
    let key = match alg {
        Algorithm::Rs256 => SigningKey::from_pkcs8_der(alg, rsa),
        _ => SigningKey::generate(alg),
    };
    match key {
        Ok(key) => key,
        Err(e) => unreachable!("test key for {alg:?}: {e}"),
    }
}
