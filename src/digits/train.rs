//! Training the digit CNN, reproducibly from a seed.
//!
//! Data: the MNIST training split only (`index % 5 != 0`). Within it, fold
//! `index % 5 == 1` is held out as our own validation set: it picks the
//! softmax temperature and the shipped threshold. Folds 2–4 train. Every
//! epoch renders each digit into a fresh, differently degraded box cell,
//! and adds blank cells, so the model learns boxes, not MNIST's clean frame.

use super::cells::{render_cell, Content};
use super::cnn::{Net, BLANK, CLASSES};
use super::mnist::{self, Sample, Split};
use super::preprocess::{normalise, SIDE};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

pub struct TrainOptions {
    pub mnist_dir: PathBuf,
    pub out: PathBuf,
    pub epochs: usize,
    pub seed: u64,
}

pub struct TrainReport {
    pub train_cells: usize,
    pub validation_cells: usize,
    pub validation_accuracy: f32,
    pub temperature: f32,
    /// (threshold, share accepted, error among accepted) on validation.
    pub risk_coverage: Vec<(f32, f32, f32)>,
    pub seconds: f64,
}

impl std::fmt::Display for TrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "trained on {} cells per epoch, validated on {} (MNIST train split, fold index%5==1), {:.0} s",
            self.train_cells, self.validation_cells, self.seconds
        )?;
        writeln!(
            f,
            "validation top-1 accuracy: {:.4}",
            self.validation_accuracy
        )?;
        writeln!(f, "temperature: {:.2}", self.temperature)?;
        writeln!(f, "threshold  accepted  error-among-accepted")?;
        for (t, cov, err) in &self.risk_coverage {
            writeln!(f, "{t:>9.3}  {:>7.2}%  {:>8.3}%", cov * 100.0, err * 100.0)?;
        }
        Ok(())
    }
}

/// Normalised inputs and labels for one pass over `samples`, plus blanks.
/// Deterministic for (seed, pass) whatever the thread count.
pub fn make_cells(samples: &[Sample], seed: u64, pass: u64) -> (Vec<Vec<f32>>, Vec<u32>) {
    let blanks = samples.len() / 8;
    let made: Vec<Option<(Vec<f32>, u32)>> = (0..samples.len() + blanks)
        .into_par_iter()
        .map(|i| {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (pass << 40) ^ (i as u64).wrapping_mul(0x9E37_79B9));
            if i < samples.len() {
                let cell = render_cell(Content::Digit(&samples[i].pixels), &mut rng);
                normalise(&cell).map(|x| (x, samples[i].label as u32))
            } else {
                let cell = render_cell(Content::Blank, &mut rng);
                // Blanks that clean to nothing never reach the model.
                normalise(&cell).map(|x| (x, BLANK as u32))
            }
        })
        .collect();
    made.into_iter().flatten().unzip()
}

fn to_tensor(xs: &[Vec<f32>], dev: &Device) -> candle_core::Result<Tensor> {
    let flat: Vec<f32> = xs.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (xs.len(), SIDE * SIDE), dev)
}

fn logits(net: &Net, xs: &[Vec<f32>], dev: &Device) -> candle_core::Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(xs.len());
    for chunk in xs.chunks(512) {
        out.extend(net.forward(&to_tensor(chunk, dev)?)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

fn softmax(l: &[f32], t: f32) -> Vec<f32> {
    let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = l.iter().map(|v| ((v - m) / t).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Thresholds reported and considered for shipping.
pub const THRESHOLDS: [f32; 9] = [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999];

/// (threshold, coverage, error among accepted) for top-1 predictions.
pub fn risk_coverage(probs: &[Vec<f32>], labels: &[u32]) -> Vec<(f32, f32, f32)> {
    THRESHOLDS
        .iter()
        .map(|&t| {
            let (mut acc, mut wrong) = (0usize, 0usize);
            for (p, &y) in probs.iter().zip(labels) {
                let (best, conf) =
                    p.iter()
                        .enumerate()
                        .fold((0, 0.0f32), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
                if conf >= t {
                    acc += 1;
                    if best as u32 != y {
                        wrong += 1;
                    }
                }
            }
            (
                t,
                acc as f32 / probs.len().max(1) as f32,
                wrong as f32 / acc.max(1) as f32,
            )
        })
        .collect()
}

pub fn train(opts: &TrainOptions) -> anyhow::Result<TrainReport> {
    let started = Instant::now();
    let all = mnist::load(&opts.mnist_dir, Split::Train)?;
    let (val, train): (Vec<Sample>, Vec<Sample>) = all.into_iter().partition(|s| s.index % 5 == 1);
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let net = Net::new(vb)?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 2e-3,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let (val_x, val_y) = make_cells(&val, opts.seed ^ 0x5EED, 0);
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut train_cells = 0;
    for epoch in 0..opts.epochs {
        let (xs, ys) = make_cells(&train, opts.seed, epoch as u64 + 1);
        train_cells = xs.len();
        let mut order: Vec<usize> = (0..xs.len()).collect();
        order.shuffle(&mut rng);
        opt.set_learning_rate(2e-3 * 0.87f64.powi(epoch as i32));
        let mut total = 0.0;
        let mut batches = 0;
        for batch in order.chunks(64) {
            let bx: Vec<Vec<f32>> = batch.iter().map(|&i| xs[i].clone()).collect();
            let by: Vec<u32> = batch.iter().map(|&i| ys[i]).collect();
            let x = to_tensor(&bx, &dev)?;
            let y = Tensor::from_vec(by, batch.len(), &dev)?;
            let loss = candle_nn::loss::cross_entropy(&net.forward(&x)?, &y)?;
            opt.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()?;
            batches += 1;
        }
        let l = logits(&net, &val_x, &dev)?;
        let correct = l
            .iter()
            .zip(&val_y)
            .filter(|(l, &y)| argmax(l) == y as usize)
            .count();
        eprintln!(
            "epoch {}: loss {:.4}, validation accuracy {:.4} ({:.0} s)",
            epoch + 1,
            total / batches as f32,
            correct as f32 / val_y.len() as f32,
            started.elapsed().as_secs_f64()
        );
    }

    // Temperature scaling: the one number that makes confidences honest,
    // fitted on validation cells only.
    let l = logits(&net, &val_x, &dev)?;
    let nll = |t: f32| -> f32 {
        l.iter()
            .zip(&val_y)
            .map(|(l, &y)| -(softmax(l, t)[y as usize].max(1e-12)).ln())
            .sum::<f32>()
    };
    let temperature = (10..=60)
        .map(|i| i as f32 * 0.05)
        .min_by(|&a, &b| nll(a).total_cmp(&nll(b)))
        .unwrap_or(1.0);
    let probs: Vec<Vec<f32>> = l.iter().map(|l| softmax(l, temperature)).collect();
    let accuracy = probs
        .iter()
        .zip(&val_y)
        .filter(|(p, &y)| argmax(p) == y as usize)
        .count() as f32
        / val_y.len() as f32;

    let mut tensors: std::collections::HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    tensors.insert("temperature".into(), Tensor::new(&[temperature], &dev)?);
    if let Some(dir) = opts.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    candle_core::safetensors::save(&tensors, &opts.out)?;
    debug_assert_eq!(CLASSES, 11);
    Ok(TrainReport {
        train_cells,
        validation_cells: val_y.len(),
        validation_accuracy: accuracy,
        temperature,
        risk_coverage: risk_coverage(&probs, &val_y),
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}
