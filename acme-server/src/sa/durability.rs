//! Waiting for durability: the store's group commit, and nothing else of the store.

use std::sync::Arc;

use server_kit::group_commit::GroupCommit;

use crate::error::Result;

/// A handle on the group commit.
#[derive(Debug, Clone)]
pub struct Durability {
    commit: Arc<GroupCommit>,
}

impl Durability {
    pub(super) fn new(commit: Arc<GroupCommit>) -> Self {
        Self { commit }
    }

    /// Returns once everything written before the call is durable, sharing one flush with every
    /// other request waiting at the same time.
    pub async fn durable(&self) -> Result<()> {
        Ok(self.commit.durable().await?)
    }
}
