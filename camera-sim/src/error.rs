/// What can go wrong while simulating a camera.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid plate `{raw}`: {why}")]
    InvalidPlate { raw: String, why: &'static str },
    #[error("jpeg encoding failed: {0}")]
    Encode(String),
    #[error("jpeg has no start-of-image marker")]
    NotJpeg,
    #[error("frame rendering thread panicked")]
    RenderPanicked,
    #[error("a frame pool needs at least one frame spec")]
    EmptyPool,
}
