//! The whole service on one machine: [`stack::Stack`] starts the authz-server and the
//! acme-server in-process on 127.0.0.1 ephemeral ports, with TLS, fresh dev PKIs and SQLite
//! stores in a directory, wired to each other, and hands out an SDK configuration for the demo
//! user. The `e2ei-demo` binary and the end-to-end tests use it; `e2ei-bench`
//! runs the servers as processes of their own instead ([`bench`]), so their CPU can be measured.
//! [`balancer`] puts replicas of a server behind one URL, for the replica tests and benchmark.

pub mod balancer;
pub mod bench;
pub mod stack;
