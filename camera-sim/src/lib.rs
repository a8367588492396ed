//! kozomol-camera-sim: simulated traffic cameras for demos, tests and benchmarks.
//!
//! It owns Kyrgyz plate numbers ([`KgPlate`]), the rendering of violation frames (a
//! 1920×1080 overview JPEG of a road scene with a readable plate, and a plate close-up),
//! a [`FramePool`] that renders a few frames once and hands them out many times,
//! plausible measurements per violation kind, camera sites in Bishkek and measuring
//! devices with valid calibration certificates. It does no I/O: callers decide where
//! frames go.

mod canvas;
mod device;
mod error;
mod font;
mod jpeg;
mod measurement;
mod plate;
mod plate_render;
mod pool;
#[cfg(test)]
mod readability;
mod scene;
mod sites;

pub use device::{simulated_device, DEVICE_MODELS};
pub use error::SimError;
pub use jpeg::with_comment;
pub use measurement::{random_kind, random_measurement};
pub use plate::{random_plate, KgPlate, Region, PLATE_LETTERS};
pub use pool::FramePool;
pub use scene::{
    render_frames, FrameSpec, PixelBox, RenderedFrames, OVERVIEW_HEIGHT, OVERVIEW_WIDTH,
};
pub use sites::{bishkek_sites, BISHKEK_BOUNDS};
