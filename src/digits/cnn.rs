//! The handwriting reader: small CNNs trained from different seeds, run on
//! the CPU, their probabilities averaged. Several networks misread fewer
//! cells confidently than one: where they disagree, the mean is unsure.
//!
//! Eleven classes: the ten digits and "blank", so that a cell holding only
//! dust or border fragments that survived cleaning is called empty by the
//! same calibrated model rather than by a hand-set rule.

use super::fast::FastNet;
use super::preprocess::{deskew, normalise, SIDE};
use super::{CellReading, DigitReader, ReaderInfo};
use candle_core::{DType, Device, Tensor};
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, VarBuilder};
use image::GrayImage;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The per-cell threshold picked on our own validation fold (MNIST train
/// set, `mnist::Split::Validation`), never on evaluation data: the lowest listed
/// threshold at which error among accepted cells stayed at or below 0.1%
/// (`train::pick_threshold`), for the shipped ensemble as a whole. See
/// models/TRAINING.log.
pub const SHIPPED_THRESHOLD: f32 = 0.98;

/// Index of the blank class.
pub const BLANK: usize = 10;
pub const CLASSES: usize = 11;

/// The shape of a network: the channels of the first two 3×3
/// convolutions (each followed by 2×2 max-pooling), whether a third 3×3
/// convolution (as wide as the second, at 7×7, no pooling) follows, and
/// the hidden dense width. Model files say which they are (the tensors'
/// shapes, a `c3` tensor or none), so older models still load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    pub c1: usize,
    pub c2: usize,
    pub third_conv: bool,
    pub hidden: usize,
}

/// The shape `todoke digits train` trains by default.
pub const ARCH: Arch = Arch {
    c1: 32,
    c2: 64,
    third_conv: true,
    hidden: 256,
};

/// A quarter of the multiply-adds of [`ARCH`], for ensemble members.
pub const SMALL_ARCH: Arch = Arch {
    c1: 16,
    c2: 32,
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
    pub fn with_arch(vb: VarBuilder, arch: Arch) -> candle_core::Result<Net> {
        let pad = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Net {
            c1: conv2d(1, arch.c1, 3, pad, vb.pp("c1"))?,
            c2: conv2d(arch.c1, arch.c2, 3, pad, vb.pp("c2"))?,
            c3: if arch.third_conv {
                Some(conv2d(arch.c2, arch.c2, 3, pad, vb.pp("c3"))?)
            } else {
                None
            },
            f1: linear(arch.c2 * 7 * 7, arch.hidden, vb.pp("f1"))?,
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
    #[error("model {path} is not a todoke digit model: {source}")]
    Model { path: PathBuf, source: ModelError },
}

/// What is wrong with a model file's tensors.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Tensors(#[from] candle_core::Error),
    #[error("no single positive temperature")]
    Temperature,
    #[error("both ensemble (m0.) and single-network tensor names")]
    MixedNames,
    #[error("no network")]
    Empty,
    #[error("member {member}: {source}")]
    Member {
        member: usize,
        source: candle_core::Error,
    },
}

/// Name of the tensor that marks a network trained on deskewed digits.
pub const DESKEW_MARK: &str = "deskew";

/// One trained network of the reader: the candle reference, the same
/// weights laid out for fast inference, and whether it reads digits
/// deskewed.
struct Member {
    net: Net,
    fast: FastNet,
    deskew: bool,
}

/// The reader: one network or an ensemble of several trained from
/// different seeds. An ensemble's probability is the mean of its members'
/// probabilities, then tempered once with the temperature fitted on the
/// validation fold; for one member that is plain temperature scaling.
pub struct CnnReader {
    members: Vec<Member>,
    temperature: f32,
    info: ReaderInfo,
}

/// The shipped model when `todoke.toml` names none (order in `paths`).
pub fn default_model_path() -> PathBuf {
    crate::paths::locate(crate::paths::Asset::Model, None).path
}

/// Prefix of member `i`'s tensors in an ensemble file.
pub fn member_prefix(i: usize) -> String {
    format!("m{i}.")
}

impl CnnReader {
    pub fn load(path: &Path) -> Result<CnnReader, DigitsError> {
        let bytes = std::fs::read(path).map_err(|source| DigitsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let model = |source: ModelError| DigitsError::Model {
            path: path.to_path_buf(),
            source,
        };
        let version = hex::encode(Sha256::digest(&bytes));
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| model(e.into()))?;
        CnnReader::from_tensors(tensors, version).map_err(model)
    }

    /// A reader from a model file's tensors: either one network's (`c1.weight`
    /// ...) or an ensemble's (`m0.c1.weight`, `m1.c1.weight` ...), in f32 or
    /// f16, with one `temperature`.
    pub fn from_tensors(
        tensors: HashMap<String, Tensor>,
        version: String,
    ) -> Result<CnnReader, ModelError> {
        let mut groups: Vec<HashMap<String, Tensor>> = Vec::new();
        let (mut prefixed, mut plain) = (false, false);
        let mut temperature = None;
        for (name, t) in tensors {
            let t = t.to_dtype(DType::F32)?;
            if name == "temperature" {
                temperature = Some(t.flatten_all()?.to_vec1::<f32>()?);
                continue;
            }
            let (index, rest) = match name.strip_prefix('m').and_then(|r| r.split_once('.')) {
                Some((i, rest)) if i.parse::<usize>().is_ok() => {
                    prefixed = true;
                    (i.parse::<usize>().expect("checked"), rest.to_string())
                }
                _ => {
                    plain = true;
                    (0, name)
                }
            };
            if groups.len() <= index {
                groups.resize_with(index + 1, HashMap::new);
            }
            groups[index].insert(rest, t);
        }
        if prefixed && plain {
            return Err(ModelError::MixedNames);
        }
        let temperature = match temperature.as_deref() {
            Some([t]) if *t > 0.0 => *t,
            _ => return Err(ModelError::Temperature),
        };
        let members = groups
            .into_iter()
            .enumerate()
            .map(|(member, g)| {
                Member::new(g).map_err(|source| ModelError::Member { member, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if members.is_empty() {
            return Err(ModelError::Empty);
        }
        Ok(CnnReader {
            members,
            temperature,
            info: ReaderInfo {
                name: "cnn".into(),
                version,
            },
        })
    }

    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Calibrated class probabilities for normalised inputs.
    pub fn probabilities(&self, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        self.log_mean_probabilities(inputs)
            .iter()
            .map(|l| softmax(l, self.temperature))
            .collect()
    }

    /// Log of the members' mean probability, before tempering: what the
    /// temperature is fitted on.
    pub fn log_mean_probabilities(&self, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        // Chunks bound the working memory (the im2col matrix of a chunk of
        // 32 cells is 7 MB) whatever the caller passes at once.
        inputs
            .chunks(32)
            .flat_map(|chunk| {
                let upright = self.deskewed(chunk);
                let per_member: Vec<_> = self
                    .members
                    .iter()
                    .map(|m| m.fast.logits(m.view(chunk, &upright)))
                    .collect();
                log_mean_rows(&per_member)
            })
            .collect()
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
        let upright = self.deskewed(inputs);
        let per_member = self
            .members
            .iter()
            .map(|m| {
                let flat: Vec<f32> = m.view(inputs, &upright).concat();
                let xs = Tensor::from_vec(flat, (inputs.len(), SIDE * SIDE), &Device::Cpu)?;
                m.net.forward(&xs)?.to_vec2::<f32>()
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(log_mean_rows(&per_member)
            .iter()
            .map(|l| softmax(l, self.temperature))
            .collect())
    }
}

impl CnnReader {
    /// The inputs deskewed, once for all members that read them so; empty
    /// when none does.
    fn deskewed(&self, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        match self.members.iter().any(|m| m.deskew) {
            true => inputs.iter().map(|x| deskew(x)).collect(),
            false => Vec::new(),
        }
    }
}

impl Member {
    fn new(tensors: HashMap<String, Tensor>) -> candle_core::Result<Member> {
        let fast = FastNet::new(&tensors)?;
        let arch = fast.arch();
        let deskew = tensors.contains_key(DESKEW_MARK);
        let net = Net::with_arch(
            VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
            arch,
        )?;
        Ok(Member { net, fast, deskew })
    }

    /// The inputs as this member reads them.
    fn view<'a>(&self, inputs: &'a [Vec<f32>], deskewed: &'a [Vec<f32>]) -> &'a [Vec<f32>] {
        match self.deskew {
            true => deskewed,
            false => inputs,
        }
    }
}

/// Row by row, the log mean probability of every member's logits (one
/// matrix of rows per member, all of the same length).
fn log_mean_rows(per_member: &[Vec<Vec<f32>>]) -> Vec<Vec<f32>> {
    let rows = per_member.first().map_or(0, Vec::len);
    (0..rows)
        .map(|i| log_mean(per_member.iter().map(|l| &l[i][..])))
        .collect()
}

/// Log of the mean of the softmax probabilities of several logit rows,
/// computed in log space so that tiny probabilities keep their ratios.
pub fn log_mean<'a>(rows: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let logs: Vec<Vec<f32>> = rows.map(log_softmax).collect();
    let n = logs.len() as f32;
    (0..logs.first().map_or(0, Vec::len))
        .map(|c| {
            let m = logs.iter().map(|l| l[c]).fold(f32::NEG_INFINITY, f32::max);
            if m == f32::NEG_INFINITY {
                return m;
            }
            m + (logs.iter().map(|l| (l[c] - m).exp()).sum::<f32>() / n).ln()
        })
        .collect()
}

fn log_softmax(l: &[f32]) -> Vec<f32> {
    let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let s = l.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
    l.iter().map(|v| v - m - s).collect()
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
        digit_probabilities: (p.len() > 10).then(|| std::array::from_fn(|d| p[d])),
    }
}

/// Confidence for a cell with no ink left after cleaning. Not fitted: no
/// validation digit cell was cleaned to nothing (0 of 2002; the training
/// report counts them), and 0.999 keeps blank cells at or above every
/// template's digit threshold, so fields padded with empty boxes are not
/// held for review on their account.
pub const BLANK_CONFIDENCE: f32 = 0.999;

/// Readings of cells in order, from the probabilities of those that kept
/// ink after cleaning; a cell cleaned to nothing is a certain blank.
pub fn whole_readings(
    kept_ink: impl IntoIterator<Item = bool>,
    probs: impl IntoIterator<Item = Vec<f32>>,
) -> Vec<CellReading> {
    let mut probs = probs.into_iter();
    kept_ink
        .into_iter()
        .map(|ink| match ink {
            true => reading_from(&probs.next().expect("one row per cell with ink")),
            false => certain_blank(),
        })
        .collect()
}

/// A cell that is empty after cleaning needs no model.
fn certain_blank() -> CellReading {
    CellReading::only(None, BLANK_CONFIDENCE)
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
        whole_readings(
            inputs.iter().map(Option::is_some),
            self.probabilities(&present),
        )
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
        // The validation fold, never the evaluation split.
        let val: Vec<_> = mnist::load(&mnist::default_dir(), Split::Validation)
            .expect("mnist (scripts/setup.sh)")
            .into_iter()
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
        let val: Vec<_> = mnist::load(&mnist::default_dir(), Split::Validation)
            .expect("mnist (scripts/setup.sh)")
            .into_iter()
            .step_by(40)
            .collect();
        let mut rng = StdRng::seed_from_u64(5);
        let inputs: Vec<Vec<f32>> = val
            .iter()
            .filter_map(|s| normalise(&render_sample(s, &mut rng)))
            .collect();
        assert!(inputs.len() >= 40);
        let fast = reader.probabilities(&inputs);
        let reference = reader.reference_probabilities(&inputs).expect("candle");
        for (a, b) in fast.iter().zip(&reference) {
            assert_eq!(a.len(), CLASSES);
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-4, "{a:?} vs {b:?}");
            }
        }
    }

    /// Freshly initialised networks of every shape, alone and joined as an
    /// f16 ensemble, agree between the fast path and candle; an ensemble of
    /// one network with itself reads as that network.
    #[test]
    fn the_fast_path_handles_every_arch_and_ensembles() {
        let val: Vec<_> = mnist::load(&mnist::default_dir(), Split::Validation)
            .expect("mnist (scripts/setup.sh)")
            .into_iter()
            .step_by(100)
            .collect();
        let mut rng = StdRng::seed_from_u64(6);
        let inputs: Vec<Vec<f32>> = val
            .iter()
            .filter_map(|s| normalise(&render_sample(s, &mut rng)))
            .collect();
        let fresh = |arch: Arch| -> HashMap<String, Tensor> {
            let varmap = candle_nn::VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
            Net::with_arch(vb, arch).expect("net");
            let tensors = varmap.data().lock().expect("lock").clone();
            tensors
                .into_iter()
                .map(|(k, v)| (k, v.as_tensor().clone()))
                .collect()
        };
        let temperature = |mut t: HashMap<String, Tensor>, v: f32| {
            t.insert(
                "temperature".into(),
                Tensor::new(&[v], &Device::Cpu).unwrap(),
            );
            t
        };
        let agree = |reader: &CnnReader, what: &str| -> Vec<Vec<f32>> {
            let fast = reader.probabilities(&inputs);
            let reference = reader.reference_probabilities(&inputs).expect("candle");
            for (a, b) in fast.iter().zip(&reference) {
                assert_eq!(a.len(), CLASSES);
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() < 1e-4, "{what}: {a:?} vs {b:?}");
                }
            }
            fast
        };
        let plain = Arch {
            third_conv: false,
            hidden: 32,
            ..ARCH
        };
        let small = Arch {
            hidden: 32,
            ..SMALL_ARCH
        };
        let (a, b) = (fresh(plain), fresh(small));
        for (arch, t) in [(plain, &a), (small, &b)] {
            let reader =
                CnnReader::from_tensors(temperature(t.clone(), 1.3), String::new()).expect("load");
            assert_eq!(reader.members[0].fast.arch(), arch);
            agree(&reader, &format!("{arch:?}"));
        }

        let joined = |parts: &[&HashMap<String, Tensor>]| {
            let mut all = HashMap::new();
            for (i, t) in parts.iter().enumerate() {
                for (k, v) in t.iter() {
                    let v = v.to_dtype(DType::F16).unwrap();
                    all.insert(format!("{}{k}", member_prefix(i)), v);
                }
            }
            CnnReader::from_tensors(temperature(all, 1.3), String::new()).expect("ensemble")
        };
        let both = joined(&[&a, &b]);
        assert_eq!(both.members(), 2);
        agree(&both, "ensemble");

        // A member marked as reading deskewed digits is given them, on both
        // paths, beside one that is not.
        let mut upright = b.clone();
        upright.insert(
            DESKEW_MARK.into(),
            Tensor::new(&[1f32], &Device::Cpu).unwrap(),
        );
        let mixed = joined(&[&a, &upright]);
        assert!(!mixed.members[0].deskew && mixed.members[1].deskew);
        let mixed = agree(&mixed, "deskew member");
        let unmarked = agree(&both, "ensemble");
        assert!(mixed
            .iter()
            .flatten()
            .zip(unmarked.iter().flatten())
            .any(|(x, y)| (x - y).abs() > 1e-4));
        let twice = agree(&joined(&[&a, &a]), "twice");
        let once = agree(&joined(&[&a]), "once");
        for (x, y) in twice.iter().flatten().zip(once.iter().flatten()) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    #[test]
    fn the_version_is_the_model_file_hash() {
        let reader = CnnReader::load(&shipped()).expect("models/digits.safetensors");
        let info = reader.describe();
        assert_eq!(info.name, "cnn");
        let bytes = std::fs::read(shipped()).expect("model file");
        assert_eq!(info.version, hex::encode(Sha256::digest(&bytes)));
        assert!(bytes.len() <= 5_000_000, "model is {} bytes", bytes.len());
        assert_eq!(reader.members(), 5);
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
            Err(DigitsError::Model {
                source: ModelError::Tensors(_),
                ..
            })
        ));

        let zeros = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
        let save = |name: &str, tensors: &[(&str, Tensor)]| {
            let path = dir.path().join(name);
            let map: HashMap<String, Tensor> = tensors
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            candle_core::safetensors::save(&map, &path).expect("save");
            CnnReader::load(&path)
        };
        let t = Tensor::new(&[1.0f32], &Device::Cpu).unwrap();
        assert!(matches!(
            save(
                "no-temperature.safetensors",
                &[("c1.weight", zeros(&[16, 1, 3, 3]))]
            ),
            Err(DigitsError::Model {
                source: ModelError::Temperature,
                ..
            })
        ));
        assert!(matches!(
            save(
                "mixed.safetensors",
                &[
                    ("temperature", t.clone()),
                    ("c1.weight", zeros(&[16, 1, 3, 3])),
                    ("m1.c1.weight", zeros(&[16, 1, 3, 3]))
                ]
            ),
            Err(DigitsError::Model {
                source: ModelError::MixedNames,
                ..
            })
        ));
        assert!(matches!(
            save(
                "gap.safetensors",
                &[("temperature", t), ("m1.c1.weight", zeros(&[16, 1, 3, 3]))]
            ),
            Err(DigitsError::Model {
                source: ModelError::Member { member: 0, .. },
                ..
            })
        ));
    }
}
