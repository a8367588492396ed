//! Frames rendered once and handed out many times: simulating thousands of events
//! must not mean rendering thousands of frames.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{render_frames, FrameSpec, RenderedFrames, SimError};

/// K distinct violations, rendered in parallel up front, handed out round-robin.
#[derive(Debug)]
pub struct FramePool {
    frames: Vec<Arc<RenderedFrames>>,
    next: AtomicUsize,
}

impl FramePool {
    /// Renders every spec on up to `threads` threads; frames keep the order of `specs`.
    pub fn render(specs: Vec<FrameSpec>, threads: usize) -> Result<Self, SimError> {
        if specs.is_empty() {
            return Err(SimError::EmptyPool);
        }
        let threads = threads.clamp(1, specs.len());
        let rendered: Vec<Vec<(usize, Result<RenderedFrames, SimError>)>> =
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|worker| {
                        let specs = &specs;
                        scope.spawn(move || {
                            (worker..specs.len())
                                .step_by(threads)
                                .map(|i| (i, render_frames(&specs[i])))
                                .collect()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or_default())
                    .collect()
            });
        let mut slots: Vec<Option<Arc<RenderedFrames>>> = vec![None; specs.len()];
        for (i, result) in rendered.into_iter().flatten() {
            slots[i] = Some(Arc::new(result?));
        }
        // a worker that panicked returned nothing, leaving its slots empty
        let frames = slots
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or(SimError::RenderPanicked)?;
        Ok(FramePool {
            frames,
            next: AtomicUsize::new(0),
        })
    }

    /// The same violations with each overview scaled down to `width` pixels across:
    /// small events for load tests, still carrying a readable plate close-up.
    pub fn with_small_overviews(&self, width: u32) -> Result<Self, SimError> {
        let frames = self
            .frames
            .iter()
            .map(|f| {
                Ok(Arc::new(RenderedFrames {
                    overview: crate::jpeg::shrink(&f.overview, width, 70)?,
                    ..(**f).clone()
                }))
            })
            .collect::<Result<_, SimError>>()?;
        Ok(FramePool {
            frames,
            next: AtomicUsize::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The next violation, round-robin; safe to call from many threads.
    pub fn next(&self) -> Arc<RenderedFrames> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.frames.len();
        Arc::clone(&self.frames[i])
    }

    pub fn frames(&self) -> &[Arc<RenderedFrames>] {
        &self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_renders_in_order_and_cycles() {
        let specs: Vec<FrameSpec> = (0..3)
            .map(|i| {
                FrameSpec::random(
                    100 + i,
                    "sim-pool-01",
                    "улица Киевская, Бишкек",
                    chrono::Utc::now(),
                )
            })
            .collect();
        let pool = FramePool::render(specs.clone(), 2).expect("render");
        assert_eq!(pool.len(), 3);
        for (frames, spec) in pool.frames().iter().zip(&specs) {
            assert_eq!(&frames.spec, spec);
        }
        let handed: Vec<_> = (0..6).map(|_| pool.next().spec.seed).collect();
        assert_eq!(handed, [100, 101, 102, 100, 101, 102]);
        let small = pool.with_small_overviews(320).expect("shrink");
        assert_eq!(small.len(), 3);
        let (big, little) = (&pool.frames()[0], &small.frames()[0]);
        assert!(little.overview.len() * 4 < big.overview.len());
        assert_eq!(little.plate_close_up, big.plate_close_up);
        let decoded = image::load_from_memory(&little.overview).expect("decodes");
        assert_eq!(decoded.width(), 320);
        let single = render_frames(&specs[1]).expect("render");
        assert_eq!(single.overview, pool.frames()[1].overview);
        assert!(matches!(
            FramePool::render(Vec::new(), 2),
            Err(SimError::EmptyPool)
        ));
    }
}
