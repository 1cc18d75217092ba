//! The load generator behind `e2ei-bench`: [`enroll`] (full enrollments against the servers as
//! their own processes), [`floor`] (the crypto cost of one enrollment), with [`procs`] and
//! [`stats`] as helpers.

pub mod acme;
pub mod enroll;
pub mod floor;
pub mod procs;
pub mod stats;
