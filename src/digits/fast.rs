//! Inference for the digit CNN without candle's general convolution.
//!
//! candle runs a 3×3 convolution on a handful of 28×28 images at well under
//! half the speed of the matrix product inside it (copies between layouts,
//! pooling in NCHW). Here the same network runs channels-last: the first
//! convolution (one input channel) as a plain loop that skips paper pixels,
//! the second as one im2col matrix product, pooling and ReLU in place, and the
//! dense layers as matrix products. Same weights, same numbers up to float
//! summation order (tested against [`super::cnn::Net`]).

use super::cnn::Arch;
use super::preprocess::SIDE;
use candle_core::{Device, Tensor};
use std::collections::HashMap;

/// Side after the first and the second 2×2 pooling.
const S1: usize = SIDE / 2;
const S2: usize = SIDE / 4;

pub struct FastNet {
    arch: Arch,
    /// First convolution, tap-major: `w1[tap * c1 + c]`, c1 the first convolution's channels.
    w1: Vec<f32>,
    b1: Vec<f32>,
    /// Second convolution as a (9·c1, c2) matrix, row `tap * c1 + c_in`.
    w2: Tensor,
    b2: Vec<f32>,
    /// The optional third convolution (c2 to c2 at S2×S2) as a (9·c2, c2)
    /// matrix, and its bias.
    c3: Option<(Tensor, Tensor)>,
    /// First dense layer as a (S2·S2·c2, hidden) matrix, rows in
    /// channels-last order.
    f1: Tensor,
    f1_bias: Tensor,
    /// Second dense layer as a (hidden, classes) matrix.
    f2: Tensor,
    f2_bias: Tensor,
}

fn get<'a>(t: &'a HashMap<String, Tensor>, name: &str) -> candle_core::Result<&'a Tensor> {
    t.get(name)
        .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}")))
}

impl FastNet {
    /// From the tensors of a model file (candle's NCHW layout).
    pub fn new(t: &HashMap<String, Tensor>) -> candle_core::Result<FastNet> {
        let c1w = get(t, "c1.weight")?;
        let (ch1, ch2) = (c1w.dim(0)?, get(t, "c2.weight")?.dim(0)?);
        let c1 = c1w.reshape((ch1, 9))?; // (c, tap)
        let w1 = c1.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let b1 = get(t, "c1.bias")?.to_vec1::<f32>()?;
        // (c_out, c_in, 3, 3) -> (3, 3, c_in, c_out) -> (9·c_in, c_out)
        let w2 = get(t, "c2.weight")?
            .permute((2, 3, 1, 0))?
            .contiguous()?
            .reshape((9 * ch1, ch2))?;
        let b2 = get(t, "c2.bias")?.to_vec1::<f32>()?;
        let c3 = match t.get("c3.weight") {
            Some(w) => Some((
                w.permute((2, 3, 1, 0))?
                    .contiguous()?
                    .reshape((9 * ch2, ch2))?,
                get(t, "c3.bias")?.clone(),
            )),
            None => None,
        };
        // f1.weight is (hidden, c2·S2·S2) over NCHW features (c, y, x);
        // reorder its columns to channels-last (y, x, c) and transpose.
        let f1w = get(t, "f1.weight")?;
        let hidden = f1w.dim(0)?;
        let f1 = f1w
            .reshape((hidden, ch2, S2 * S2))?
            .permute((2, 1, 0))?
            .contiguous()?
            .reshape((S2 * S2 * ch2, hidden))?;
        let f1_bias = get(t, "f1.bias")?.clone();
        let f2 = get(t, "f2.weight")?.t()?.contiguous()?;
        let f2_bias = get(t, "f2.bias")?.clone();
        Ok(FastNet {
            arch: Arch {
                c1: ch1,
                c2: ch2,
                third_conv: c3.is_some(),
                hidden,
            },
            w1,
            b1,
            w2,
            b2,
            c3,
            f1,
            f1_bias,
            f2,
            f2_bias,
        })
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Logits for normalised 28×28 inputs, one row per input.
    pub fn logits(&self, inputs: &[Vec<f32>]) -> candle_core::Result<Vec<Vec<f32>>> {
        let n = inputs.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let (c1, c2) = (self.arch.c1, self.arch.c2);
        // Convolution 1, pooled: (n, S1, S1, c1) channels-last.
        let mut pooled1 = vec![0.0f32; n * S1 * S1 * c1];
        let mut conv = vec![0.0f32; SIDE * SIDE * c1];
        for (img, out) in inputs.iter().zip(pooled1.chunks_exact_mut(S1 * S1 * c1)) {
            self.conv1(img, &mut conv);
            pool_bias_relu(&conv, SIDE, c1, &self.b1, out);
        }
        // Convolution 2 as im2col × weights.
        let conv2 = im2col_batch(&pooled1, S1, c1)?
            .matmul(&self.w2)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut features = vec![0.0f32; n * S2 * S2 * c2];
        for (src, dst) in conv2
            .chunks_exact(S1 * S1 * c2)
            .zip(features.chunks_exact_mut(S2 * S2 * c2))
        {
            pool_bias_relu(src, S1, c2, &self.b2, dst);
        }
        let features = match &self.c3 {
            Some((w3, b3)) => im2col_batch(&features, S2, c2)?
                .matmul(w3)?
                .broadcast_add(b3)?
                .relu()?
                .reshape((n, S2 * S2 * c2))?,
            None => Tensor::from_vec(features, (n, S2 * S2 * c2), &Device::Cpu)?,
        };
        let hidden = features
            .matmul(&self.f1)?
            .broadcast_add(&self.f1_bias)?
            .relu()?;
        hidden
            .matmul(&self.f2)?
            .broadcast_add(&self.f2_bias)?
            .to_vec2::<f32>()
    }

    /// 3×3 convolution with zero padding of one input channel into `out`
    /// (SIDE, SIDE, c1), bias not added. Paper pixels (0) cost nothing.
    fn conv1(&self, img: &[f32], out: &mut [f32]) {
        let c1 = self.arch.c1;
        out.iter_mut().for_each(|v| *v = 0.0);
        for sy in 0..SIDE {
            for sx in 0..SIDE {
                let v = img[sy * SIDE + sx];
                if v == 0.0 {
                    continue;
                }
                // Input pixel (sx, sy) feeds output (sx - kx + 1, sy - ky + 1)
                // through tap (ky, kx).
                for ky in 0..3 {
                    let oy = sy as isize - ky as isize + 1;
                    if !(0..SIDE as isize).contains(&oy) {
                        continue;
                    }
                    for kx in 0..3 {
                        let ox = sx as isize - kx as isize + 1;
                        if !(0..SIDE as isize).contains(&ox) {
                            continue;
                        }
                        let o = (oy as usize * SIDE + ox as usize) * c1;
                        let w = &self.w1[(ky * 3 + kx) * c1..(ky * 3 + kx + 1) * c1];
                        for (acc, w) in out[o..o + c1].iter_mut().zip(w) {
                            *acc += v * w;
                        }
                    }
                }
            }
        }
    }
}

/// 2×2 max-pooling of a (side, side, c) channels-last map, then bias and
/// ReLU (both commute with the max).
fn pool_bias_relu(src: &[f32], side: usize, c: usize, bias: &[f32], dst: &mut [f32]) {
    let half = side / 2;
    for y in 0..half {
        for x in 0..half {
            let o = (y * half + x) * c;
            let at = |dy: usize, dx: usize| ((2 * y + dy) * side + 2 * x + dx) * c;
            let (a, b, cc, d) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
            for ch in 0..c {
                let m = src[a + ch]
                    .max(src[b + ch])
                    .max(src[cc + ch])
                    .max(src[d + ch]);
                dst[o + ch] = (m + bias[ch]).max(0.0);
            }
        }
    }
}

/// Rows of 3×3 patches (zero padded) of a (side, side, c) map: row
/// `y·side + x`, column `tap·c + channel`.
/// `im2col` of every image in `src` (side × side × c each, channels-last)
/// as one (images · side², 9c) matrix, ready for the convolution's matmul.
fn im2col_batch(src: &[f32], side: usize, c: usize) -> candle_core::Result<Tensor> {
    let (image, k) = (side * side * c, 9 * c);
    let n = src.len() / image;
    let mut cols = vec![0.0f32; n * side * side * k];
    for (s, d) in src
        .chunks_exact(image)
        .zip(cols.chunks_exact_mut(side * side * k))
    {
        im2col(s, side, c, d);
    }
    Tensor::from_vec(cols, (n * side * side, k), &Device::Cpu)
}

fn im2col(src: &[f32], side: usize, c: usize, dst: &mut [f32]) {
    let k = 9 * c;
    for y in 0..side {
        for x in 0..side {
            let row = &mut dst[(y * side + x) * k..(y * side + x + 1) * k];
            for ky in 0..3 {
                for kx in 0..3 {
                    let tap = ky * 3 + kx;
                    let (sy, sx) = (y as isize + ky as isize - 1, x as isize + kx as isize - 1);
                    let cell = &mut row[tap * c..(tap + 1) * c];
                    if (0..side as isize).contains(&sy) && (0..side as isize).contains(&sx) {
                        let s = (sy as usize * side + sx as usize) * c;
                        cell.copy_from_slice(&src[s..s + c]);
                    } else {
                        cell.iter_mut().for_each(|v| *v = 0.0);
                    }
                }
            }
        }
    }
}
