//! The load generator behind `e2ei-bench`: [`enroll`] (full enrollments against the servers as
//! their own processes), [`floor`] (the crypto cost of one enrollment), [`acme`] (http-01
//! issuance against ours and Pebble), [`token`] (DPoP client-credentials tokens against ours and
//! node-oidc-provider), with [`load`], [`procs`] and [`stats`] as helpers.

pub mod acme;
pub mod enroll;
pub mod floor;
pub mod load;
pub mod procs;
pub mod stats;
pub mod token;
