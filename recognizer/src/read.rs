//! Text reading: upright crops are resized to the reader's height (or stretched to its
//! fixed size), batched by width, run through the reader, and its CTC output is
//! decoded greedily, keeping each character's probability and the runner-up classes
//! at the same time step (the plate candidates are built from them).

use image::RgbImage;

use crate::geometry::resize_into_nchw;
use crate::model::{Alphabet, ReaderSpec};
use crate::plates::CharRead;
use crate::runtime::Model;
use crate::RecognizerError;

/// Crops per reader run at most.
const BATCH: usize = 8;
/// A batch takes crops up to this many times as wide as its narrowest (sorted by
/// width, so padding stays small).
const BATCH_SPREAD: f32 = 1.5;
/// Runner-up classes kept per character.
pub(crate) const ALTERNATIVES: usize = 3;

/// What the reader made of one crop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineRead {
    /// Decoded text as read, unnormalised.
    pub raw: String,
    pub chars: Vec<CharRead>,
}

pub(crate) struct Reader {
    pub(crate) model: Model,
    pub(crate) spec: ReaderSpec,
    pub(crate) alphabet: Alphabet,
}

impl Reader {
    /// Reads every crop; the result is in the crops' order.
    pub(crate) fn read(&self, crops: &[RgbImage]) -> Result<Vec<LineRead>, RecognizerError> {
        let (height, max_width) = (self.spec.height, self.spec.max_width);
        let widths: Vec<u32> = crops
            .iter()
            .map(|c| match self.spec.stretch {
                true => max_width,
                false => reader_width(c.dimensions(), height, max_width),
            })
            .collect();
        let mut order: Vec<usize> = (0..crops.len()).collect();
        order.sort_by_key(|&i| widths[i]);
        let mut reads = vec![LineRead::default(); crops.len()];
        let norm = self.spec.normalise();
        let min_width = self.spec.min_width.unwrap_or(0);
        let mut batches: Vec<Vec<usize>> = Vec::new();
        for i in order {
            match batches.last_mut() {
                Some(b)
                    if b.len() < BATCH
                        && widths[i] as f32
                            <= BATCH_SPREAD * widths[b[0]].max(min_width) as f32 =>
                {
                    b.push(i)
                }
                _ => batches.push(vec![i]),
            }
        }
        for batch in &batches {
            let widest = batch.iter().map(|&i| widths[i]).max().unwrap_or(1);
            let stride = widest.max(min_width) as usize;
            let planes = self.spec.channels.planes();
            let item = planes * height as usize * stride;
            // zero is the padding after normalisation, as PaddleOCR pads
            let mut input = vec![0.0; batch.len() * item];
            for (slot, &i) in batch.iter().enumerate() {
                let dst = &mut input[slot * item..(slot + 1) * item];
                resize_into_nchw(&crops[i], (widths[i], height), &norm, dst, stride);
            }
            let shape = [batch.len(), planes, height as usize, stride];
            let decoded = self.model.run(shape, &input, |shape, probs| {
                let classes = self.alphabet.classes();
                let [n, t, c] = *shape else {
                    return Err(self.mismatch(format!("expected [N,T,C] output, got {shape:?}")));
                };
                if n as usize != batch.len() || c as usize != classes {
                    return Err(self.mismatch(format!(
                        "output {shape:?} does not fit {} crops and {classes} classes (the alphabet and the blank)",
                        batch.len()
                    )));
                }
                let per = (t * c) as usize;
                Ok(probs
                    .chunks_exact(per)
                    .map(|m| ctc_decode(m, c as usize, &self.alphabet.chars))
                    .collect::<Vec<_>>())
            })?;
            for (&i, read) in batch.iter().zip(decoded) {
                reads[i] = read;
            }
        }
        Ok(reads)
    }

    fn mismatch(&self, reason: String) -> RecognizerError {
        RecognizerError::ModelMismatch {
            model: self.model.name.clone(),
            reason,
        }
    }
}

/// The crop's width at the reader's height, keeping its aspect (rounded up), at
/// most `max_width`.
pub(crate) fn reader_width((w, h): (u32, u32), height: u32, max_width: u32) -> u32 {
    let h = h.max(1) as u64;
    let scaled = (height as u64 * w as u64).div_ceil(h);
    scaled.clamp(1, max_width as u64) as u32
}

/// Greedy CTC decoding of a `[T, classes]` probability matrix: the best class per
/// step, repeats collapsed, blanks (class 0) dropped. A character's probability is
/// the highest its class reached over its run of steps; its alternatives are the
/// next best non-blank classes at that step.
pub(crate) fn ctc_decode(probs: &[f32], classes: usize, alphabet: &[char]) -> LineRead {
    let mut read = LineRead::default();
    let mut prev = 0usize;
    let mut best_step: Option<usize> = None;
    let steps: Vec<&[f32]> = probs.chunks_exact(classes).collect();
    let finish = |read: &mut LineRead, class: usize, step: Option<usize>| {
        if let Some(s) = step {
            let row = steps[s];
            let mut ranked: Vec<usize> = (1..classes).filter(|&k| k != class).collect();
            let top = ALTERNATIVES.min(ranked.len());
            if top > 0 {
                ranked.select_nth_unstable_by(top - 1, |&a, &b| row[b].total_cmp(&row[a]));
                ranked.truncate(top);
                ranked.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            }
            let ch = alphabet[class - 1];
            read.raw.push(ch);
            read.chars.push(CharRead {
                ch,
                prob: row[class],
                alternatives: ranked
                    .into_iter()
                    .map(|k| (alphabet[k - 1], row[k]))
                    .collect(),
            });
        }
    };
    for (s, row) in steps.iter().enumerate() {
        let (class, p) =
            row.iter().enumerate().fold(
                (0, f32::MIN),
                |best, (k, &v)| if v > best.1 { (k, v) } else { best },
            );
        if class != prev {
            finish(&mut read, prev, best_step.take());
        }
        if class != 0 && best_step.is_none_or(|b| p > steps[b][class]) {
            best_step = Some(s);
        }
        prev = class;
    }
    finish(&mut read, prev, best_step);
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of (class, probability); the rest of each row's mass is spread evenly.
    fn matrix(rows: &[&[(usize, f32)]], classes: usize) -> Vec<f32> {
        rows.iter()
            .flat_map(|row| {
                let rest: f32 = 1.0 - row.iter().map(|r| r.1).sum::<f32>();
                let even = rest / (classes - row.len()) as f32;
                (0..classes).map(move |k| row.iter().find(|r| r.0 == k).map_or(even, |r| r.1))
            })
            .collect()
    }

    #[test]
    fn ctc_collapses_repeats_and_drops_blanks() {
        let alphabet = ['0', '1', 'A', 'O'];
        // "0 0 _ 0 1 1 _ A" reads "001A"; the second 0 is unsure against O
        let m = matrix(
            &[
                &[(1, 0.9)],
                &[(1, 0.7)],
                &[(0, 0.95)],
                &[(1, 0.55), (4, 0.4)],
                &[(2, 0.6)],
                &[(2, 0.8)],
                &[(0, 0.9)],
                &[(3, 0.99)],
            ],
            5,
        );
        let read = ctc_decode(&m, 5, &alphabet);
        assert_eq!(read.raw, "001A");
        let probs: Vec<f32> = read.chars.iter().map(|c| c.prob).collect();
        assert_eq!(probs, vec![0.9, 0.55, 0.8, 0.99]);
        assert_eq!(read.chars[1].alternatives[0], ('O', 0.4));
        assert_eq!(read.chars[1].alternatives.len(), ALTERNATIVES);
        assert!(read.chars[1].alternatives.iter().all(|a| a.0 != '0'));
    }

    #[test]
    fn ctc_of_only_blanks_is_empty() {
        let m = matrix(&[&[(0, 0.9)], &[(0, 0.8)]], 3);
        assert_eq!(ctc_decode(&m, 3, &['A', 'B']), LineRead::default());
    }

    #[test]
    fn reader_width_keeps_aspect_within_bounds() {
        assert_eq!(reader_width((200, 40), 48, 320), 240);
        assert_eq!(reader_width((2000, 40), 48, 320), 320);
        assert_eq!(reader_width((1, 400), 48, 320), 1);
    }
}
