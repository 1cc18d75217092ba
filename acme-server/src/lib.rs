//! RFC 8555 ACME server and identity CA (DESIGN §2: wfe, ra, va, ca, sa, nonce). Not built yet:
//! issue #3 fills this crate; nothing here claims to work.
