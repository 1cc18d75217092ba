//! ACME request bodies (flattened JWS JSON, RFC 8555 §6.2), also as the inner JWS of a key
//! change (§7.3.5).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::acme_jws::AcmeRequest;

fuzz_target!(|data: &[u8]| {
    let _ = AcmeRequest::parse(data);
    let _ = AcmeRequest::parse_key_change_inner(data);
});
