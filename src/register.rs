//! Register stage: a decoded page in, a page tied to its template side out.
//!
//! The four corner marks give a homography from template millimetres to
//! image pixels; the id code strip, read through that homography, names the
//! form and side. A page turned 180° has its marks in the same corners, so
//! the turned correspondence is tried when the upright one reads no code:
//! nothing is rotated in memory, every later read goes through the mapping.

use crate::template::{decode_id_code, RectMm, Side, Template, ID_CODE_BITS};
use image::GrayImage;
use serde::Serialize;

/// A page whose template side is known.
#[derive(Debug, Clone)]
pub struct RegisteredPage<'t> {
    pub template: &'t Template,
    pub side: &'t Side,
    /// Template millimetres → image pixels.
    pub to_image: Homography,
    /// True when the page was scanned upside down.
    pub turned: bool,
    /// Set when one corner mark was not found and the page was placed by
    /// the other three and its id code.
    pub covered_mark: Option<CoveredMark>,
    /// Grey level below which a pixel counts as ink on this page.
    pub ink_threshold: u8,
    /// Pixels per millimetre, estimated from the marks.
    pub px_per_mm: f64,
}

/// A corner mark the page was registered without.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CoveredMark {
    /// Which corner of the scan, as in `RegisterError::MarksNotFound`.
    pub corner: &'static str,
    /// How far the mark's visible ink lies outside where the other three
    /// put it, in mm; `None` when none of it is visible.
    pub residual_mm: Option<f64>,
}

impl CoveredMark {
    /// For staff and the record: which mark, and how well the rest agrees.
    pub fn detail(&self) -> String {
        let corner = match self.corner {
            "top-left" => "左上",
            "top-right" => "右上",
            "bottom-left" => "左下",
            _ => "右下",
        };
        match self.residual_mm {
            Some(r) => format!(
                "{corner}の位置合わせマークが一部隠れていたため、他の3つと識別コードで位置を合わせました（残差 {r:.1} mm）"
            ),
            None => format!(
                "{corner}の位置合わせマークが見えないため、他の3つと識別コードで位置を合わせました"
            ),
        }
    }
}

/// A hidden mark's visible ink may lie this far outside where the other
/// three marks put it (blur, print and scan tolerance); beyond it the three
/// marks do not describe the page.
pub const MAX_MARK_RESIDUAL_MM: f64 = 1.5;

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
pub enum RegisterError {
    #[error("page is blank")]
    Blank,
    #[error("registration marks not found in corner(s) {missing:?}")]
    MarksNotFound { missing: Vec<&'static str> },
    #[error("marks give an implausible page scale {scale:.3} (expected about 1.0)")]
    InvalidScale { scale: f64 },
    #[error("no known form id code (read {bits_upright} upright, {bits_turned} turned)")]
    UnknownForm {
        bits_upright: String,
        bits_turned: String,
    },
}

impl RegisterError {
    pub fn code(&self) -> &'static str {
        match self {
            RegisterError::Blank => "blank_page",
            RegisterError::MarksNotFound { .. } => "marks_not_found",
            RegisterError::InvalidScale { .. } => "invalid_scale",
            RegisterError::UnknownForm { .. } => "unknown_form",
        }
    }
}

/// What registration looked at, filled only when a caller asks for it
/// (`register_traced`, used by `todoke explain`): every template tried,
/// in order, with where its marks were searched and found and what its id
/// code read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegisterTrace {
    /// Paper and ink grey levels of the page; `None` for a blank page.
    pub paper: Option<u8>,
    pub ink: Option<u8>,
    pub ink_threshold: Option<u8>,
    pub attempts: Vec<TemplateAttempt>,
}

/// One template's geometry tried on the page.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateAttempt {
    pub template: String,
    /// The scale the image size suggests, before any mark is found.
    pub px_per_mm_guess: f64,
    /// Side of a corner mark.
    pub mark_size_mm: f64,
    /// Top-left, top-right, bottom-left, bottom-right of the scan.
    pub marks: Vec<MarkSearch>,
    /// Pixels per mm between the placed top marks over the guess.
    pub scale: Option<f64>,
    /// The id code read upright, then turned (absent when the marks failed).
    pub id_codes: Vec<IdCodeRead>,
    /// The side this attempt registered to, if it did.
    pub side: Option<String>,
    pub turned: bool,
    /// Why this template did not fit, if it did not.
    pub error: Option<RegisterError>,
}

/// One corner mark: where it was looked for and what was found there.
#[derive(Debug, Clone, Serialize)]
pub struct MarkSearch {
    pub corner: &'static str,
    /// The searched square in image pixels: x0, y0, x1, y1.
    pub search_px: [f64; 4],
    /// Where the template puts the mark at the guessed scale.
    pub expected_px: (f64, f64),
    /// The mark's ink centroid, when a mark-like blob was found.
    pub found_px: Option<(f64, f64)>,
    /// Where the page was registered from: the found centre, or for a
    /// hidden mark the corner the other three place.
    pub placed_px: Option<(f64, f64)>,
    /// How far, in mm, the mark lies from where the other three marks put
    /// it (a 4-point homography fits every mark exactly, so the other three
    /// are the check); for a hidden mark, how far its visible ink lies
    /// outside that place (`CoveredMark::residual_mm`).
    pub residual_mm: Option<f64>,
}

/// The id code strip as read through one correspondence.
#[derive(Debug, Clone, Serialize)]
pub struct IdCodeRead {
    pub turned: bool,
    /// `1` for an inked cell, left to right in template order; `-` when the
    /// marks gave no usable map.
    pub bits: String,
    /// Share of ink in each cell (more than half is a 1).
    pub shares: Vec<f32>,
    /// Each cell's corners in image pixels, for drawing.
    pub cells_px: Vec<[(f64, f64); 4]>,
    /// The code the bits decode to, if they form a valid code.
    pub code: Option<u16>,
}

/// A projective map, row-major 3×3 with h[8] = 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [f64; 9]);

impl Homography {
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let h = &self.0;
        let w = h[6] * x + h[7] * y + h[8];
        (
            (h[0] * x + h[1] * y + h[2]) / w,
            (h[3] * x + h[4] * y + h[5]) / w,
        )
    }

    /// The exact map taking each `from[i]` to `to[i]`; `None` when the points
    /// are degenerate (three on a line).
    pub fn from_points(from: &[(f64, f64); 4], to: &[(f64, f64); 4]) -> Option<Homography> {
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let (x, y) = from[i];
            let (u, v) = to[i];
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        // Gaussian elimination with partial pivoting on the 8×8 system.
        for col in 0..8 {
            let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
            if a[pivot][col].abs() < 1e-12 {
                return None;
            }
            a.swap(col, pivot);
            let pivot_row = a[col];
            for (row, r) in a.iter_mut().enumerate() {
                if row != col {
                    let f = r[col] / pivot_row[col];
                    for (x, p) in r.iter_mut().zip(pivot_row.iter()).skip(col) {
                        *x -= f * p;
                    }
                }
            }
        }
        let mut h = [0.0; 9];
        for i in 0..8 {
            h[i] = a[i][8] / a[i][i];
        }
        h[8] = 1.0;
        Some(Homography(h))
    }
}

const CORNERS: [&str; 4] = ["top-left", "top-right", "bottom-left", "bottom-right"];

/// Finds the page's template and side. Pure: the image is only read.
pub fn register<'t>(
    image: &GrayImage,
    templates: &'t [Template],
) -> Result<RegisteredPage<'t>, RegisterError> {
    register_traced(image, templates, None)
}

/// `register`, recording in `trace` (when given) what each template's
/// geometry found on the page.
pub fn register_traced<'t>(
    image: &GrayImage,
    templates: &'t [Template],
    mut trace: Option<&mut RegisterTrace>,
) -> Result<RegisteredPage<'t>, RegisterError> {
    let levels = grey_levels(image);
    if let (Some(t), Some(l)) = (trace.as_deref_mut(), levels) {
        t.paper = Some(l.paper);
        t.ink = Some(l.ink);
        t.ink_threshold = Some(l.ink_threshold());
    }
    let levels = levels.ok_or(RegisterError::Blank)?;
    let mut last_err = RegisterError::Blank;
    // Templates may differ in page size or mark placement; try each geometry.
    for template in templates {
        let (result, attempt) = register_to(image, template, levels);
        if let Some(t) = trace.as_deref_mut() {
            t.attempts.push(attempt);
        }
        match result {
            Ok(page) => return Ok(page),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// One template's geometry on the page, and what it found (whether or not
/// anyone keeps it: it is a few numbers beside the image work).
fn register_to<'t>(
    image: &GrayImage,
    template: &'t Template,
    levels: GreyLevels,
) -> (Result<RegisteredPage<'t>, RegisterError>, TemplateAttempt) {
    let ink_threshold = levels.ink_threshold();
    let (w, h) = image.dimensions();
    // Expected scale from the image size; scanners add or crop a little margin.
    let px_per_mm_guess =
        ((w as f64 / template.page.width_mm) + (h as f64 / template.page.height_mm)) / 2.0;
    let searched = find_marks(image, template, px_per_mm_guess, ink_threshold);
    let found: [Option<(f64, f64)>; 4] = std::array::from_fn(|i| searched[i].found);
    let mut attempt = TemplateAttempt {
        template: template.id.clone(),
        px_per_mm_guess,
        mark_size_mm: template.marks.size_mm,
        marks: searched
            .iter()
            .zip(CORNERS)
            .map(|(m, corner)| MarkSearch {
                corner,
                search_px: m.search_px,
                expected_px: m.expected_px,
                found_px: m.found,
                placed_px: None,
                residual_mm: None,
            })
            .collect(),
        scale: None,
        id_codes: Vec::new(),
        side: None,
        turned: false,
        error: None,
    };
    let result = place(
        image,
        template,
        &found,
        px_per_mm_guess,
        ink_threshold,
        &mut attempt,
    );
    if let Err(e) = &result {
        attempt.error = Some(e.clone());
    }
    (result, attempt)
}

/// The corner a parallelogram puts mark `k` at, from the other three.
fn fourth_corner(p: &[(f64, f64); 4], k: usize) -> (f64, f64) {
    match k {
        0 => (p[1].0 + p[2].0 - p[3].0, p[1].1 + p[2].1 - p[3].1),
        1 => (p[0].0 + p[3].0 - p[2].0, p[0].1 + p[3].1 - p[2].1),
        2 => (p[0].0 + p[3].0 - p[1].0, p[0].1 + p[3].1 - p[1].1),
        _ => (p[1].0 + p[2].0 - p[0].0, p[1].1 + p[2].1 - p[0].1),
    }
}

/// From the marks found to the page's side: the map, its scale, the id code.
fn place<'t>(
    image: &GrayImage,
    template: &'t Template,
    found: &[Option<(f64, f64)>; 4],
    px_per_mm_guess: f64,
    ink_threshold: u8,
    attempt: &mut TemplateAttempt,
) -> Result<RegisteredPage<'t>, RegisterError> {
    let missing: Vec<&'static str> = found
        .iter()
        .zip(CORNERS)
        .filter_map(|(m, name)| m.is_none().then_some(name))
        .collect();
    let c = template.marks.centres_mm;
    let tpl: [(f64, f64); 4] = std::array::from_fn(|i| (c[i][0], c[i][1]));
    let mut covered = None;
    let pts: [(f64, f64); 4] = match missing.as_slice() {
        [] => {
            let pts = std::array::from_fn(|i| found[i].unwrap_or_default());
            let span_mm = (tpl[1].0 - tpl[0].0).hypot(tpl[1].1 - tpl[0].1);
            let ppm = (pts[1].0 - pts[0].0).hypot(pts[1].1 - pts[0].1) / span_mm;
            for (k, m) in attempt.marks.iter_mut().enumerate() {
                let (x, y) = fourth_corner(&pts, k);
                m.residual_mm = Some((x - pts[k].0).hypot(y - pts[k].1) / ppm);
            }
            pts
        }
        // One mark hidden (a finger, a sticky note, a torn or folded corner,
        // the lid's edge): the other three fix an affine map, under which
        // the marks' rectangle stays a parallelogram. The id code, read
        // through that map below, must still name the side.
        [_] => {
            let k = found.iter().position(Option::is_none).unwrap_or(0);
            let p: [(f64, f64); 4] = std::array::from_fn(|i| found[i].unwrap_or_default());
            let predicted = fourth_corner(&p, k);
            let ppm = (p[(k + 1) % 4].0 - p[(k + 2) % 4].0)
                .hypot(p[(k + 1) % 4].1 - p[(k + 2) % 4].1)
                / (tpl[(k + 1) % 4].0 - tpl[(k + 2) % 4].0)
                    .hypot(tpl[(k + 1) % 4].1 - tpl[(k + 2) % 4].1);
            let residual_mm =
                mark_residual(image, predicted, template.marks.size_mm, ppm, ink_threshold);
            covered = Some(CoveredMark {
                corner: CORNERS[k],
                residual_mm,
            });
            attempt.marks[k].residual_mm = residual_mm;
            std::array::from_fn(|i| if i == k { predicted } else { p[i] })
        }
        _ => return Err(RegisterError::MarksNotFound { missing }),
    };
    for (m, p) in attempt.marks.iter_mut().zip(pts) {
        m.placed_px = Some(p);
    }
    if covered.is_some_and(|c| c.residual_mm.is_some_and(|r| r > MAX_MARK_RESIDUAL_MM)) {
        return Err(RegisterError::MarksNotFound { missing });
    }
    let span_mm = (c[1][0] - c[0][0]).hypot(c[1][1] - c[0][1]);
    let span_px = (pts[1].0 - pts[0].0).hypot(pts[1].1 - pts[0].1);
    let px_per_mm = span_px / span_mm;
    let scale = px_per_mm / px_per_mm_guess;
    attempt.scale = Some(scale);
    if !(0.85..=1.15).contains(&scale) {
        return Err(RegisterError::InvalidScale { scale });
    }

    let upright = Homography::from_points(&tpl, &pts);
    // Turned 180°: the template's top-left mark is the image's bottom-right.
    let turned_pts = [pts[3], pts[2], pts[1], pts[0]];
    let turned = Homography::from_points(&tpl, &turned_pts);
    let mut seen = Vec::new();
    for (hom, is_turned) in [(upright, false), (turned, true)] {
        let Some(hom) = hom else {
            seen.push(String::from("-"));
            attempt.id_codes.push(IdCodeRead {
                turned: is_turned,
                bits: "-".into(),
                shares: Vec::new(),
                cells_px: Vec::new(),
                code: None,
            });
            continue;
        };
        let shares = id_code_shares(image, template, &hom, ink_threshold);
        let bits: [bool; ID_CODE_BITS] = std::array::from_fn(|i| shares[i] > 0.5);
        let bit_text: String = bits.iter().map(|&b| if b { '1' } else { '0' }).collect();
        let code = decode_id_code(&bits);
        attempt.id_codes.push(IdCodeRead {
            turned: is_turned,
            bits: bit_text.clone(),
            shares: shares.to_vec(),
            cells_px: id_code_cells(template)
                .iter()
                .map(|r| {
                    [
                        hom.apply(r.x, r.y),
                        hom.apply(r.x + r.w, r.y),
                        hom.apply(r.x + r.w, r.y + r.h),
                        hom.apply(r.x, r.y + r.h),
                    ]
                })
                .collect(),
            code,
        });
        seen.push(bit_text);
        if let Some(code) = code {
            if let Some(side) = template.sides.iter().find(|s| s.code == code) {
                attempt.side = Some(side.id.clone());
                attempt.turned = is_turned;
                return Ok(RegisteredPage {
                    template,
                    side,
                    to_image: hom,
                    turned: is_turned,
                    covered_mark: covered,
                    ink_threshold,
                    px_per_mm,
                });
            }
        }
    }
    Err(RegisterError::UnknownForm {
        bits_upright: seen[0].clone(),
        bits_turned: seen[1].clone(),
    })
}

#[derive(Debug, Clone, Copy)]
struct GreyLevels {
    paper: u8,
    ink: u8,
}

impl GreyLevels {
    fn ink_threshold(self) -> u8 {
        ((self.paper as u16 + self.ink as u16) / 2).clamp(60, 200) as u8
    }
}

/// Paper and ink grey levels from a sparse sample; `None` for a page with
/// no ink at all.
fn grey_levels(image: &GrayImage) -> Option<GreyLevels> {
    let mut hist = [0u32; 256];
    let (w, h) = image.dimensions();
    let step = 3;
    for y in (0..h).step_by(step) {
        for x in (0..w).step_by(step) {
            hist[image.get_pixel(x, y)[0] as usize] += 1;
        }
    }
    let total: u32 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let percentile = |p: f64| {
        let target = (total as f64 * p) as u32;
        let mut acc = 0;
        for (v, &n) in hist.iter().enumerate() {
            acc += n;
            if acc > target {
                return v as u8;
            }
        }
        255
    };
    let paper = percentile(0.6);
    let ink = percentile(0.005);
    if paper.saturating_sub(ink) < 40 {
        return None;
    }
    Some(GreyLevels { paper, ink })
}

/// Looks for each mark near its expected corner: the dark connected blob
/// that is about the right size, square and solid, nearest the template
/// position. Returns the blob's ink centroid in image pixels.
/// Where one mark was looked for and what was found.
#[derive(Debug, Clone, Copy, Default)]
struct Searched {
    search_px: [f64; 4],
    expected_px: (f64, f64),
    found: Option<(f64, f64)>,
}

fn find_marks(image: &GrayImage, template: &Template, px_per_mm: f64, ink: u8) -> [Searched; 4] {
    let (w, h) = image.dimensions();
    let size_px = template.marks.size_mm * px_per_mm;
    // Work at about 2 px/mm: a 6 mm mark is still 12 px across.
    let step = ((px_per_mm / 2.0).floor() as u32).max(1);
    let search_mm = 30.0;
    let mut out = [Searched::default(); 4];
    for (i, c) in template.marks.centres_mm.iter().enumerate() {
        // Upside-down pages put the same marks at the mirrored corner, which
        // is where a symmetric search looks anyway.
        let cx = c[0] * px_per_mm;
        let cy = c[1] * px_per_mm;
        let r = search_mm * px_per_mm;
        let x0 = (cx - r).max(0.0) as u32;
        let y0 = (cy - r).max(0.0) as u32;
        let x1 = ((cx + r) as u32).min(w);
        let y1 = ((cy + r) as u32).min(h);
        out[i].search_px = [x0 as f64, y0 as f64, x1 as f64, y1 as f64];
        out[i].expected_px = (cx, cy);
        if x1 <= x0 + step || y1 <= y0 + step {
            continue;
        }
        let gw = ((x1 - x0) / step) as usize;
        let gh = ((y1 - y0) / step) as usize;
        let mut grid = vec![false; gw * gh];
        for gy in 0..gh {
            for gx in 0..gw {
                let px = x0 + gx as u32 * step + step / 2;
                let py = y0 + gy as u32 * step + step / 2;
                grid[gy * gw + gx] = image.get_pixel(px.min(w - 1), py.min(h - 1))[0] < ink;
            }
        }
        let expect = size_px / step as f64;
        let mut best: Option<(f64, (f64, f64))> = None;
        for blob in blobs(&grid, gw, gh) {
            let bw = (blob.x1 - blob.x0 + 1) as f64;
            let bh = (blob.y1 - blob.y0 + 1) as f64;
            let fill = blob.count as f64 / (bw * bh);
            let sized = |s: f64| s > expect * 0.6 && s < expect * 1.5;
            if !(sized(bw) && sized(bh) && fill > 0.75) {
                continue;
            }
            let centre = refine_centroid(image, ink, &blob, x0, y0, step);
            let dist = (centre.0 - cx).hypot(centre.1 - cy);
            if best.is_none_or(|(d, _)| dist < d) {
                best = Some((dist, centre));
            }
        }
        out[i].found = best.map(|(_, c)| c);
    }
    out
}

/// How far, in mm, ink around a predicted mark centre lies outside the
/// mark's square there: near 0 when what is visible of a partly covered
/// mark is where the other marks put it. `None`: no ink at all.
fn mark_residual(
    image: &GrayImage,
    centre: (f64, f64),
    size_mm: f64,
    px_per_mm: f64,
    ink: u8,
) -> Option<f64> {
    let (w, h) = image.dimensions();
    let half = size_mm / 2.0 * px_per_mm;
    let reach = half + 2.0 * px_per_mm;
    let x0 = (centre.0 - reach).max(0.0) as u32;
    let y0 = (centre.1 - reach).max(0.0) as u32;
    let x1 = ((centre.0 + reach).max(0.0) as u32).min(w);
    let y1 = ((centre.1 + reach).max(0.0) as u32).min(h);
    let mut worst: Option<f64> = None;
    for y in y0..y1 {
        for x in x0..x1 {
            if image.get_pixel(x, y)[0] >= ink {
                continue;
            }
            let dx = ((x as f64 + 0.5 - centre.0).abs() - half).max(0.0);
            let dy = ((y as f64 + 0.5 - centre.1).abs() - half).max(0.0);
            let d = dx.hypot(dy) / px_per_mm;
            worst = Some(worst.map_or(d, |m: f64| m.max(d)));
        }
    }
    worst
}

struct Blob {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    count: usize,
}

/// Bounding boxes and sizes of the ink blobs of a mask.
fn blobs(grid: &[bool], w: usize, h: usize) -> Vec<Blob> {
    crate::raster::components(grid, w, h)
        .into_iter()
        .map(|cells| {
            let xs = cells.iter().map(|i| i % w);
            let ys = cells.iter().map(|i| i / w);
            Blob {
                x0: xs.clone().min().unwrap_or(0),
                x1: xs.max().unwrap_or(0),
                y0: ys.clone().min().unwrap_or(0),
                y1: ys.max().unwrap_or(0),
                count: cells.len(),
            }
        })
        .collect()
}

/// Ink-weighted centroid at full resolution over the blob's box plus a rim.
fn refine_centroid(
    image: &GrayImage,
    ink: u8,
    b: &Blob,
    x0: u32,
    y0: u32,
    step: u32,
) -> (f64, f64) {
    let (w, h) = image.dimensions();
    let rim = step as i64 * 2;
    let xa = (x0 as i64 + (b.x0 as i64) * step as i64 - rim).max(0) as u32;
    let ya = (y0 as i64 + (b.y0 as i64) * step as i64 - rim).max(0) as u32;
    let xb = ((x0 as i64 + (b.x1 as i64 + 1) * step as i64 + rim) as u32).min(w);
    let yb = ((y0 as i64 + (b.y1 as i64 + 1) * step as i64 + rim) as u32).min(h);
    let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
    for y in ya..yb {
        for x in xa..xb {
            let v = image.get_pixel(x, y)[0];
            if v < ink {
                let wgt = (ink - v) as f64;
                sx += wgt * (x as f64 + 0.5);
                sy += wgt * (y as f64 + 0.5);
                sw += wgt;
            }
        }
    }
    if sw == 0.0 {
        return ((xa + xb) as f64 / 2.0, (ya + yb) as f64 / 2.0);
    }
    (sx / sw, sy / sw)
}

/// The id code's cells in template millimetres, left to right.
fn id_code_cells(template: &Template) -> [RectMm; ID_CODE_BITS] {
    let s = &template.id_code;
    std::array::from_fn(|i| RectMm {
        x: s.x_mm + i as f64 * s.cell_mm,
        y: s.y_mm,
        w: s.cell_mm,
        h: s.cell_mm,
    })
}

/// Share of ink in each id code cell; a cell over half inked is a 1.
fn id_code_shares(
    image: &GrayImage,
    template: &Template,
    hom: &Homography,
    ink: u8,
) -> [f32; ID_CODE_BITS] {
    let cells = id_code_cells(template);
    std::array::from_fn(|i| dark_share(image, hom, cells[i], 0.3, ink))
}

/// Share of ink pixels in a template rectangle, shrunk by `inset` of its size
/// on each side so that neighbours and print misalignment do not count.
pub fn dark_share(image: &GrayImage, hom: &Homography, r: RectMm, inset: f64, ink: u8) -> f32 {
    // About ten samples per millimetre, so a thin pen stroke cannot slip
    // between them.
    let n = ((r.w.max(r.h) * (1.0 - 2.0 * inset) * 10.0).ceil() as usize).clamp(4, 64);
    let mut dark = 0;
    let mut total = 0;
    for j in 0..n {
        for i in 0..n {
            let fx = inset + (1.0 - 2.0 * inset) * (i as f64 + 0.5) / n as f64;
            let fy = inset + (1.0 - 2.0 * inset) * (j as f64 + 0.5) / n as f64;
            let (x, y) = hom.apply(r.x + fx * r.w, r.y + fy * r.h);
            if x < 0.0 || y < 0.0 || x >= image.width() as f64 || y >= image.height() as f64 {
                continue;
            }
            total += 1;
            if image.get_pixel(x as u32, y as u32)[0] < ink {
                dark += 1;
            }
        }
    }
    if total == 0 {
        0.0
    } else {
        dark as f32 / total as f32
    }
}

/// Samples a template rectangle into an upright image at `px_per_mm`,
/// bilinear, through the page's homography. Outside the scan is paper.
pub fn warp_rect(image: &GrayImage, hom: &Homography, r: RectMm, px_per_mm: f64) -> GrayImage {
    let ow = ((r.w * px_per_mm).round() as u32).max(1);
    let oh = ((r.h * px_per_mm).round() as u32).max(1);
    let (w, h) = (image.width() as f64, image.height() as f64);
    GrayImage::from_fn(ow, oh, |ox, oy| {
        let (x, y) = hom.apply(
            r.x + (ox as f64 + 0.5) / px_per_mm,
            r.y + (oy as f64 + 0.5) / px_per_mm,
        );
        let (x, y) = (x - 0.5, y - 0.5);
        if x < 0.0 || y < 0.0 || x >= w - 1.0 || y >= h - 1.0 {
            return image::Luma([255]);
        }
        let (x0, y0) = (x.floor() as u32, y.floor() as u32);
        let (fx, fy) = (x - x0 as f64, y - y0 as f64);
        let p = |dx, dy| image.get_pixel(x0 + dx, y0 + dy)[0] as f64;
        let v = p(0, 0) * (1.0 - fx) * (1.0 - fy)
            + p(1, 0) * fx * (1.0 - fy)
            + p(0, 1) * (1.0 - fx) * fy
            + p(1, 1) * fx * fy;
        image::Luma([v.round() as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homography_maps_its_points() {
        let from = [(0.0, 0.0), (100.0, 0.0), (0.0, 200.0), (100.0, 200.0)];
        let to = [(10.0, 20.0), (215.0, 25.0), (5.0, 430.0), (212.0, 433.0)];
        let h = Homography::from_points(&from, &to).unwrap();
        for (f, t) in from.iter().zip(to) {
            let (x, y) = h.apply(f.0, f.1);
            assert!((x - t.0).abs() < 1e-6 && (y - t.1).abs() < 1e-6);
        }
    }

    #[test]
    fn collinear_points_have_no_homography() {
        let from = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)];
        assert!(Homography::from_points(&from, &from).is_none());
    }

    #[test]
    fn a_white_page_is_blank() {
        let page = GrayImage::from_pixel(300, 400, image::Luma([250]));
        assert!(matches!(register(&page, &[]), Err(RegisterError::Blank)));
    }
}
