//! The handwriting reader: a small CNN, run on the CPU with candle.
//!
//! Eleven classes: the ten digits and "blank", so that a cell holding only
//! dust or border fragments that survived cleaning is called empty by the
//! same calibrated model rather than by a hand-set rule.

use super::fast::FastNet;
use super::preprocess::{normalise, SIDE};
use super::{CellReading, DigitReader, ReaderInfo};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, VarBuilder};
use image::GrayImage;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The per-cell threshold picked on our own validation fold (MNIST train
/// split, index % 5 == 1), never on evaluation data: the lowest listed
/// threshold at which error among accepted cells stayed at or below 0.1%
/// (`train::pick_threshold`). See models/TRAINING.log.
pub const SHIPPED_THRESHOLD: f32 = 0.99;

/// Index of the blank class.
pub const BLANK: usize = 10;
pub const CLASSES: usize = 11;

/// The shape of a network: whether a third 3×3 convolution (64 channels,
/// at 7×7, no pooling) follows the second, and the hidden dense width.
/// Model files say which they are (a `c3` tensor, the size of `f1`), so
/// older models still load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    pub third_conv: bool,
    pub hidden: usize,
}

/// The shape `todoke digits train` trains.
pub const ARCH: Arch = Arch {
    third_conv: true,
    hidden: 256,
};

pub struct Net {
    c1: Conv2d,
    c2: Conv2d,
    c3: Option<Conv2d>,
    f1: Linear,
    f2: Linear,
}

impl Net {
    pub fn new(vb: VarBuilder) -> candle_core::Result<Net> {
        Net::with_arch(vb, ARCH)
    }

    pub fn with_arch(vb: VarBuilder, arch: Arch) -> candle_core::Result<Net> {
        let pad = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Net {
            c1: conv2d(1, 32, 3, pad, vb.pp("c1"))?,
            c2: conv2d(32, 64, 3, pad, vb.pp("c2"))?,
            c3: if arch.third_conv {
                Some(conv2d(64, 64, 3, pad, vb.pp("c3"))?)
            } else {
                None
            },
            f1: linear(64 * 7 * 7, arch.hidden, vb.pp("f1"))?,
            f2: linear(arch.hidden, CLASSES, vb.pp("f2"))?,
        })
    }

    /// Logits for a batch shaped (n, 784).
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(xs, None)
    }

    /// Logits; in training, `drop` gives the dropout rate of the hidden layer
    /// (half of it on the convolutional features) and the seeded source of
    /// its masks, so that a run is reproducible.
    pub fn forward_t(
        &self,
        xs: &Tensor,
        mut drop: Option<(f32, &mut rand::rngs::StdRng)>,
    ) -> candle_core::Result<Tensor> {
        let n = xs.dim(0)?;
        let features = xs
            .reshape((n, 1, SIDE, SIDE))?
            .apply(&self.c1)?
            .relu()?
            .max_pool2d(2)?
            .apply(&self.c2)?
            .relu()?
            .max_pool2d(2)?;
        let features = match &self.c3 {
            Some(c3) => features.apply(c3)?.relu()?,
            None => features,
        }
        .flatten_from(1)?;
        let features = match drop.as_mut() {
            Some((p, rng)) => dropout(&features, *p * 0.5, rng)?,
            None => features,
        };
        let hidden = features.apply(&self.f1)?.relu()?;
        let hidden = match drop.as_mut() {
            Some((p, rng)) => dropout(&hidden, *p, rng)?,
            None => hidden,
        };
        hidden.apply(&self.f2)
    }
}

/// Inverted dropout with a mask drawn from `rng`.
fn dropout(xs: &Tensor, p: f32, rng: &mut rand::rngs::StdRng) -> candle_core::Result<Tensor> {
    use rand::Rng;
    if p <= 0.0 {
        return Ok(xs.clone());
    }
    let keep = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..xs.elem_count())
        .map(|_| if rng.gen::<f32>() < p { 0.0 } else { keep })
        .collect();
    xs * Tensor::from_vec(mask, xs.shape(), xs.device())?
}

#[derive(Debug, thiserror::Error)]
pub enum DigitsError {
    #[error("cannot read model {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model {path} is not a todoke digit model: {detail}")]
    Model { path: PathBuf, detail: String },
}

pub struct CnnReader {
    /// The network as trained (candle), kept as the reference the fast
    /// path is tested against.
    net: Net,
    /// The same weights, laid out for fast inference.
    fast: FastNet,
    /// Softmax temperature fitted on the validation fold.
    temperature: f32,
    info: ReaderInfo,
}

/// `TODOKE_MODEL`, else the model shipped in the source tree.
pub fn default_model_path() -> PathBuf {
    std::env::var_os("TODOKE_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/digits.safetensors"))
}

impl CnnReader {
    pub fn load(path: &Path) -> Result<CnnReader, DigitsError> {
        let bytes = std::fs::read(path).map_err(|source| DigitsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let model = |e: candle_core::Error| DigitsError::Model {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let version = hex::encode(Sha256::digest(&bytes));
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(model)?;
        let hidden = tensors
            .get("f1.bias")
            .ok_or_else(|| DigitsError::Model {
                path: path.to_path_buf(),
                detail: "no f1.bias".into(),
            })?
            .dim(0)
            .map_err(model)?;
        let fast = FastNet::new(&tensors).map_err(model)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let arch = Arch {
            third_conv: fast.third_conv(),
            hidden,
        };
        let net = Net::with_arch(vb.clone(), arch).map_err(model)?;
        let temperature = vb
            .get(1, "temperature")
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(model)?[0];
        Ok(CnnReader {
            net,
            fast,
            temperature,
            info: ReaderInfo {
                name: "cnn".into(),
                version,
            },
        })
    }

    /// Calibrated class probabilities for normalised inputs.
    pub fn probabilities(&self, inputs: &[Vec<f32>]) -> candle_core::Result<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        // Chunks bound the working memory (the im2col matrix of a chunk of
        // 32 cells is 7 MB) whatever the caller passes at once.
        let mut out = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(32) {
            for l in self.fast.logits(chunk)? {
                out.push(softmax(&l, self.temperature));
            }
        }
        Ok(out)
    }

    /// The same probabilities through candle's own layers: the reference
    /// for the fast path.
    pub fn reference_probabilities(
        &self,
        inputs: &[Vec<f32>],
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
        let xs = Tensor::from_vec(flat, (inputs.len(), SIDE * SIDE), &Device::Cpu)?;
        let logits = (self.net.forward(&xs)? / self.temperature as f64)?;
        candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()
    }
}

/// Softmax of logits at temperature `t`.
pub fn softmax(l: &[f32], t: f32) -> Vec<f32> {
    let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = l.iter().map(|v| ((v - m) / t).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Top two classes of a probability row as a reading.
pub fn reading_from(p: &[f32]) -> CellReading {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let class = |c: usize| (c != BLANK).then_some(c as u8);
    CellReading {
        digit: class(order[0]),
        confidence: p[order[0]],
        second: class(order[1]),
        second_confidence: p[order[1]],
    }
}

/// Confidence for a cell with no ink left after cleaning. Not fitted: no
/// validation digit cell was cleaned to nothing (0 of 2002; the training
/// report counts them), and 0.999 keeps blank cells at or above every
/// template's digit threshold, so fields padded with empty boxes are not
/// held for review on their account.
pub const BLANK_CONFIDENCE: f32 = 0.999;

/// A cell that is empty after cleaning needs no model.
fn certain_blank() -> CellReading {
    CellReading {
        digit: None,
        confidence: BLANK_CONFIDENCE,
        second: None,
        second_confidence: 0.0,
    }
}

impl DigitReader for CnnReader {
    fn describe(&self) -> ReaderInfo {
        self.info.clone()
    }

    fn read_cell(&self, cell: &GrayImage) -> CellReading {
        self.read_cells(std::slice::from_ref(cell)).remove(0)
    }

    fn read_cells(&self, cells: &[GrayImage]) -> Vec<CellReading> {
        let inputs: Vec<Option<Vec<f32>>> = cells.iter().map(normalise).collect();
        let present: Vec<Vec<f32>> = inputs.iter().flatten().cloned().collect();
        let probs = match self.probabilities(&present) {
            Ok(p) => p,
            Err(e) => {
                // An inference failure must not read as a digit: zero confidence.
                tracing::error!("digit model failed: {e}");
                return cells
                    .iter()
                    .map(|_| CellReading {
                        digit: None,
                        confidence: 0.0,
                        second: None,
                        second_confidence: 0.0,
                    })
                    .collect();
            }
        };
        let mut probs = probs.into_iter();
        inputs
            .iter()
            .map(|i| match i {
                Some(_) => reading_from(&probs.next().expect("one row per input")),
                None => certain_blank(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digits::cells::{render_cell, render_sample, Content};
    use crate::digits::mnist::{self, Split};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/digits.safetensors")
    }

    #[test]
    fn the_shipped_model_reads_validation_cells() {
        let reader = CnnReader::load(&shipped()).expect("models/digits.safetensors");
        // The validation fold (index % 5 == 1), never the evaluation split.
        let val: Vec<_> = mnist::load(&mnist::default_dir(), Split::Train)
            .expect("mnist (scripts/setup.sh)")
            .into_iter()
            .filter(|s| s.index % 5 == 1)
            .step_by(5)
            .collect();
        assert!(val.len() >= 300, "{} validation samples", val.len());
        let mut rng = StdRng::seed_from_u64(77);
        let cells: Vec<GrayImage> = val.iter().map(|s| render_sample(s, &mut rng)).collect();
        let readings = reader.read_cells(&cells);
        let right = readings
            .iter()
            .zip(&val)
            .filter(|(r, s)| r.digit == Some(s.label))
            .count();
        let accuracy = right as f32 / val.len() as f32;
        assert!(accuracy >= 0.95, "validation accuracy {accuracy}");
        for r in &readings {
            assert!(r.confidence >= r.second_confidence);
            assert!(r.confidence + r.second_confidence <= 1.0 + 1e-4);
        }

        let blanks: Vec<GrayImage> = (0..100)
            .map(|_| render_cell(Content::Blank, &mut rng))
            .collect();
        let read_blank = reader
            .read_cells(&blanks)
            .iter()
            .filter(|r| r.digit.is_none())
            .count();
        assert!(read_blank >= 95, "{read_blank}/100 blank cells read blank");

        // One at a time and batched agree, up to the summation order of a
        // different batch size.
        for (cell, batched) in cells.iter().zip(&readings).take(20) {
            let one = reader.read_cell(cell);
            assert_eq!((one.digit, one.second), (batched.digit, batched.second));
            assert!((one.confidence - batched.confidence).abs() < 1e-4);
        }
    }

    #[test]
    fn the_fast_path_computes_what_candle_computes() {
        let reader = CnnReader::load(&shipped()).expect("models/digits.safetensors");
        let val: Vec<_> = mnist::load(&mnist::default_dir(), Split::Train)
            .expect("mnist (scripts/setup.sh)")
            .into_iter()
            .filter(|s| s.index % 5 == 1)
            .step_by(40)
            .collect();
        let mut rng = StdRng::seed_from_u64(5);
        let inputs: Vec<Vec<f32>> = val
            .iter()
            .filter_map(|s| normalise(&render_sample(s, &mut rng)))
            .collect();
        assert!(inputs.len() >= 40);
        let fast = reader.probabilities(&inputs).expect("fast");
        let reference = reader.reference_probabilities(&inputs).expect("candle");
        for (a, b) in fast.iter().zip(&reference) {
            assert_eq!(a.len(), CLASSES);
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-4, "{a:?} vs {b:?}");
            }
        }
    }

    /// Both shapes of network, freshly initialised, agree between the fast
    /// path and candle.
    #[test]
    fn the_fast_path_handles_every_arch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let val: Vec<_> = mnist::load(&mnist::default_dir(), Split::Train)
            .expect("mnist (scripts/setup.sh)")
            .into_iter()
            .filter(|s| s.index % 5 == 1)
            .step_by(100)
            .collect();
        let mut rng = StdRng::seed_from_u64(6);
        let inputs: Vec<Vec<f32>> = val
            .iter()
            .filter_map(|s| normalise(&render_sample(s, &mut rng)))
            .collect();
        for third_conv in [false, true] {
            let varmap = candle_nn::VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
            Net::with_arch(
                vb,
                Arch {
                    third_conv,
                    hidden: 32,
                },
            )
            .expect("net");
            let mut tensors: std::collections::HashMap<String, Tensor> = varmap
                .data()
                .lock()
                .expect("lock")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
                .collect();
            tensors.insert(
                "temperature".into(),
                Tensor::new(&[1.3f32], &Device::Cpu).unwrap(),
            );
            let path = dir.path().join(format!("m{third_conv}.safetensors"));
            candle_core::safetensors::save(&tensors, &path).expect("save");
            let reader = CnnReader::load(&path).expect("load");
            assert_eq!(reader.fast.third_conv(), third_conv);
            let fast = reader.probabilities(&inputs).expect("fast");
            let reference = reader.reference_probabilities(&inputs).expect("candle");
            for (a, b) in fast.iter().zip(&reference) {
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() < 1e-4, "{third_conv}: {a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn the_version_is_the_model_file_hash() {
        let reader = CnnReader::load(&shipped()).expect("models/digits.safetensors");
        let info = reader.describe();
        assert_eq!(info.name, "cnn");
        let bytes = std::fs::read(shipped()).expect("model file");
        assert_eq!(info.version, hex::encode(Sha256::digest(&bytes)));
        assert!(bytes.len() <= 5 << 20, "model is {} bytes", bytes.len());
    }

    #[test]
    fn bad_model_files_are_typed_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("none.safetensors");
        assert!(matches!(
            CnnReader::load(&missing),
            Err(DigitsError::Io { .. })
        ));
        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"not a model").expect("write");
        assert!(matches!(
            CnnReader::load(&junk),
            Err(DigitsError::Model { .. })
        ));
    }
}
