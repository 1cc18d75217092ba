//! The JSON payloads of ACME requests (newAccount, account update, newOrder, finalize, the
//! Wire challenge answers) as the server decodes them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::acme::{AccountUpdate, DpopAnswer, Finalize, NewAccount, NewOrder, OidcAnswer};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<NewAccount>(data);
    let _ = serde_json::from_slice::<AccountUpdate>(data);
    let _ = serde_json::from_slice::<NewOrder>(data);
    let _ = serde_json::from_slice::<Finalize>(data);
    let _ = serde_json::from_slice::<DpopAnswer>(data);
    let _ = serde_json::from_slice::<OidcAnswer>(data);
});
