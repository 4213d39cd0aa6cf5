//! Resumable training: AdamW whose moments can be saved, and the
//! checkpoint a member writes after every epoch.
//!
//! A member trains for tens of minutes on the 2-core machine and a
//! session can end under it; rerunning the same command continues from
//! the last finished epoch with the same weights, moments, best snapshot
//! and log, so the result is the one an uninterrupted run gives. candle's
//! own AdamW keeps its moments private, hence the optimiser here (the
//! same update rule: decoupled weight decay, bias-corrected moments).

use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a checkpoint holds besides tensors; a resumed run must have been
/// started with the same settings, or its epochs would mean something else.
#[derive(Debug, Clone, PartialEq)]
pub struct RunKey {
    pub seed: u64,
    pub epochs: usize,
    /// `c1, c2, third_conv, hidden`, and 1 when trained on deskewed digits.
    pub shape: [usize; 5],
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "checkpoint {path} was written by another run ({found:?}, this run is {wanted:?}); \
         delete it to start this run afresh"
    )]
    OtherRun {
        path: PathBuf,
        found: Box<RunKey>,
        wanted: Box<RunKey>,
    },
    #[error("checkpoint {path} lacks tensor {name}; delete it to start afresh")]
    Missing { path: PathBuf, name: String },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// AdamW with decoupled weight decay, as `candle_nn::AdamW`.
pub struct AdamW {
    vars: Vec<(String, Var)>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    step: usize,
    pub lr: f64,
    weight_decay: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    /// `vars` in a fixed order (sorted by name) so saved moments line up.
    pub fn new(
        mut vars: Vec<(String, Var)>,
        lr: f64,
        weight_decay: f64,
    ) -> candle_core::Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |v: &Var| Tensor::zeros(v.shape(), v.dtype(), v.device());
        let first = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<Result<_, _>>()?;
        let second = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<Result<_, _>>()?;
        Ok(AdamW {
            vars,
            first,
            second,
            step: 0,
            lr,
            weight_decay,
        })
    }

    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.apply(&grads)
    }

    fn apply(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let scale_m = 1.0 / (1.0 - BETA1.powi(t));
        let scale_v = 1.0 / (1.0 - BETA2.powi(t));
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            let m = ((&self.first[i] * BETA1)? + (g * (1.0 - BETA1))?)?;
            let v = ((&self.second[i] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let update = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + EPS)?)?;
            let decayed = (var.as_tensor() * (1.0 - self.lr * self.weight_decay))?;
            var.set(&(decayed - (update * self.lr)?)?)?;
            // Detached: a moment that kept its history would hold every
            // step's graph alive (memory grew to 14 GB within an epoch).
            self.first[i] = m.detach();
            self.second[i] = v.detach();
        }
        Ok(())
    }
}

/// Where a member's training stands after some epochs.
pub struct Progress {
    pub epochs_done: usize,
    pub best_accuracy: f32,
    pub best_epoch: usize,
    pub best: HashMap<String, Tensor>,
    pub log: Vec<String>,
}

/// The checkpoint beside a member's output file.
pub fn path_for(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoint");
    out.with_file_name(name)
}

/// Writes weights, moments, step, best snapshot and log, replacing the
/// previous checkpoint only once the new one is whole.
pub fn save(
    path: &Path,
    key: &RunKey,
    opt: &AdamW,
    progress: &Progress,
) -> Result<(), CheckpointError> {
    let dev = Device::Cpu;
    let mut t: HashMap<String, Tensor> = HashMap::new();
    for (i, (name, var)) in opt.vars.iter().enumerate() {
        t.insert(format!("w.{name}"), var.as_tensor().copy()?);
        t.insert(format!("m.{name}"), opt.first[i].copy()?);
        t.insert(format!("v.{name}"), opt.second[i].copy()?);
    }
    for (name, tensor) in &progress.best {
        t.insert(format!("best.{name}"), tensor.copy()?);
    }
    let key_values = [
        key.seed,
        key.epochs as u64,
        key.shape[0] as u64,
        key.shape[1] as u64,
        key.shape[2] as u64,
        key.shape[3] as u64,
        key.shape[4] as u64,
        progress.epochs_done as u64,
        opt.step as u64,
        progress.best_epoch as u64,
    ];
    // u32 pairs: safetensors through candle has no u64 on every path.
    let words: Vec<u32> = key_values
        .iter()
        .flat_map(|v| [(*v >> 32) as u32, *v as u32])
        .collect();
    t.insert("meta.words".into(), Tensor::new(words.as_slice(), &dev)?);
    t.insert(
        "meta.best_accuracy".into(),
        Tensor::new(&[progress.best_accuracy], &dev)?,
    );
    let log = progress.log.join("\n").into_bytes();
    t.insert("meta.log".into(), Tensor::new(log.as_slice(), &dev)?);
    let tmp = path.with_extension("partial");
    candle_core::safetensors::save(&t, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Loads a checkpoint into `opt` (weights and moments) when one exists
/// for this run; `Ok(None)` when there is none.
pub fn resume(
    path: &Path,
    key: &RunKey,
    opt: &mut AdamW,
) -> Result<Option<Progress>, CheckpointError> {
    if !path.exists() {
        return Ok(None);
    }
    let t = candle_core::safetensors::load(path, &Device::Cpu)?;
    let get = |name: &str| {
        t.get(name).ok_or_else(|| CheckpointError::Missing {
            path: path.to_owned(),
            name: name.to_owned(),
        })
    };
    let words: Vec<u32> = get("meta.words")?.to_vec1()?;
    let values: Vec<u64> = words
        .chunks(2)
        .map(|w| ((w[0] as u64) << 32) | w[1] as u64)
        .collect();
    if values.len() != 10 {
        return Err(CheckpointError::Missing {
            path: path.to_owned(),
            name: "meta.words".into(),
        });
    }
    let found = RunKey {
        seed: values[0],
        epochs: values[1] as usize,
        shape: [
            values[2] as usize,
            values[3] as usize,
            values[4] as usize,
            values[5] as usize,
            values[6] as usize,
        ],
    };
    if &found != key {
        return Err(CheckpointError::OtherRun {
            path: path.to_owned(),
            found: Box::new(found),
            wanted: Box::new(key.clone()),
        });
    }
    for i in 0..opt.vars.len() {
        let name = opt.vars[i].0.clone();
        opt.vars[i].1.set(get(&format!("w.{name}"))?)?;
        opt.first[i] = get(&format!("m.{name}"))?.clone();
        opt.second[i] = get(&format!("v.{name}"))?.clone();
    }
    opt.step = values[8] as usize;
    let best = t
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("best.")?.to_owned(), v.clone())))
        .collect();
    let log: Vec<u8> = get("meta.log")?.to_dtype(DType::U8)?.to_vec1()?;
    let log = String::from_utf8_lossy(&log);
    Ok(Some(Progress {
        epochs_done: values[7] as usize,
        best_accuracy: get("meta.best_accuracy")?.to_vec1::<f32>()?[0],
        best_epoch: values[9] as usize,
        best,
        log: log.lines().map(str::to_owned).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quadratic_run(opt: &mut AdamW, x: &Var, steps: usize) {
        for _ in 0..steps {
            let loss = (x.as_tensor() - 3.0)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            opt.backward_step(&loss).unwrap();
        }
    }

    #[test]
    fn a_resumed_run_ends_where_an_unbroken_one_does() {
        let dir = tempfile::tempdir().unwrap();
        let key = RunKey {
            seed: 5,
            epochs: 4,
            shape: [1, 2, 1, 3, 0],
        };
        let start = Tensor::new(&[0.5f32, -1.0], &Device::Cpu).unwrap();

        let x = Var::from_tensor(&start).unwrap();
        let mut whole = AdamW::new(vec![("x".into(), x.clone())], 0.1, 1e-4).unwrap();
        quadratic_run(&mut whole, &x, 20);
        let unbroken: Vec<f32> = x.as_tensor().to_vec1().unwrap();

        let y = Var::from_tensor(&start).unwrap();
        let mut first = AdamW::new(vec![("x".into(), y.clone())], 0.1, 1e-4).unwrap();
        quadratic_run(&mut first, &y, 10);
        let path = dir.path().join("m.safetensors.checkpoint");
        let progress = Progress {
            epochs_done: 2,
            best_accuracy: 0.5,
            best_epoch: 2,
            best: HashMap::from([("x".to_owned(), y.as_tensor().copy().unwrap())]),
            log: vec!["epoch 1".into(), "epoch 2".into()],
        };
        save(&path, &key, &first, &progress).unwrap();

        // A fresh process: new variable at the start values, new optimiser.
        let z = Var::from_tensor(&start).unwrap();
        let mut second = AdamW::new(vec![("x".into(), z.clone())], 0.1, 1e-4).unwrap();
        let back = resume(&path, &key, &mut second).unwrap().unwrap();
        assert_eq!(back.epochs_done, 2);
        assert_eq!(back.best_epoch, 2);
        assert_eq!(back.log, progress.log);
        assert!(back.best.contains_key("x"));
        quadratic_run(&mut second, &z, 10);
        assert_eq!(z.as_tensor().to_vec1::<f32>().unwrap(), unbroken);

        // Another run's checkpoint is refused, not silently continued.
        let other = RunKey { seed: 6, ..key };
        let w = Var::from_tensor(&start).unwrap();
        let mut third = AdamW::new(vec![("x".into(), w)], 0.1, 1e-4).unwrap();
        assert!(matches!(
            resume(&path, &other, &mut third),
            Err(CheckpointError::OtherRun { .. })
        ));
    }
}
