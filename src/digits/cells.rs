//! Box cells made from MNIST digits, degraded the way a scanned form box is:
//! for training, validation and the benchmark. The crop mimics the read
//! stage's (a 0.6 mm margin around a 5.5×7.5 mm box) at 200–400 dpi.

use super::mnist::Sample;
use image::{GrayImage, Luma};
use rand::Rng;

/// Share of 1s and 7s drawn the Japanese way (flagged 1, crossed 7): common
/// on Japanese forms, rare in MNIST.
pub const HABIT_RATE: f64 = 0.3;

/// One MNIST sample drawn into a degraded box cell, sometimes rewritten in
/// a Japanese hand first.
pub fn render_sample(s: &Sample, rng: &mut impl Rng) -> GrayImage {
    if matches!(s.label, 1 | 7) && rng.gen_bool(HABIT_RATE) {
        let px = japanese_habit(&s.pixels, s.label, rng);
        render_cell(Content::Digit(&px), rng)
    } else {
        render_cell(Content::Digit(&s.pixels), rng)
    }
}

/// Adds the stroke a Japanese writer would: a flag at the top of a 1; a
/// crossbar through the stem of a 7, or a hook down from the left end of its
/// bar. Other digits come back unchanged: MNIST's 4s are mostly written
/// open at the top already, as Japanese writers do.
pub fn japanese_habit(pixels: &[f32], label: u8, rng: &mut impl Rng) -> Vec<f32> {
    let mut out = pixels.to_vec();
    let rows: Vec<usize> = (0..28)
        .filter(|&y| (0..28).any(|x| pixels[y * 28 + x] > 0.5))
        .collect();
    let (Some(&top), Some(&bottom)) = (rows.first(), rows.last()) else {
        return out;
    };
    let mid_x = |y: usize| {
        let xs: Vec<usize> = (0..28).filter(|&x| pixels[y * 28 + x] > 0.5).collect();
        xs.iter().sum::<usize>() as f32 / xs.len().max(1) as f32 + 0.5
    };
    let radius: f32 = rng.gen_range(0.9..1.5);
    let (a, b) = match label {
        1 => {
            let start = (mid_x(top), top as f32 + 0.5);
            let len: f32 = rng.gen_range(4.0..7.0);
            let angle: f32 = rng.gen_range(0.4..1.1);
            (
                start,
                (start.0 - len * angle.cos(), start.1 + len * angle.sin()),
            )
        }
        7 if rng.gen_bool(0.4) => {
            // The hooked 7: a short tick down from the left end of the top
            // bar, as many Japanese writers begin the stroke.
            let band = top..(top + 3).min(28);
            let left = band
                .clone()
                .flat_map(|y| (0..28).filter(move |&x| pixels[y * 28 + x] > 0.5))
                .min()
                .unwrap_or(10);
            let bar_y = band
                .clone()
                .find(|&y| pixels[y * 28 + left] > 0.5)
                .unwrap_or(top);
            let start = (left as f32 + 0.5 + radius * 0.5, bar_y as f32 + 0.5);
            let len: f32 = rng.gen_range(3.0..6.0);
            let lean: f32 = rng.gen_range(-1.0..1.5);
            (start, (start.0 + lean, start.1 + len))
        }
        7 => {
            // The stem, not the top bar: a little below the middle height.
            let y = top + (bottom - top) * rng.gen_range(50..65) / 100;
            let x = mid_x(y);
            let half: f32 = rng.gen_range(3.5..6.0);
            let tilt: f32 = rng.gen_range(-1.0..1.0);
            let y = y as f32 + 0.5;
            ((x - half, y + tilt), (x + half, y - tilt))
        }
        _ => return out,
    };
    for y in 0..28 {
        for x in 0..28 {
            let d = segment_distance((x as f32 + 0.5, y as f32 + 0.5), a, b);
            let v = (radius + 0.5 - d).clamp(0.0, 1.0);
            let i = y * 28 + x;
            out[i] = out[i].max(v);
        }
    }
    out
}

/// Elastic distortion (Simard et al. 2003) of 28×28 MNIST pixels: every
/// pixel is displaced by a random field smoothed with a Gaussian of `sigma`
/// pixels and scaled by `alpha`, so strokes bend the way another hand would
/// have drawn them. Training only: validation and the benchmark draw the
/// digits as they are.
pub fn elastic(pixels: &[f32], alpha: f32, sigma: f32, rng: &mut impl Rng) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i32;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f32 = kernel.iter().sum();
    let smooth = |field: Vec<f32>| -> Vec<f32> {
        let pass = |f: &[f32], horizontal: bool| -> Vec<f32> {
            (0..784usize)
                .map(|i| {
                    let (x, y) = ((i % 28) as i32, (i / 28) as i32);
                    kernel
                        .iter()
                        .enumerate()
                        .map(|(k, w)| {
                            let d = k as i32 - radius;
                            let (xx, yy) = if horizontal { (x + d, y) } else { (x, y + d) };
                            let (xx, yy) = (xx.clamp(0, 27), yy.clamp(0, 27));
                            w * f[(yy * 28 + xx) as usize]
                        })
                        .sum::<f32>()
                        / norm
                })
                .collect()
        };
        pass(&pass(&field, true), false)
    };
    let mut field = || smooth((0..784).map(|_| rng.gen_range(-1.0f32..1.0)).collect());
    let (dx, dy) = (field(), field());
    // A smoothed uniform field has a small spread; rescale it to unit
    // standard deviation so `alpha` reads in pixels.
    let spread = |f: &[f32]| {
        (f.iter().map(|v| v * v).sum::<f32>() / 784.0)
            .sqrt()
            .max(1e-6)
    };
    let (sx, sy) = (alpha / spread(&dx), alpha / spread(&dy));
    (0..784)
        .map(|i| {
            let (x, y) = ((i % 28) as f32 + 0.5, (i / 28) as f32 + 0.5);
            sample(pixels, x + dx[i] * sx, y + dy[i] * sy)
        })
        .collect()
}

fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = (dx * dx + dy * dy).max(1e-6);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0);
    let (cx, cy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (cx * cx + cy * cy).sqrt()
}

/// What to draw inside the box.
pub enum Content<'a> {
    /// 28×28 MNIST pixels, 0 paper .. 1 ink.
    Digit(&'a [f32]),
    Blank,
}

/// Draws one cell. Pure given the random source.
pub fn render_cell(content: Content<'_>, rng: &mut impl Rng) -> GrayImage {
    let px_per_mm: f32 = rng.gen_range(200.0..400.0) / 25.4;
    let (box_w, box_h, margin) = (5.5 * px_per_mm, 7.5 * px_per_mm, 0.6 * px_per_mm);
    let (w, h) = (
        (box_w + 2.0 * margin).round() as u32,
        (box_h + 2.0 * margin).round() as u32,
    );
    let paper: f32 = rng.gen_range(200.0..250.0);
    let mut ink = vec![0.0f32; (w * h) as usize];

    // Printed border: sometimes the crop catches it fully, sometimes only
    // in part (misregistration), sometimes hardly at all.
    let line = (0.3 * px_per_mm).max(1.0);
    let shift_x: f32 = rng.gen_range(-0.4..0.4) * px_per_mm;
    let shift_y: f32 = rng.gen_range(-0.4..0.4) * px_per_mm;
    let border_level: f32 = rng.gen_range(0.5..1.0);
    let bx0 = margin + shift_x;
    let by0 = margin + shift_y;
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f32 + 0.5, y as f32 + 0.5);
            let inside_x = xf >= bx0 - line / 2.0 && xf <= bx0 + box_w + line / 2.0;
            let inside_y = yf >= by0 - line / 2.0 && yf <= by0 + box_h + line / 2.0;
            let on_v = ((xf - bx0).abs() < line / 2.0 || (xf - bx0 - box_w).abs() < line / 2.0)
                && inside_y;
            let on_h = ((yf - by0).abs() < line / 2.0 || (yf - by0 - box_h).abs() < line / 2.0)
                && inside_x;
            if on_v || on_h {
                ink[(y * w + x) as usize] = border_level;
            }
        }
    }

    if let Content::Digit(pixels) = content {
        // Writers fill 50–88% of the box height, off-centre, sometimes over
        // the edge; slant, rotation and pen weight vary.
        // One cell in ten is written big and off-centre enough for strokes
        // to touch or cross the printed border.
        let bold = rng.gen_bool(0.1);
        let (size_max, off) = if bold { (1.05, 0.18) } else { (0.88, 0.1) };
        let size = box_h * rng.gen_range(0.5..size_max);
        let cx = bx0 + box_w / 2.0 + rng.gen_range(-off..off) * box_w;
        let cy = by0 + box_h / 2.0 + rng.gen_range(-0.8 * off..0.8 * off) * box_h;
        let angle: f32 = rng.gen_range(-0.15..0.15);
        let shear: f32 = rng.gen_range(-0.2..0.2);
        let aspect: f32 = rng.gen_range(0.8..1.2);
        let weight: f32 = rng.gen_range(-0.15..0.3);
        let pen: f32 = rng.gen_range(0.6..1.0);
        let (sin, cos) = angle.sin_cos();
        let scale = size / 28.0;
        let mut stroke = vec![0.0f32; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                // Map cell pixel back into MNIST coordinates.
                let dx = (x as f32 + 0.5 - cx) / scale;
                let dy = (y as f32 + 0.5 - cy) / scale;
                let rx = cos * dx + sin * dy;
                let ry = -sin * dx + cos * dy;
                let mx = (rx - shear * ry) / aspect + 14.0;
                let my = ry + 14.0;
                let v = sample(pixels, mx, my);
                let v = ((v + weight) / (1.0 + weight.max(0.0))).clamp(0.0, 1.0) * pen;
                stroke[(y * w + x) as usize] = v;
            }
        }
        // The pen itself, at scan resolution: a felt pen or a worn ballpoint
        // changes stroke width by a pixel or so whatever the digit's size.
        let stroke = match rng.gen_range(0..10) {
            0 | 1 => thicken(&stroke, w as usize, h as usize),
            2 => thin(&stroke, w as usize, h as usize),
            _ => stroke,
        };
        for (i, v) in ink.iter_mut().zip(stroke) {
            *i = i.max(v);
        }
    }

    // Dust and toner specks.
    for _ in 0..rng.gen_range(0..4) {
        let (x, y) = (rng.gen_range(0..w), rng.gen_range(0..h));
        let r = rng.gen_range(0..2);
        for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
            for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                ink[(yy * w + xx) as usize] = rng.gen_range(0.3..0.9);
            }
        }
    }

    // Scanner optics and JPEG compression soften edges; twice for the
    // softest office scanners.
    for _ in 0..rng.gen_range(0..5) / 2 {
        ink = soften(&ink, w as usize, h as usize);
    }
    let noise: f32 = rng.gen_range(0.0..12.0);
    GrayImage::from_fn(w, h, |x, y| {
        let v = ink[(y * w + x) as usize];
        let g = paper * (1.0 - v) + 15.0 * v + rng.gen_range(-noise..=noise);
        Luma([g.clamp(0.0, 255.0) as u8])
    })
}

/// The four-neighbourhood of pixel `i` that lies inside the image.
fn neighbours(i: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (i % w, i / w);
    [
        (x > 0).then(|| i - 1),
        (x + 1 < w).then(|| i + 1),
        (y > 0).then(|| i - w),
        (y + 1 < h).then(|| i + w),
    ]
    .into_iter()
    .flatten()
}

/// A cross-shaped blur, centre weighted 4:1.
fn soften(ink: &[f32], w: usize, h: usize) -> Vec<f32> {
    (0..ink.len())
        .map(|i| {
            let (acc, n) =
                neighbours(i, w, h).fold((4.0 * ink[i], 4.0), |(a, n), j| (a + ink[j], n + 1.0));
            acc / n
        })
        .collect()
}

/// Grey dilation by one pixel.
fn thicken(ink: &[f32], w: usize, h: usize) -> Vec<f32> {
    (0..ink.len())
        .map(|i| neighbours(i, w, h).fold(ink[i], |m, j| m.max(ink[j])))
        .collect()
}

/// Half an erosion: edges fade to half strength, so a two-pixel stroke
/// gets fainter rather than vanishing.
fn thin(ink: &[f32], w: usize, h: usize) -> Vec<f32> {
    (0..ink.len())
        .map(|i| {
            let m = neighbours(i, w, h).fold(ink[i], |m, j| m.min(ink[j]));
            0.5 * (ink[i] + m)
        })
        .collect()
}

fn sample(p: &[f32], x: f32, y: f32) -> f32 {
    let (x, y) = (x - 0.5, y - 0.5);
    if x < -1.0 || y < -1.0 || x >= 28.0 || y >= 28.0 {
        return 0.0;
    }
    let (x0, y0) = (x.floor() as i32, y.floor() as i32);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |xx: i32, yy: i32| {
        if (0..28).contains(&xx) && (0..28).contains(&yy) {
            p[(yy * 28 + xx) as usize]
        } else {
            0.0
        }
    };
    at(x0, y0) * (1.0 - fx) * (1.0 - fy)
        + at(x0 + 1, y0) * fx * (1.0 - fy)
        + at(x0, y0 + 1) * (1.0 - fx) * fy
        + at(x0 + 1, y0 + 1) * fx * fy
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// A plain vertical 1 in MNIST coordinates.
    fn one() -> Vec<f32> {
        let mut p = vec![0.0; 784];
        for y in 4..24 {
            for x in 13..15 {
                p[y * 28 + x] = 1.0;
            }
        }
        p
    }

    #[test]
    fn a_flagged_one_gains_ink_left_of_its_top_only() {
        let mut rng = StdRng::seed_from_u64(3);
        let flagged = japanese_habit(&one(), 1, &mut rng);
        let ink = |p: &[f32], ys: std::ops::Range<usize>, xs: std::ops::Range<usize>| {
            ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
                .map(|(x, y)| p[y * 28 + x])
                .sum::<f32>()
        };
        assert!(ink(&flagged, 4..12, 6..13) > 3.0);
        assert_eq!(ink(&flagged, 16..28, 0..28), ink(&one(), 16..28, 0..28));
        // Other digits are untouched.
        assert_eq!(japanese_habit(&one(), 3, &mut rng), one());
    }

    /// A 7: bar on rows 5–6, diagonal stem down to the bottom left.
    fn seven() -> Vec<f32> {
        let mut p = vec![0.0; 784];
        for x in 8..22 {
            p[5 * 28 + x] = 1.0;
            p[6 * 28 + x] = 1.0;
        }
        for y in 7..24 {
            let x = 21 - (y - 7) / 2;
            p[y * 28 + x] = 1.0;
            p[y * 28 + x - 1] = 1.0;
        }
        p
    }

    #[test]
    fn sevens_get_either_a_hook_or_a_crossbar() {
        let ink = |p: &[f32], ys: std::ops::Range<usize>, xs: std::ops::Range<usize>| {
            ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
                .map(|(x, y)| p[y * 28 + x])
                .sum::<f32>()
        };
        let (mut hooks, mut bars) = (0, 0);
        for seed in 0..20 {
            let p = japanese_habit(&seven(), 7, &mut StdRng::seed_from_u64(seed));
            // Hook: below the bar's left end. Crossbar: across the lower
            // stem. Either adds ink where a plain 7 has none.
            let added = |ys: std::ops::Range<usize>, xs: std::ops::Range<usize>| {
                ink(&p, ys.clone(), xs.clone()) - ink(&seven(), ys, xs)
            };
            let hook = added(7..12, 3..13) > 2.0;
            let bar = added(12..22, 0..28) > 3.0;
            assert!(hook != bar, "seed {seed}: hook {hook}, bar {bar}");
            hooks += hook as usize;
            bars += bar as usize;
        }
        assert!(hooks >= 3 && bars >= 3, "{hooks} hooks, {bars} crossbars");
    }

    #[test]
    fn pen_width_changes_by_a_pixel() {
        let (w, h) = (12, 10);
        let mut stroke = vec![0.0; w * h];
        for y in 0..h {
            stroke[y * w + 5] = 1.0;
            stroke[y * w + 6] = 1.0;
        }
        let width = |p: &[f32], level: f32| (0..w).filter(|&x| p[4 * w + x] > level).count();
        assert_eq!(width(&thicken(&stroke, w, h), 0.9), 4);
        let thinner = thin(&stroke, w, h);
        assert_eq!(width(&thinner, 0.4), 2, "a thin stroke must survive");
        assert_eq!(width(&thinner, 0.6), 0);
        let soft = soften(&stroke, w, h);
        assert!(soft[4 * w + 4] > 0.1 && soft[4 * w + 5] < 1.0);
        let total = |p: &[f32]| p.iter().sum::<f32>();
        assert!((total(&soft) - total(&stroke)).abs() < 0.5);
    }
}
