//! Evidence frames in append-only segment files, one fsync per batch.

use serde::{Deserialize, Serialize};

/// Where a frame's bytes lie.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameLocation {
    /// Segment file name, relative to the evidence folder.
    pub segment: String,
    /// Byte offset of the frame's first byte.
    pub offset: u64,
    pub len: u32,
}

/// Append-only frame storage in a folder.
pub struct EvidenceStore {}
