//! From a box cell as scanned to the 28×28 input the model was trained on.
//!
//! Cells arrive with a margin, so parts of the printed box border are
//! usually visible; MNIST digits never have them. Border lines are removed
//! as what they are (long straight dark runs near the edge), specks are
//! dropped, and what remains is normalised the way MNIST was made: the ink's
//! bounding box scaled into 20×20 and its centre of mass put at the centre.

use image::GrayImage;

/// Side of the model input.
pub const SIDE: usize = 28;

/// A normalised cell: 784 values, 0 paper, 1 ink; `None` when no ink is left
/// after cleaning (a blank cell).
pub fn normalise(cell: &GrayImage) -> Option<Vec<f32>> {
    let ink = ink_map(cell);
    let (w, h) = (cell.width() as usize, cell.height() as usize);
    let cleaned = remove_specks(&remove_border_lines(ink, w, h), w, h);
    to_mnist(&cleaned, w, h)
}

/// Ink strength per pixel, 0..1, relative to this cell's own paper level so
/// that grey scans and faint pens look alike.
pub fn ink_map(cell: &GrayImage) -> Vec<f32> {
    let px = cell.as_raw();
    // Grey levels at given ranks, from a histogram (as sorting would give).
    let mut hist = [0usize; 256];
    px.iter().for_each(|&v| hist[v as usize] += 1);
    let at_rank = |rank: usize| {
        let mut seen = 0;
        for (level, &n) in hist.iter().enumerate() {
            seen += n;
            if seen > rank {
                return level as f32;
            }
        }
        255.0
    };
    let paper = at_rank((px.len() * 7) / 10);
    let darkest = at_rank(px.len() / 200);
    // A cell with nothing darker than faint noise keeps a fixed scale, so
    // dust is not stretched into strokes.
    let span = (paper - darkest).max(90.0);
    px.iter()
        .map(|&v| {
            let x = ((paper - v as f32) / span).clamp(0.0, 1.0);
            // Below a fifth of the span is scanner noise or paper texture.
            if x < 0.2 {
                0.0
            } else {
                x
            }
        })
        .collect()
}

/// Clears rows and columns in the outer band of the cell that are mostly
/// ink: those are the printed box, not the writing.
pub fn remove_border_lines(mut ink: Vec<f32>, w: usize, h: usize) -> Vec<f32> {
    let band_x = (w as f32 * 0.22).ceil() as usize;
    let band_y = (h as f32 * 0.22).ceil() as usize;
    let dark = |v: f32| v > 0.35;
    let row_long =
        |y: usize| (0..w).filter(|&x| dark(ink[y * w + x])).count() as f32 > w as f32 * 0.65;
    let col_long =
        |x: usize| (0..h).filter(|&y| dark(ink[y * w + x])).count() as f32 > h as f32 * 0.65;
    // Only the outermost long run from each edge is the printed line: a
    // digit's long bar (the top of a big 7 or 5) further in is writing.
    let mut clear_rows = outermost_line(0..band_y, h, &row_long);
    clear_rows.extend(outermost_line(
        (h.saturating_sub(band_y)..h).rev(),
        h,
        &row_long,
    ));
    let mut clear_cols = outermost_line(0..band_x, w, &col_long);
    clear_cols.extend(outermost_line(
        (w.saturating_sub(band_x)..w).rev(),
        w,
        &col_long,
    ));
    // Anti-aliased edges of a line are lighter than its core: widen by one.
    let widen = |v: &[usize], n: usize| -> Vec<usize> {
        let mut out: Vec<usize> = v
            .iter()
            .flat_map(|&i| [i.saturating_sub(1), i, (i + 1).min(n - 1)])
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    };
    for y in widen(&clear_rows, h) {
        ink[y * w..(y + 1) * w].iter_mut().for_each(|v| *v = 0.0);
    }
    for x in widen(&clear_cols, w) {
        (0..h).for_each(|y| ink[y * w + x] = 0.0);
    }
    // Whatever lies outside the printed box (the margin) is not the digit.
    let outer_rows = clear_rows
        .iter()
        .filter(|&&y| y < band_y)
        .max()
        .map(|&y| y + 1)
        .unwrap_or(0);
    let outer_rows_end = clear_rows
        .iter()
        .filter(|&&y| y >= band_y)
        .min()
        .copied()
        .unwrap_or(h);
    let outer_cols = clear_cols
        .iter()
        .filter(|&&x| x < band_x)
        .max()
        .map(|&x| x + 1)
        .unwrap_or(0);
    let outer_cols_end = clear_cols
        .iter()
        .filter(|&&x| x >= band_x)
        .min()
        .copied()
        .unwrap_or(w);
    for y in 0..h {
        for x in 0..w {
            if y < outer_rows || y >= outer_rows_end || x < outer_cols || x >= outer_cols_end {
                ink[y * w + x] = 0.0;
            }
        }
    }
    ink
}

/// From the edge inwards, the first group of adjacent long lines, no
/// thicker than a printed rule can be (a bar written against the line adds
/// to the group but only the line's thickness is taken).
fn outermost_line(
    from_edge: impl Iterator<Item = usize>,
    side: usize,
    long: &dyn Fn(usize) -> bool,
) -> Vec<usize> {
    let max_thick = (side as f32 * 0.06).ceil() as usize + 1;
    let mut out = Vec::new();
    for i in from_edge {
        if long(i) {
            out.push(i);
            if out.len() >= max_thick {
                break;
            }
        } else if !out.is_empty() {
            break;
        }
    }
    out
}

/// Drops connected ink blobs too small to be part of a digit.
pub fn remove_specks(ink: &[f32], w: usize, h: usize) -> Vec<f32> {
    let min_px = ((w * h) as f32 * 0.004).max(4.0) as usize;
    let on: Vec<bool> = ink.iter().map(|&v| v > 0.0).collect();
    let mut out = vec![0.0; ink.len()];
    for blob in crate::raster::components(&on, w, h) {
        if blob.len() >= min_px {
            for i in blob {
                out[i] = ink[i];
            }
        }
    }
    out
}

/// MNIST normalisation: bounding box into 20×20 (aspect kept), centre of
/// mass at (14, 14). Bilinear area sampling keeps thin strokes.
pub fn to_mnist(ink: &[f32], w: usize, h: usize) -> Option<Vec<f32>> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    let mut total = 0.0;
    for y in 0..h {
        for x in 0..w {
            let v = ink[y * w + x];
            if v > 0.0 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
                total += v;
            }
        }
    }
    // Less ink than a short stroke across a fifth of the cell is no digit.
    if x0 == usize::MAX || total < (w.min(h) as f32) * 0.5 {
        return None;
    }
    let bw = (x1 - x0 + 1) as f32;
    let bh = (y1 - y0 + 1) as f32;
    let scale = 20.0 / bw.max(bh);
    let (ow, oh) = (bw * scale, bh * scale);
    // Render the box into a 28×28 canvas by averaging source pixels.
    let mut small = vec![0.0f32; SIDE * SIDE];
    let ox = (SIDE as f32 - ow) / 2.0;
    let oy = (SIDE as f32 - oh) / 2.0;
    let inv = 1.0 / scale;
    let n = inv.ceil().max(1.0) as usize;
    // The source column (row) of each of the n sample points of each target
    // column (row), or None outside the ink's box: the grid is separable.
    let points = |offset: f32, lo: usize, hi: usize| -> Vec<Option<usize>> {
        (0..SIDE)
            .flat_map(|t| {
                let s0 = (t as f32 - offset) * inv + lo as f32;
                (0..n).map(move |i| {
                    let s = s0 + (i as f32 + 0.5) * inv / n as f32;
                    (s >= lo as f32 && s < (hi + 1) as f32).then_some(s as usize)
                })
            })
            .collect()
    };
    let xs = points(ox, x0, x1);
    let ys = points(oy, y0, y1);
    let cnt = (n * n) as f32;
    for ty in 0..SIDE {
        let rows = &ys[ty * n..(ty + 1) * n];
        if rows.iter().all(Option::is_none) {
            continue;
        }
        for tx in 0..SIDE {
            let cols = &xs[tx * n..(tx + 1) * n];
            let mut acc = 0.0;
            for sy in rows.iter().flatten() {
                let line = &ink[sy * w..(sy + 1) * w];
                for sx in cols.iter().flatten() {
                    acc += line[*sx];
                }
            }
            small[ty * SIDE + tx] = acc / cnt;
        }
    }
    Some(centre_of_mass(&small))
}

/// Largest shear `deskew` applies: a stroke leaning more than this (about
/// 35°) is more likely a digit whose shape leans (a 7's bar, a 4's arm)
/// than a slanted hand.
pub const MAX_SHEAR: f32 = 0.7;

/// A normalised digit with its slant taken out: each row is shifted so that
/// the ink's principal axis stands upright (the shear that zeroes the
/// covariance of x and y), as in the classic MNIST deskewing. Networks that
/// read deskewed digits need not learn every slant of every hand from six
/// thousand samples, and they err on other cells than the networks that
/// read the digit as written.
pub fn deskew(img: &[f32]) -> Vec<f32> {
    let (mut s, mut sx, mut sy) = (0.0f32, 0.0f32, 0.0f32);
    for (i, &v) in img.iter().enumerate() {
        s += v;
        sx += v * (i % SIDE) as f32;
        sy += v * (i / SIDE) as f32;
    }
    if s <= 0.0 {
        return img.to_vec();
    }
    let (cx, cy) = (sx / s, sy / s);
    let (mut vyy, mut vxy) = (0.0f32, 0.0f32);
    for (i, &v) in img.iter().enumerate() {
        let (dx, dy) = ((i % SIDE) as f32 - cx, (i / SIDE) as f32 - cy);
        vyy += v * dy * dy;
        vxy += v * dx * dy;
    }
    if vyy <= f32::EPSILON {
        return img.to_vec();
    }
    let shear = (vxy / vyy).clamp(-MAX_SHEAR, MAX_SHEAR);
    let mut out = vec![0.0; SIDE * SIDE];
    for y in 0..SIDE {
        let offset = shear * (y as f32 - cy);
        let row = &img[y * SIDE..(y + 1) * SIDE];
        for x in 0..SIDE {
            // Linear interpolation between the two source pixels.
            let src = x as f32 + offset;
            let x0 = src.floor();
            let t = src - x0;
            let at = |k: f32| {
                if k >= 0.0 && k < SIDE as f32 {
                    row[k as usize]
                } else {
                    0.0
                }
            };
            out[y * SIDE + x] = at(x0) * (1.0 - t) + at(x0 + 1.0) * t;
        }
    }
    out
}

/// Shifts a 28×28 image so its centre of mass is at the centre.
fn centre_of_mass(img: &[f32]) -> Vec<f32> {
    let (mut sx, mut sy, mut s) = (0.0, 0.0, 0.0);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let v = img[y * SIDE + x];
            sx += v * x as f32;
            sy += v * y as f32;
            s += v;
        }
    }
    if s == 0.0 {
        return img.to_vec();
    }
    let dx = (13.5 - sx / s).round() as i32;
    let dy = (13.5 - sy / s).round() as i32;
    let mut out = vec![0.0; SIDE * SIDE];
    for y in 0..SIDE as i32 {
        for x in 0..SIDE as i32 {
            let (nx, ny) = (x + dx, y + dy);
            if (0..SIDE as i32).contains(&nx) && (0..SIDE as i32).contains(&ny) {
                out[ny as usize * SIDE + nx as usize] = img[y as usize * SIDE + x as usize];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A 67×87 cell as the read stage crops it: margin, then a 3 px border.
    fn boxed_cell() -> GrayImage {
        let mut img = GrayImage::from_pixel(67, 87, Luma([235]));
        for y in 0..87 {
            for x in 0..67 {
                let on_border = ((6..9).contains(&x) || (58..61).contains(&x))
                    && (6..81).contains(&y)
                    || ((6..9).contains(&y) || (78..81).contains(&y)) && (6..61).contains(&x);
                if on_border {
                    img.put_pixel(x, y, Luma([40]));
                }
            }
        }
        img
    }

    /// A slanted bar, its ink's x growing as y shrinks (leaning right).
    fn leaning_bar(lean: f32) -> Vec<f32> {
        let mut img = vec![0.0; SIDE * SIDE];
        for y in 4..24 {
            let x = (14.0 + lean * (14.0 - y as f32)).round() as usize;
            img[y * SIDE + x] = 1.0;
            img[y * SIDE + x + 1] = 1.0;
        }
        img
    }

    fn column_spread(img: &[f32]) -> f32 {
        let cols: Vec<usize> = (0..SIDE)
            .filter(|x| (0..SIDE).any(|y| img[y * SIDE + x] > 0.3))
            .collect();
        (cols[cols.len() - 1] - cols[0]) as f32
    }

    #[test]
    fn deskewing_stands_a_leaning_stroke_upright_and_keeps_its_ink() {
        let bar = leaning_bar(0.4);
        assert!(column_spread(&bar) >= 7.0);
        let upright = deskew(&bar);
        assert!(
            column_spread(&upright) <= 2.0,
            "{}",
            column_spread(&upright)
        );
        let ink = |v: &[f32]| v.iter().sum::<f32>();
        assert!((ink(&upright) - ink(&bar)).abs() < 0.5);
        // An upright stroke and an empty cell are left as they are.
        let straight = leaning_bar(0.0);
        assert_eq!(deskew(&straight), straight);
        assert_eq!(deskew(&[0.0; SIDE * SIDE]), vec![0.0; SIDE * SIDE]);
    }

    #[test]
    fn an_empty_box_is_blank() {
        assert!(normalise(&boxed_cell()).is_none());
        let mut dusty = boxed_cell();
        dusty.put_pixel(30, 40, Luma([60]));
        dusty.put_pixel(31, 40, Luma([60]));
        assert!(normalise(&dusty).is_none());
    }

    #[test]
    fn a_stroke_in_a_box_is_a_centred_digit() {
        let mut img = boxed_cell();
        for y in 20..68 {
            for x in 31..36 {
                img.put_pixel(x, y, Luma([20]));
            }
        }
        let v = normalise(&img).expect("a 1 is not blank");
        // The stroke is centred and 20 px tall; the border is gone.
        let col_ink = |x: usize| (0..SIDE).map(|y| v[y * SIDE + x]).sum::<f32>();
        assert!(col_ink(13) + col_ink(14) > 20.0);
        assert!(col_ink(2) < 0.01 && col_ink(25) < 0.01);
        let rows: Vec<usize> = (0..SIDE)
            .filter(|&y| v[y * SIDE + 13] + v[y * SIDE + 14] > 0.5)
            .collect();
        assert!(rows.len() >= 18 && rows.len() <= 21, "{rows:?}");
    }

    /// A misregistered crop: only the top and left border lines, right at
    /// the edge, faint grey paper, and a few specks.
    fn shifted_cell() -> GrayImage {
        let mut img = GrayImage::from_pixel(60, 80, Luma([205]));
        for i in 0..80 {
            for t in 0..3 {
                img.put_pixel(1 + t, i, Luma([70]));
                if i < 60 {
                    img.put_pixel(i, 2 + t, Luma([70]));
                }
            }
        }
        for (x, y) in [(20, 30), (45, 60), (50, 12)] {
            img.put_pixel(x, y, Luma([90]));
            img.put_pixel(x + 1, y, Luma([90]));
            img.put_pixel(x, y + 1, Luma([90]));
        }
        img
    }

    #[test]
    fn partial_borders_and_dust_are_blank() {
        assert!(normalise(&shifted_cell()).is_none());
    }

    #[test]
    fn a_stroke_touching_the_border_survives_the_border_removal() {
        let mut img = shifted_cell();
        // A 7: top bar starting at the left border line, then a diagonal.
        for x in 3..45 {
            for y in 14..18 {
                img.put_pixel(x, y, Luma([30]));
            }
        }
        for y in 14..70 {
            let x = 44 - (y - 14) * 20 / 56;
            for dx in 0..4 {
                img.put_pixel(x + dx, y, Luma([30]));
            }
        }
        let v = normalise(&img).expect("a 7 is not blank");
        // The bar is the top of the digit and the left border is gone: the
        // top rows hold the bar, the left columns below it hold nothing.
        let row_ink = |y: usize| (0..SIDE).map(|x| v[y * SIDE + x]).sum::<f32>();
        let top = (0..SIDE).find(|&y| row_ink(y) > 0.5).expect("ink");
        assert!(row_ink(top) + row_ink(top + 1) > 12.0, "no top bar");
        let left_below: f32 = (top + 6..SIDE)
            .flat_map(|y| (0..6).map(move |x| (x, y)))
            .map(|(x, y)| v[y * SIDE + x])
            .sum();
        assert!(left_below < 0.5, "left border survived: {left_below}");
    }
}
