#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("store: {0}")]
    Store(#[from] kozomol_store::StoreError),
    #[error("mqtt client: {0}")]
    Client(#[from] rumqttc::ClientError),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl IngestError {
    /// Whether writing the same messages again may succeed: the store's passing
    /// conditions, the broker client, a task cancelled. A store refusing what the
    /// messages hold, or a task that panicked on them, would fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            IngestError::Store(e) => e.is_transient(),
            IngestError::Client(_) => true,
            IngestError::Task(e) => !e.is_panic(),
        }
    }
}
