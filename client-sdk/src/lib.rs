//! Device-side enrollment library and the `e2ei-enroll` CLI. Not built yet: issue #4 fills this
//! crate; nothing here claims to work.
