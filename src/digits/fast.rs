//! Inference for the digit CNN without candle's general convolution.
//!
//! candle runs a 3×3 convolution on a handful of 28×28 images at well under
//! half the speed of the matrix product inside it (copies between layouts,
//! pooling in NCHW), and each tensor operation allocates. Here the same
//! network runs channels-last on plain slices: the first convolution (one
//! input channel) fused with its pooling, skipping paper pixels; the others
//! as im2col matrix products through the `gemm` crate candle itself uses;
//! pooling, bias and ReLU in place; working buffers kept per thread and
//! reused. Same weights, same numbers up to float summation order (tested
//! against [`super::cnn::Net`]).

use super::cnn::Arch;
use super::preprocess::SIDE;
use candle_core::Tensor;
use std::cell::RefCell;
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
    w2: Vec<f32>,
    b2: Vec<f32>,
    /// The optional third convolution (c2 to c2 at S2×S2) as a (9·c2, c2)
    /// matrix, and its bias.
    c3: Option<(Vec<f32>, Vec<f32>)>,
    /// First dense layer as a (S2·S2·c2, hidden) matrix, rows in
    /// channels-last order.
    f1: Vec<f32>,
    f1_bias: Vec<f32>,
    /// Second dense layer as a (hidden, classes) matrix.
    f2: Vec<f32>,
    f2_bias: Vec<f32>,
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
        if ch1 > MAX_C1 {
            return Err(candle_core::Error::Msg(format!(
                "first convolution has {ch1} channels, at most {MAX_C1} supported"
            )));
        }
        let c1 = c1w.reshape((ch1, 9))?; // (c, tap)
        let w1 = c1.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let b1 = get(t, "c1.bias")?.to_vec1::<f32>()?;
        // (c_out, c_in, 3, 3) -> (3, 3, c_in, c_out) -> (9·c_in, c_out)
        let w2 = get(t, "c2.weight")?
            .permute((2, 3, 1, 0))?
            .contiguous()?
            .reshape((9 * ch1, ch2))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let b2 = get(t, "c2.bias")?.to_vec1::<f32>()?;
        let c3 = match t.get("c3.weight") {
            Some(w) => Some((
                w.permute((2, 3, 1, 0))?
                    .contiguous()?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
                get(t, "c3.bias")?.to_vec1::<f32>()?,
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
            .flatten_all()?
            .to_vec1::<f32>()?;
        let f1_bias = get(t, "f1.bias")?.to_vec1::<f32>()?;
        let f2 = get(t, "f2.weight")?
            .t()?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let f2_bias = get(t, "f2.bias")?.to_vec1::<f32>()?;
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
    pub fn logits(&self, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let n = inputs.len();
        if n == 0 {
            return Vec::new();
        }
        let (c1, c2, hidden) = (self.arch.c1, self.arch.c2, self.arch.hidden);
        let classes = self.f2_bias.len();
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch {
                pooled1,
                cols,
                conv,
                features,
                dense,
                out,
            } = &mut *scratch;
            // Convolution 1, pooled: (n, S1, S1, c1) channels-last.
            let pooled1 = sized(pooled1, n * S1 * S1 * c1);
            for (img, dst) in inputs.iter().zip(pooled1.chunks_exact_mut(S1 * S1 * c1)) {
                self.conv1_pool(img, dst);
            }
            // Convolution 2 as im2col × weights, then pooled.
            let rows = n * S1 * S1;
            let cols2 = sized(cols, rows * 9 * c1);
            im2col_batch(pooled1, S1, c1, cols2);
            let conv2 = sized(conv, rows * c2);
            matmul(cols2, &self.w2, conv2, rows, 9 * c1, c2);
            let features = sized(features, n * S2 * S2 * c2);
            for (src, dst) in conv2
                .chunks_exact(S1 * S1 * c2)
                .zip(features.chunks_exact_mut(S2 * S2 * c2))
            {
                pool_bias_relu(src, S1, c2, &self.b2, dst);
            }
            if let Some((w3, b3)) = &self.c3 {
                let rows = n * S2 * S2;
                let cols3 = sized(cols, rows * 9 * c2);
                im2col_batch(features, S2, c2, cols3);
                let conv3 = sized(conv, rows * c2);
                matmul(cols3, w3, conv3, rows, 9 * c2, c2);
                features.copy_from_slice(conv3);
                bias_relu(features, b3);
            }
            let dense = sized(dense, n * hidden);
            matmul(features, &self.f1, dense, n, S2 * S2 * c2, hidden);
            bias_relu(dense, &self.f1_bias);
            let out = sized(out, n * classes);
            matmul(dense, &self.f2, out, n, hidden, classes);
            out.chunks_exact(classes)
                .map(|row| row.iter().zip(&self.f2_bias).map(|(v, b)| v + b).collect())
                .collect()
        })
    }

    /// 3×3 convolution (zero padding) of one input channel, then 2×2
    /// max-pooling, bias and ReLU, into `out` (S1, S1, c1). Each pooled
    /// value is computed from its four convolution outputs directly, so no
    /// full-size map is written; paper pixels (0) cost nothing.
    fn conv1_pool(&self, img: &[f32], out: &mut [f32]) {
        let c1 = self.arch.c1;
        let mut acc = [0.0f32; 4 * MAX_C1];
        let acc = &mut acc[..4 * c1];
        for py in 0..S1 {
            for px in 0..S1 {
                acc.fill(0.0);
                for (q, quad) in acc.chunks_exact_mut(c1).enumerate() {
                    let (oy, ox) = (2 * py + q / 2, 2 * px + q % 2);
                    // Output (ox, oy) takes input (ox + kx - 1, oy + ky - 1)
                    // through tap (ky, kx).
                    for ky in 0..3 {
                        let Some(sy) = (oy + ky).checked_sub(1).filter(|&y| y < SIDE) else {
                            continue;
                        };
                        for kx in 0..3 {
                            let Some(sx) = (ox + kx).checked_sub(1).filter(|&x| x < SIDE) else {
                                continue;
                            };
                            let v = img[sy * SIDE + sx];
                            if v == 0.0 {
                                continue;
                            }
                            let w = &self.w1[(ky * 3 + kx) * c1..(ky * 3 + kx + 1) * c1];
                            for (a, w) in quad.iter_mut().zip(w) {
                                *a += v * w;
                            }
                        }
                    }
                }
                let o = &mut out[(py * S1 + px) * c1..(py * S1 + px + 1) * c1];
                for ch in 0..c1 {
                    let m = acc[ch]
                        .max(acc[c1 + ch])
                        .max(acc[2 * c1 + ch])
                        .max(acc[3 * c1 + ch]);
                    o[ch] = (m + self.b1[ch]).max(0.0);
                }
            }
        }
    }
}

/// The widest first convolution the fused loop keeps on the stack.
const MAX_C1: usize = 64;

/// Working buffers of one thread, reused from call to call: allocating
/// (and zeroing) several megabytes per batch cost more than the arithmetic
/// around it.
#[derive(Default)]
struct Scratch {
    pooled1: Vec<f32>,
    cols: Vec<f32>,
    conv: Vec<f32>,
    features: Vec<f32>,
    dense: Vec<f32>,
    out: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The first `len` values of `buf`, grown if needed. Every caller writes
/// all of them before reading, so stale values never leak through.
fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// `out` (m×n) = `a` (m×k) · `b` (k×n), all row-major and dense.
fn matmul(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(a.len() == m * k && b.len() == k * n && out.len() == m * n);
    // SAFETY: the three slices hold exactly the m×k, k×n and m×n elements
    // the strides below address (checked above), `out` does not alias the
    // inputs (it is borrowed mutably), and with `read_dst` false gemm only
    // writes `out`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Adds `bias` to every row of a row-major matrix, then ReLU.
fn bias_relu(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = (*v + b).max(0.0);
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

/// `im2col` of every image in `src` (side × side × c each, channels-last)
/// into `dst`, one (images · side², 9c) matrix ready for the convolution's
/// matrix product: row `y·side + x` of an image, column `tap·c + channel`.
fn im2col_batch(src: &[f32], side: usize, c: usize, dst: &mut [f32]) {
    let (image, k) = (side * side * c, 9 * c);
    for (s, d) in src
        .chunks_exact(image)
        .zip(dst.chunks_exact_mut(side * side * k))
    {
        im2col(s, side, c, d);
    }
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
                        cell.fill(0.0);
                    }
                }
            }
        }
    }
}
