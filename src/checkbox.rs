//! Checkbox evidence: what the ink in and around one printed checkbox says.
//!
//! People mark paper in many ways: a tick or cross in the box, a filled box,
//! a faint pencil tick, a circle around the box or an oval over its label
//! (the 〇-style habit of the old forms). Every one of them must either be
//! read or make its field doubtful; a box is only empty when the evidence
//! says so clearly. Ink is judged against the page's own levels around the
//! box: the paper beside it and its printed border, which is what black
//! looks like on that scan. Pure: the image and the template are only read.

use crate::register::{warp_rect, Homography};
use crate::template::{Choice, Defaults, Field, RectMm, Side};
use image::GrayImage;

/// What was measured for one checkbox.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BoxEvidence {
    /// Share of the box's inside at least half as dark as its printed border.
    pub ink: f32,
    /// Share of the box's inside darker than the paper by `FAINT_DARKNESS`
    /// of the paper-to-print span: pencil, light pressure.
    pub faint: f32,
    /// Share of the directions around the box (or its label, or both) in
    /// which handwritten ink lies close by: 1 for a closed circle.
    pub enclosure: f32,
    /// The scan is black and white: every pixel is paper or black, so a
    /// faint mark is either gone or a few black specks.
    pub bilevel: bool,
    /// Paper and border could not be told apart here (a smudge, a fold,
    /// a scan too dark): nothing about the box can be trusted.
    pub unjudgeable: bool,
}

/// How a box reads, before the field is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Empty,
    Marked,
    /// Ink that is neither clearly nothing nor clearly an answer.
    Uncertain,
}

/// Resolution of the patch each box is judged on.
const PX_PER_MM: f64 = 10.0;
/// Room around a box and its label that is looked at.
const PATCH_MARGIN_MM: f64 = 3.2;
/// Part of a checkbox near its border left out of the inside, as a share of
/// its size: the printed border and small misregistration.
const INSET: f64 = 0.2;
/// Printed items are masked this far beyond their nominal rectangle
/// (stroke width, blur, misregistration).
const PRINT_GROW_MM: f64 = 0.45;
/// Digit boxes are masked with room for handwriting that runs over them.
const DIGIT_GROW_MM: f64 = 2.0;
/// Option labels: the renderer prints them this far right of the box, at
/// this size, vertically centred on it (`render.rs`).
const LABEL_GAP_MM: f64 = 2.2;
const LABEL_MM: f64 = 3.3;
/// Field labels are printed at this size.
const FIELD_LABEL_MM: f64 = 3.5;
/// Darkness (0 = paper, 1 = printed border) at which a pixel is ink.
const INK_DARKNESS: f32 = 0.5;
/// Darkness of a faint pencil stroke: above rubbed-out residue and noise.
/// The border is thin and blurred, so it is lighter than a pen line; a
/// rubbed-out pen mark reaches about a quarter of it.
const FAINT_DARKNESS: f32 = 0.3;
/// Darkness at which ink outside the box counts as handwriting near it.
const NEAR_DARKNESS: f32 = 0.35;
/// The band around a box or label where a circle around it is looked for.
const BAND_MM: (f64, f64) = (0.4, 2.4);
const SECTORS: usize = 16;
/// Pixels of ink needed in a sector to count it.
const SECTOR_PIXELS: usize = 3;
/// Below this paper-to-border span (grey levels) the box cannot be judged.
const MIN_SPAN: f32 = 25.0;

/// Share of the inside at or below which faint ink is noise or residue.
pub const FAINT_EMPTY: f32 = 0.005;
/// Share of the inside of a grey scan in faint ink at or above which the
/// box holds a pencil tick.
pub const FAINT_MARKED: f32 = 0.05;
/// Enclosure at or above which an option is circled.
pub const CIRCLED: f32 = 0.55;
/// Enclosure below which ink near a box is a stray stroke, not a circle
/// that might have been meant.
pub const STRAY: f32 = 0.4;
/// Share of the inside of a black-and-white scan that is still a mark's
/// trace, not a speck: above this nothing is called empty.
pub const BILEVEL_SPECKS: f32 = 0.004;
/// Share of the inside below which a mark on a black-and-white scan is a
/// light stroke the scanner kept only in part. Pen ticks keep at least 0.18
/// (360 synthetic ticks at 200 to 400 dpi); light-pen ticks whose sibling
/// answer vanished kept 0.10 to 0.14.
pub const BILEVEL_FIRM: f32 = 0.16;

/// The evidence for option `idx` of `field` on a side.
pub fn evidence(
    image: &GrayImage,
    hom: &Homography,
    side: &Side,
    field: &Field,
    idx: usize,
    bilevel: bool,
) -> BoxEvidence {
    let opt = &field.options[idx];
    let bx = opt.rect();
    let label = label_rect(opt);
    let own = union(bx, label);
    let area = own.grow(PATCH_MARGIN_MM);
    let patch = warp_rect(image, hom, area, PX_PER_MM);
    let (pw, ph) = patch.dimensions();
    let to_mm = |px: u32, py: u32| {
        (
            area.x + (px as f64 + 0.5) / PX_PER_MM,
            area.y + (py as f64 + 0.5) / PX_PER_MM,
        )
    };
    let print = print_rects(side, area);
    let printed = |x: f64, y: f64| print.iter().any(|r| inside(*r, x, y));

    // Paper: what most of the patch away from print is.
    let mut paper: Vec<u8> = Vec::with_capacity((pw * ph) as usize);
    for (px, py, p) in patch.enumerate_pixels() {
        let (x, y) = to_mm(px, py);
        if !printed(x, y) && !inside(bx.grow(PRINT_GROW_MM), x, y) {
            paper.push(p[0]);
        }
    }
    let paper = median(&mut paper).unwrap_or(255) as f32;
    let black = border_level(&patch, area, bx).unwrap_or(0) as f32;
    let span = paper - black;
    if span < MIN_SPAN {
        return BoxEvidence {
            ink: 0.0,
            faint: 0.0,
            enclosure: 0.0,
            bilevel,
            unjudgeable: true,
        };
    }
    let dark = |v: u8| (paper - v as f32) / span;

    // Inside the box.
    let inner = RectMm {
        x: bx.x + INSET * bx.w,
        y: bx.y + INSET * bx.h,
        w: bx.w * (1.0 - 2.0 * INSET),
        h: bx.h * (1.0 - 2.0 * INSET),
    };
    let (mut n, mut inked, mut faint) = (0usize, 0usize, 0usize);
    // Handwriting outside the box and its print, for the enclosure.
    let mut near: Vec<(f64, f64)> = Vec::new();
    for (px, py, p) in patch.enumerate_pixels() {
        let (x, y) = to_mm(px, py);
        let d = dark(p[0]);
        if inside(inner, x, y) {
            n += 1;
            inked += usize::from(d >= INK_DARKNESS);
            faint += usize::from(d >= FAINT_DARKNESS);
        } else if d >= NEAR_DARKNESS && !printed(x, y) && !inside(bx.grow(PRINT_GROW_MM), x, y) {
            near.push((x, y));
        }
    }
    let share = |k: usize| if n == 0 { 0.0 } else { k as f32 / n as f32 };
    let enclosure = [bx, label, own]
        .into_iter()
        .map(|r| enclosure(&near, r))
        .fold(0.0f32, f32::max);
    BoxEvidence {
        ink: share(inked),
        faint: share(faint),
        enclosure,
        bilevel,
        unjudgeable: false,
    }
}

/// What the evidence says about the box. Only evidence that is clearly one
/// thing is called empty or marked; everything else is uncertain, so that
/// the field goes to staff rather than losing or inventing an answer.
pub fn verdict(e: &BoxEvidence, defaults: &Defaults) -> Verdict {
    if e.unjudgeable {
        return Verdict::Uncertain;
    }
    // Ink as dark as a pen's, or a faint stroke over much of the box (a
    // pencil tick: rubbed-out residue and noise never reach this), or a
    // closed loop around the box or its label.
    let faint_tick = !e.bilevel && e.faint >= FAINT_MARKED;
    if e.ink >= defaults.checkbox_marked_ink || faint_tick || e.enclosure >= CIRCLED {
        return Verdict::Marked;
    }
    let specks = e.bilevel && e.ink > BILEVEL_SPECKS;
    let clear_inside = e.ink <= defaults.checkbox_empty_ink && e.faint <= FAINT_EMPTY && !specks;
    if clear_inside && e.enclosure < STRAY {
        Verdict::Empty
    } else {
        Verdict::Uncertain
    }
}

/// Where an option's label is printed: `LABEL_GAP_MM` right of the box, at
/// `LABEL_MM`, vertically centred on it.
pub fn label_rect(o: &Choice) -> RectMm {
    RectMm {
        x: o.x_mm + o.size_mm + LABEL_GAP_MM,
        y: o.y_mm + (o.size_mm - LABEL_MM) / 2.0,
        w: text_width_mm(&o.label, LABEL_MM),
        h: LABEL_MM,
    }
}

/// Width of text in the fixed-pitch form font: full-width characters are
/// one em, ASCII half of one.
fn text_width_mm(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| if c.is_ascii() { size / 2.0 } else { size })
        .sum()
}

fn union(a: RectMm, b: RectMm) -> RectMm {
    let x0 = a.x.min(b.x);
    let y0 = a.y.min(b.y);
    let x1 = (a.x + a.w).max(b.x + b.w);
    let y1 = (a.y + a.h).max(b.y + b.h);
    RectMm {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

fn inside(r: RectMm, x: f64, y: f64) -> bool {
    x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h
}

fn overlaps(a: RectMm, b: RectMm) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

/// Everything printed on the side that reaches into `area`, grown to cover
/// its strokes: other boxes' borders, labels, texts, and digit boxes with
/// room for the handwriting in them. The box being judged is not here; its
/// border is left out separately.
fn print_rects(side: &Side, area: RectMm) -> Vec<RectMm> {
    let mut out = Vec::new();
    let mut push = |r: RectMm| {
        if overlaps(r, area) {
            out.push(r);
        }
    };
    for t in &side.texts {
        push(
            RectMm {
                x: t.x_mm,
                y: t.y_mm,
                w: text_width_mm(&t.text, t.size_mm),
                h: t.size_mm,
            }
            .grow(PRINT_GROW_MM),
        );
    }
    for f in &side.fields {
        push(
            RectMm {
                x: f.label_at_mm[0],
                y: f.label_at_mm[1],
                w: text_width_mm(&f.label, FIELD_LABEL_MM),
                h: FIELD_LABEL_MM,
            }
            .grow(PRINT_GROW_MM),
        );
        if let Some(row) = &f.boxes {
            let rects = row.rects();
            if let (Some(first), Some(last)) = (rects.first(), rects.last()) {
                // The row with its suffixes and printed era: handwriting and
                // print both live there.
                let row_rect = union(*first, *last).grow(DIGIT_GROW_MM);
                let era = if f.era.is_some() { 11.0 } else { 0.0 };
                push(RectMm {
                    x: row_rect.x - era,
                    w: row_rect.w + era + 6.0,
                    ..row_rect
                });
            }
        }
        for o in &f.options {
            push(label_rect(o).grow(PRINT_GROW_MM));
            let r = o.rect();
            // Only the border of another box is print; a mark inside it is
            // that box's own evidence and is masked with it.
            push(r.grow(PRINT_GROW_MM));
        }
    }
    out
}

/// The printed border's darkness: along each edge, the darkest pixel across
/// the line, and the median of those, so that a mark crossing the border
/// does not decide it.
fn border_level(patch: &GrayImage, area: RectMm, bx: RectMm) -> Option<u8> {
    let (pw, ph) = patch.dimensions();
    let at = |x: f64, y: f64| -> Option<u8> {
        let px = ((x - area.x) * PX_PER_MM).floor();
        let py = ((y - area.y) * PX_PER_MM).floor();
        (px >= 0.0 && py >= 0.0 && px < pw as f64 && py < ph as f64)
            .then(|| patch.get_pixel(px as u32, py as u32)[0])
    };
    let mut minima = Vec::new();
    for k in 0..10 {
        let t = 0.15 + 0.7 * k as f64 / 9.0;
        let offsets = (-5..=5).map(|o| o as f64 * 0.1);
        let edges = [
            (bx.x + t * bx.w, bx.y, false),
            (bx.x + t * bx.w, bx.y + bx.h, false),
            (bx.x, bx.y + t * bx.h, true),
            (bx.x + bx.w, bx.y + t * bx.h, true),
        ];
        for (x, y, vertical) in edges {
            let m = offsets
                .clone()
                .filter_map(|o| if vertical { at(x + o, y) } else { at(x, y + o) })
                .min();
            minima.extend(m);
        }
    }
    median(&mut minima)
}

fn median(v: &mut [u8]) -> Option<u8> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    Some(*v.select_nth_unstable(mid).1)
}

/// Whether a page is a black-and-white scan: a sparse sample finds no grey
/// at all. Grey scans have greys at every stroke's edge and in the noise.
pub fn is_bilevel(image: &GrayImage) -> bool {
    let (w, h) = image.dimensions();
    let step = ((w.min(h) / 200).max(1)) as usize;
    (0..h)
        .step_by(step)
        .flat_map(|y| (0..w).step_by(step).map(move |x| (x, y)))
        .all(|(x, y)| matches!(image.get_pixel(x, y)[0], 0 | 255))
}

/// Share of the sectors around `r` holding handwriting in the band just
/// outside it. Angles are taken with `r`'s aspect removed, so that an oval
/// around a long label is as closed as a circle around a box.
fn enclosure(near: &[(f64, f64)], r: RectMm) -> f32 {
    let (cx, cy) = (r.x + r.w / 2.0, r.y + r.h / 2.0);
    let (sx, sy) = (r.w / 2.0 + 1.0, r.h / 2.0 + 1.0);
    let mut counts = [0usize; SECTORS];
    for &(x, y) in near {
        let dx = (r.x - x).max(x - (r.x + r.w)).max(0.0);
        let dy = (r.y - y).max(y - (r.y + r.h)).max(0.0);
        let d = dx.hypot(dy);
        if d < BAND_MM.0 || d > BAND_MM.1 {
            continue;
        }
        let a = ((y - cy) / sy).atan2((x - cx) / sx);
        let s = ((a + std::f64::consts::PI) / std::f64::consts::TAU * SECTORS as f64) as usize;
        counts[s.min(SECTORS - 1)] += 1;
    }
    counts.iter().filter(|&&c| c >= SECTOR_PIXELS).count() as f32 / SECTORS as f32
}
