#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("store: {0}")]
    Store(#[from] kozomol_store::StoreError),
    #[error("mqtt client: {0}")]
    Client(#[from] rumqttc::ClientError),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
