//! End-to-end and interop tests across the three crates, the `e2ei-demo` main job and the
//! `e2ei-bench` load generator. Not built yet: issues #4 and #7 fill this crate.
