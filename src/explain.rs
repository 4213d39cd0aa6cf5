//! `todoke explain`: one scan through the same `Engine` as `run` and
//! `watch` (no batch, no ledger), and what each stage saw, as pictures and
//! words for IT staff and template authors.
//!
//! The stages say what they looked at through their own traces
//! (`RegisterTrace`, `ReadTrace`, `ValidateTrace`, `VouchTrace`), gathered
//! by the pipeline into a `PageTrace`; this module only draws and writes
//! them. Per page, in `OUT/page-N/`: `1-decoded.png`, `2-registered.png`,
//! `3-read.png` (each only as far as the page got), `explain.txt` in the
//! staff's language and `explain.json` with the codes. My Number is masked
//! in both texts and in the digits written on `3-read.png`; every file is
//! the owner's only, like a batch.

use crate::emit::{mask, private_dir, private_file, EmitError};
use crate::i18n::{self, t, ta, Labels, Lang};
use crate::pipeline::{ExplainedFile, PageTrace};
use crate::read::{self, BoxTrace, MarkState, ReadTrace};
use crate::register::{RegisterTrace, RegisteredPage, TemplateAttempt, MAX_MARK_RESIDUAL_MM};
use crate::template::{Field, RectMm, Template};
use crate::validate::{FieldResult, FieldStatus, UNREADABLE_BELOW};
use ab_glyph::FontArc;
use image::{GrayImage, Rgb, RgbImage};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Id of the page overlay among a record's images: what report.html and
/// the review card show for an unreadable page.
pub const PAGE_IMAGE: &str = "@page";

/// What `write` wrote for one page.
#[derive(Debug, Clone)]
pub struct PageWritten {
    pub page: usize,
    pub dir: PathBuf,
    /// Page status code (`validated`, `mismatch`, `skipped`, `unreadable`).
    pub status: String,
    pub reasons: Vec<String>,
    /// File names written in `dir`.
    pub files: Vec<&'static str>,
}

/// What `write` wrote.
#[derive(Debug, Clone, Default)]
pub struct ExplainSummary {
    pub pages: Vec<PageWritten>,
    /// Set when the file as a whole could not be read: its reason was
    /// written to `OUT/explain.txt` and `OUT/explain.json`.
    pub file_failed: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Write(#[from] EmitError),
    #[error("cannot encode {path}: {source}")]
    Encode {
        path: PathBuf,
        source: png::EncodingError,
    },
    #[error("the file has no page {page} (it has {pages})")]
    NoSuchPage { page: usize, pages: usize },
}

/// How one box (digit or checkbox) came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// As sure as its field demands.
    Sure,
    /// Read, but below the field's threshold (or a box neither empty nor marked).
    Doubtful,
    /// Nothing could be read: ink no digit fits, a box that cannot be judged.
    Failed,
}

impl Outcome {
    fn colour(self) -> Rgb<u8> {
        match self {
            Outcome::Sure => GREEN,
            Outcome::Doubtful => ORANGE,
            Outcome::Failed => RED,
        }
    }
}

const GREEN: Rgb<u8> = Rgb([0, 150, 40]);
const ORANGE: Rgb<u8> = Rgb([235, 120, 0]);
const RED: Rgb<u8> = Rgb([215, 0, 0]);
const BLUE: Rgb<u8> = Rgb([30, 90, 230]);
const PURPLE: Rgb<u8> = Rgb([160, 40, 200]);

/// Resolution of `2-registered.png` (about 150 dpi: the whole page at once).
const REGISTER_PX_PER_MM: f64 = 6.0;
/// Resolution of `3-read.png`: room for a digit and its confidence by each box.
const READ_PX_PER_MM: f64 = 8.0;
/// Resolution of the overlay in report.html and the review card.
const RECORD_PX_PER_MM: f64 = 4.0;

/// File names, in stage order.
pub const DECODED_PNG: &str = "1-decoded.png";
pub const REGISTERED_PNG: &str = "2-registered.png";
pub const READ_PNG: &str = "3-read.png";
pub const EXPLAIN_TXT: &str = "explain.txt";
pub const EXPLAIN_JSON: &str = "explain.json";

/// The digit box a digit cell was read as.
pub fn cell_outcome(cell: &crate::digits::CellReading, threshold: f32) -> Outcome {
    if cell.digit.is_none() && cell.confidence < UNREADABLE_BELOW {
        Outcome::Failed
    } else if cell.confidence >= threshold {
        Outcome::Sure
    } else {
        Outcome::Doubtful
    }
}

/// How a checkbox came out: unjudgeable ink fails, an uncertain box or
/// one below the field's threshold is doubtful.
pub fn box_outcome(b: &BoxTrace, m: Option<&read::MarkReading>, threshold: f32) -> Outcome {
    match m {
        _ if b.evidence.unjudgeable => Outcome::Failed,
        Some(m) if m.state != MarkState::Uncertain && m.confidence >= threshold => Outcome::Sure,
        _ => Outcome::Doubtful,
    }
}

fn font() -> Option<&'static FontArc> {
    static FONT: std::sync::OnceLock<Option<FontArc>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| crate::render::load_font().ok())
        .as_ref()
}

/// A faded copy of the scan to draw on, at `scale` canvas pixels per scan
/// pixel: the colours must stand out from the ink.
struct Canvas {
    img: RgbImage,
    scale: f64,
}

impl Canvas {
    fn new(image: &GrayImage, scale: f64) -> Canvas {
        let w = ((image.width() as f64 * scale).round() as u32).max(1);
        let h = ((image.height() as f64 * scale).round() as u32).max(1);
        // Box averaging when shrinking: quick, and little memory on the
        // largest pages `[decode]` lets through.
        let small = if scale < 1.0 {
            image::imageops::thumbnail(image, w, h)
        } else {
            image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle)
        };
        // Faded and in 16 greys: the scanner's noise on the paper becomes
        // plain white, which keeps the PNG small (a record carries one).
        let img = RgbImage::from_fn(w, h, |x, y| {
            let v = small.get_pixel(x, y)[0] as f32;
            let faded = 255.0 - (255.0 - v) * 0.55;
            let level = ((faded / 17.0).round() * 17.0).min(255.0) as u8;
            Rgb([level, level, level])
        });
        Canvas { img, scale }
    }

    fn at(&self, p: (f64, f64)) -> (f32, f32) {
        ((p.0 * self.scale) as f32, (p.1 * self.scale) as f32)
    }

    fn line(&mut self, a: (f64, f64), b: (f64, f64), colour: Rgb<u8>, thick: i32) {
        let (a, b) = (self.at(a), self.at(b));
        let r = thick / 2;
        for dx in -r..=(thick - 1 - r) {
            for dy in -r..=(thick - 1 - r) {
                let o = (dx as f32, dy as f32);
                imageproc::drawing::draw_line_segment_mut(
                    &mut self.img,
                    (a.0 + o.0, a.1 + o.1),
                    (b.0 + o.0, b.1 + o.1),
                    colour,
                );
            }
        }
    }

    fn quad(&mut self, q: [(f64, f64); 4], colour: Rgb<u8>, thick: i32) {
        for i in 0..4 {
            self.line(q[i], q[(i + 1) % 4], colour, thick);
        }
    }

    /// A template rectangle through the page's map.
    fn rect_mm(
        &mut self,
        hom: &crate::register::Homography,
        r: RectMm,
        colour: Rgb<u8>,
        thick: i32,
    ) {
        self.quad(corners(hom, r), colour, thick);
    }

    fn cross(&mut self, p: (f64, f64), half_px: f64, colour: Rgb<u8>) {
        let h = half_px / self.scale;
        self.line((p.0 - h, p.1), (p.0 + h, p.1), colour, 2);
        self.line((p.0, p.1 - h), (p.0, p.1 + h), colour, 2);
    }

    /// Text at a scan point, on a white halo so it reads over ink.
    fn text(&mut self, p: (f64, f64), px: f32, colour: Rgb<u8>, s: &str) {
        let Some(font) = font() else {
            return;
        };
        let (x, y) = self.at(p);
        let (x, y) = (x as i32, y as i32);
        for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1)] {
            imageproc::drawing::draw_text_mut(
                &mut self.img,
                Rgb([255, 255, 255]),
                x + dx,
                y + dy,
                px,
                font,
                s,
            );
        }
        imageproc::drawing::draw_text_mut(&mut self.img, colour, x, y, px, font, s);
    }
}

fn corners(hom: &crate::register::Homography, r: RectMm) -> [(f64, f64); 4] {
    [
        hom.apply(r.x, r.y),
        hom.apply(r.x + r.w, r.y),
        hom.apply(r.x + r.w, r.y + r.h),
        hom.apply(r.x, r.y + r.h),
    ]
}

/// The attempt worth drawing: the one that placed the page, else the last
/// template tried (they share the marks' geometry on the shipped forms).
fn chosen_attempt(trace: &RegisterTrace) -> Option<&TemplateAttempt> {
    trace
        .attempts
        .iter()
        .find(|a| a.side.is_some())
        .or(trace.attempts.last())
}

/// Scan pixels per millimetre: from the marks when the page was placed,
/// else from the image size against the paper.
fn scan_px_per_mm(
    image: &GrayImage,
    trace: &RegisterTrace,
    placed: Option<&RegisteredPage>,
) -> (f64, bool) {
    match (placed, chosen_attempt(trace)) {
        (Some(p), _) => (p.px_per_mm, true),
        // The marks were placed but named no side: their spacing still
        // gives the scale.
        (None, Some(a)) => match a.scale {
            Some(s) => (a.px_per_mm_guess * s, true),
            None => (a.px_per_mm_guess, false),
        },
        // A4 portrait, as every shipped form.
        (None, None) => (
            (image.width() as f64 / 210.0 + image.height() as f64 / 297.0) / 2.0,
            false,
        ),
    }
}

/// `2-registered.png`: where each corner mark was searched (blue square,
/// cross where the template expects it), where it was found (green) or
/// placed from the other three (purple), its offset in mm, the id code
/// cells as read (green when they named the side, red when not), and once
/// placed, the form's outline and an arrow to its top.
pub fn registered_overlay(
    image: &GrayImage,
    trace: &RegisterTrace,
    placed: Option<&RegisteredPage>,
    px_per_mm: f64,
) -> RgbImage {
    let (scan_ppm, _) = scan_px_per_mm(image, trace, placed);
    let mut c = Canvas::new(image, px_per_mm / scan_ppm);
    let text_px = (3.0 * px_per_mm) as f32;
    if let Some(a) = chosen_attempt(trace) {
        let mark_mm = a.mark_size_mm;
        for m in &a.marks {
            let [x0, y0, x1, y1] = m.search_px;
            c.quad([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], BLUE, 2);
            c.cross(m.expected_px, 6.0, BLUE);
            let half = mark_mm / 2.0 * scan_ppm;
            let square = |p: (f64, f64)| {
                [
                    (p.0 - half, p.1 - half),
                    (p.0 + half, p.1 - half),
                    (p.0 + half, p.1 + half),
                    (p.0 - half, p.1 + half),
                ]
            };
            let at = match (m.found_px, m.placed_px) {
                (Some(f), _) => {
                    c.quad(square(f), GREEN, 3);
                    c.cross(f, 10.0, GREEN);
                    Some(f)
                }
                (None, Some(p)) => {
                    c.quad(square(p), PURPLE, 3);
                    c.cross(p, 10.0, PURPLE);
                    Some(p)
                }
                (None, None) => {
                    c.line((x0, y0), (x1, y1), RED, 3);
                    c.line((x1, y0), (x0, y1), RED, 3);
                    None
                }
            };
            if let (Some(p), Some(r)) = (at, m.residual_mm) {
                let colour = if r <= MAX_MARK_RESIDUAL_MM / 3.0 {
                    GREEN
                } else if r <= MAX_MARK_RESIDUAL_MM {
                    ORANGE
                } else {
                    RED
                };
                // Inside the page, beside the mark, whichever corner it is.
                let toward_x = if p.0 < image.width() as f64 / 2.0 {
                    1.0
                } else {
                    -4.0
                };
                let toward_y = if p.1 < image.height() as f64 / 2.0 {
                    1.2
                } else {
                    -1.6
                };
                c.text(
                    (p.0 + toward_x * half * 1.4, p.1 + toward_y * half * 1.4),
                    text_px,
                    colour,
                    &format!("{r:.2} mm"),
                );
            }
        }
        let named = |turned: bool| a.side.is_some() && a.turned == turned;
        for read in &a.id_codes {
            if read.cells_px.is_empty() || (a.side.is_some() && !named(read.turned)) {
                continue;
            }
            let colour = if named(read.turned) { GREEN } else { RED };
            for (q, share) in read.cells_px.iter().zip(&read.shares) {
                c.quad(*q, colour, if *share > 0.5 { 3 } else { 1 });
            }
            // The bits read, just outside the strip on the page's inner side.
            let pts = read.cells_px.iter().flatten();
            let x0 = pts.clone().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let y0 = pts.clone().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let y1 = pts.map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            let y = if y0 < image.height() as f64 / 2.0 {
                y1 + 1.0 * scan_ppm
            } else {
                y0 - 5.0 * scan_ppm
            };
            c.text((x0, y), text_px, colour, &read.bits);
        }
    }
    if let Some(p) = placed {
        let page = RectMm {
            x: 0.0,
            y: 0.0,
            w: p.template.page.width_mm,
            h: p.template.page.height_mm,
        };
        c.rect_mm(&p.to_image, page, GREEN, 1);
        // An arrow to the form's top, drawn through the map: it points
        // down on a page scanned upside down.
        let cx = p.template.page.width_mm / 2.0;
        let from = p.to_image.apply(cx, 65.0);
        let tip = p.to_image.apply(cx, 35.0);
        let l = p.to_image.apply(cx - 8.0, 45.0);
        let r = p.to_image.apply(cx + 8.0, 45.0);
        c.line(from, tip, PURPLE, 4);
        c.line(l, tip, PURPLE, 4);
        c.line(r, tip, PURPLE, 4);
    }
    c.img
}

/// `3-read.png`: every digit box and checkbox where it was looked for,
/// coloured by outcome; above each digit box the digit read, below it its
/// confidence; beside each checkbox its ink share (a thick frame: marked);
/// each field framed in its status' colour.
pub fn read_overlay(
    image: &GrayImage,
    page: &RegisteredPage,
    trace: &ReadTrace,
    reading: &crate::read::PageReading,
    fields: &BTreeMap<String, FieldResult>,
) -> RgbImage {
    let mut c = Canvas::new(image, READ_PX_PER_MM / page.px_per_mm);
    let hom = page.to_image;
    let small = (2.2 * READ_PX_PER_MM) as f32;
    let digit_px = (3.6 * READ_PX_PER_MM) as f32;
    for (field, ft) in page.side.fields.iter().zip(&trace.fields) {
        let Some(r) = reading.fields.iter().find(|r| r.id == field.id) else {
            continue;
        };
        let threshold = field.threshold(&page.template.defaults);
        let frame = match fields.get(&field.id).map(|f| f.status) {
            Some(FieldStatus::Ok) => GREEN,
            Some(FieldStatus::LowConfidence) => ORANGE,
            _ => RED,
        };
        c.rect_mm(&hom, read::field_area(field).grow(2.5), frame, 1);
        let n = ft.cells_mm.len();
        for (i, rect) in ft.cells_mm.iter().enumerate() {
            let Some(cell) = r.cells.get(i) else {
                continue;
            };
            let o = cell_outcome(cell, threshold);
            c.rect_mm(&hom, *rect, o.colour(), 2);
            let digit = match cell.digit {
                _ if field.sensitive && i + 4 < n => "*".to_string(),
                Some(d) => d.to_string(),
                None if o == Outcome::Failed => "?".into(),
                None => "_".into(),
            };
            c.text(
                hom.apply(rect.x + rect.w * 0.3, rect.y - 4.2),
                digit_px,
                o.colour(),
                &digit,
            );
            c.text(
                hom.apply(rect.x, rect.y + rect.h + 0.2),
                small,
                o.colour(),
                &short_conf(cell.confidence),
            );
        }
        for (i, b) in ft.boxes.iter().enumerate() {
            let m = r.marks.get(i);
            let o = box_outcome(b, m, threshold);
            let thick = if m.is_some_and(|m| m.state == MarkState::Marked) {
                4
            } else {
                2
            };
            c.rect_mm(&hom, b.rect_mm, o.colour(), thick);
            c.text(
                hom.apply(b.rect_mm.x - 0.5, b.rect_mm.y - 2.6),
                small,
                o.colour(),
                &format!("{:.0}%", b.evidence.ink * 100.0),
            );
        }
    }
    c.img
}

/// A confidence in a few characters: `.997`, `1.00`.
fn short_conf(c: f32) -> String {
    if c >= 0.9995 {
        "1.00".into()
    } else {
        format!("{c:.3}").trim_start_matches('0').to_string()
    }
}

/// The page overlay a record carries for an unreadable page (report.html,
/// the review card): `2-registered.png` at a smaller size. `None` only if
/// encoding fails.
pub fn page_overlay_png(
    image: &GrayImage,
    trace: &RegisterTrace,
    placed: Option<&RegisteredPage>,
) -> Option<Vec<u8>> {
    let img = registered_overlay(image, trace, placed, RECORD_PX_PER_MM);
    encode_png(
        Path::new(PAGE_IMAGE),
        img.width(),
        img.height(),
        png::ColorType::Rgb,
        img.as_raw(),
        Some(RECORD_PX_PER_MM * 25.4),
    )
    .ok()
}

/// A PNG, with its resolution when known (pHYs, in dots per metre).
fn encode_png(
    path: &Path,
    width: u32,
    height: u32,
    colour: png::ColorType,
    data: &[u8],
    dpi: Option<f64>,
) -> Result<Vec<u8>, ExplainError> {
    let err = |source| ExplainError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(colour);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(dpi) = dpi {
            let ppm = (dpi / 0.0254).round() as u32;
            enc.set_pixel_dims(Some(png::PixelDimensions {
                xppu: ppm,
                yppu: ppm,
                unit: png::Unit::Meter,
            }));
        }
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(data).map_err(err)?;
        w.finish().map_err(err)?;
    }
    Ok(out)
}

/// Writes what `explained` saw into `out`: one folder per page (`page-N`),
/// or, when the file as a whole could not be read, its reason in `out`.
pub fn write(
    out: &Path,
    explained: &ExplainedFile,
    templates: &[Template],
    register_rows: usize,
    page: Option<usize>,
    lang: Lang,
) -> Result<ExplainSummary, ExplainError> {
    private_dir(out)?;
    let labels = Labels::from_templates(templates);
    let mut summary = ExplainSummary::default();
    if let Some(reason) = &explained.quarantine {
        let (code, detail) = reason.split_once(": ").unwrap_or((reason, ""));
        let text = format!(
            "{}\n{}\n{}\n{}\n",
            ta(
                lang,
                "ex-file-failed",
                &[(
                    "reason",
                    i18n::reason_text(lang, code, &labels, None).into()
                )]
            ),
            ta(
                lang,
                "ex-failed-at",
                &[("stage", t(lang, "ex-stage-decode").into())]
            ),
            ta(
                lang,
                "ex-error",
                &[("code", code.into()), ("message", detail.into())]
            ),
            ta(lang, "ex-sha", &[("sha", explained.sha256.as_str().into())]),
        );
        let j = json!({
            "sha256": explained.sha256,
            "failed_stage": "decode",
            "error": { "stage": "decode", "code": code, "message": detail },
        });
        private_file(&out.join(EXPLAIN_TXT), text.as_bytes())?;
        private_file(&out.join(EXPLAIN_JSON), &pretty(&j))?;
        summary.file_failed = Some(reason.clone());
        return Ok(summary);
    }
    if let Some(p) = page {
        if explained.pages.is_empty() {
            return Err(ExplainError::NoSuchPage {
                page: p,
                pages: explained.page_count,
            });
        }
    }
    let file = explained
        .pages
        .first()
        .and_then(|p| p.record.as_ref())
        .map(|r| r.source.clone())
        .unwrap_or_default();
    for pt in &explained.pages {
        let dir = out.join(format!("page-{}", pt.page));
        private_dir(&dir)?;
        // Files of an earlier explain of this page would tell a stage
        // succeeded that did not this time.
        for name in [
            DECODED_PNG,
            REGISTERED_PNG,
            READ_PNG,
            EXPLAIN_TXT,
            EXPLAIN_JSON,
        ] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        let files = write_page(
            &dir,
            pt,
            &file,
            &explained.sha256,
            &labels,
            register_rows,
            lang,
        )?;
        let record = pt.record.as_ref();
        summary.pages.push(PageWritten {
            page: pt.page,
            dir,
            status: record
                .map(|r| r.status.code().to_string())
                .unwrap_or_default(),
            reasons: record.map(|r| r.reasons.clone()).unwrap_or_default(),
            files,
        });
    }
    Ok(summary)
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("explain.json serialises");
    b.push(b'\n');
    b
}

/// A number for explain.json; infinity (rivals of a reading that breaks
/// its own rules) as the string `inf`, since JSON has no infinity.
fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        json!("inf")
    }
}

fn odds_text(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2e}")
    } else {
        "∞".into()
    }
}

/// The stage a page stopped at, from its record's reason.
fn failed_stage(pt: &PageTrace) -> Option<&'static str> {
    let r = pt.record.as_ref()?;
    if r.status != crate::emit::PageStatus::Unreadable {
        return None;
    }
    Some(if pt.decode_error.is_some() {
        "decode"
    } else if r.reasons.iter().any(|c| c == "read_error") {
        "read"
    } else {
        "register"
    })
}

fn corner_text(lang: Lang, corner: &str) -> String {
    t(lang, &format!("ex-corner-{corner}"))
}

/// A field's value as explain shows it: masked when sensitive.
fn value_shown(field: Option<&Field>, f: &FieldResult) -> String {
    let s = match &f.value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    if field.is_some_and(|f| f.sensitive) {
        mask(&s)
    } else {
        s
    }
}

#[allow(clippy::too_many_arguments)]
fn write_page(
    dir: &Path,
    pt: &PageTrace,
    file: &str,
    sha: &str,
    labels: &Labels,
    register_rows: usize,
    lang: Lang,
) -> Result<Vec<&'static str>, ExplainError> {
    let mut files = Vec::new();
    let mut txt = String::new();
    let mut j = serde_json::Map::new();
    let record = pt.record.as_ref();
    let form = record.and_then(|r| r.form.as_deref());
    let _ = writeln!(
        txt,
        "{}",
        ta(
            lang,
            "ex-title",
            &[("file", file.into()), ("page", pt.page.into())]
        )
    );
    let _ = writeln!(txt, "{}", ta(lang, "ex-sha", &[("sha", sha.into())]));
    j.insert("file".into(), json!(file));
    j.insert("page".into(), json!(pt.page));
    j.insert("sha256".into(), json!(sha));
    if let Some(r) = record {
        let _ = writeln!(
            txt,
            "{}",
            ta(
                lang,
                "ex-outcome",
                &[("status", i18n::page_status(lang, r.status.code()).into())]
            )
        );
        if !r.reasons.is_empty() {
            let _ = writeln!(txt, "{}", t(lang, "ex-reasons"));
            for code in &r.reasons {
                let _ = writeln!(txt, "  - {}", i18n::reason_text(lang, code, labels, form));
            }
        }
        j.insert(
            "outcome".into(),
            json!({ "status": r.status.code(), "reasons": r.reasons, "form": r.form, "side": r.side, "turned": r.turned }),
        );
    }
    let stage = failed_stage(pt);
    j.insert("failed_stage".into(), json!(stage));
    if let Some(s) = stage {
        let _ = writeln!(
            txt,
            "{}",
            ta(
                lang,
                "ex-failed-at",
                &[("stage", t(lang, &format!("ex-stage-{s}")).into())]
            )
        );
    }

    // 1. decode
    let _ = writeln!(txt, "\n{}", t(lang, "ex-stage-decode"));
    if let Some((code, message)) = &pt.decode_error {
        let _ = writeln!(
            txt,
            "  {}",
            ta(
                lang,
                "ex-error",
                &[
                    ("code", code.as_str().into()),
                    ("message", message.as_str().into())
                ]
            )
        );
        j.insert("error".into(), json!({ "stage": "decode", "code": code, "message": message, "evidence": { "page": pt.page } }));
    }
    let Some(image) = &pt.image else {
        return finish(dir, txt, j, files, lang);
    };
    let placed = pt.registered.as_ref();
    let (ppm, from_marks) = scan_px_per_mm(image, &pt.register, placed);
    let dpi = ppm * 25.4;
    let _ = writeln!(
        txt,
        "  {}",
        ta(
            lang,
            "ex-decoded",
            &[
                ("width", image.width().into()),
                ("height", image.height().into()),
                ("dpi", format!("{dpi:.0}").into()),
                (
                    "source",
                    t(
                        lang,
                        if from_marks {
                            "ex-dpi-marks"
                        } else {
                            "ex-dpi-size"
                        }
                    )
                    .into()
                ),
            ]
        )
    );
    j.insert(
        "decode".into(),
        json!({ "width": image.width(), "height": image.height(), "dpi": (dpi * 10.0).round() / 10.0,
                "dpi_from": if from_marks { "marks" } else { "page_size" } }),
    );
    let path = dir.join(DECODED_PNG);
    let png = encode_png(
        &path,
        image.width(),
        image.height(),
        png::ColorType::Grayscale,
        image.as_raw(),
        Some(dpi),
    )?;
    private_file(&path, &png)?;
    files.push(DECODED_PNG);

    // 2. register
    let _ = writeln!(txt, "\n{}", t(lang, "ex-stage-register"));
    register_text(&mut txt, &pt.register, lang);
    let mut reg = serde_json::to_value(&pt.register).unwrap_or(Value::Null);
    if let (Some(p), Value::Object(m)) = (placed, &mut reg) {
        m.insert(
            "placed".into(),
            json!({ "template": p.template.id, "side": p.side.id, "turned": p.turned,
                    "px_per_mm": p.px_per_mm, "covered_mark": p.covered_mark, "ink_threshold": p.ink_threshold,
                    "mm_to_px": p.to_image.0 }),
        );
    }
    j.insert("register".into(), reg);
    let overlay = registered_overlay(image, &pt.register, placed, REGISTER_PX_PER_MM);
    let path = dir.join(REGISTERED_PNG);
    let png = encode_png(
        &path,
        overlay.width(),
        overlay.height(),
        png::ColorType::Rgb,
        overlay.as_raw(),
        Some(REGISTER_PX_PER_MM * 25.4),
    )?;
    private_file(&path, &png)?;
    files.push(REGISTERED_PNG);
    let Some(p) = placed else {
        if stage == Some("register") {
            let err = pt.register.attempts.last().and_then(|a| a.error.clone());
            let (code, message) = match (&err, record) {
                (Some(e), _) => (e.code().to_string(), e.to_string()),
                (None, Some(r)) => (
                    r.reasons.first().cloned().unwrap_or_default(),
                    r.detail.clone().unwrap_or_default(),
                ),
                (None, None) => (String::new(), String::new()),
            };
            let evidence = match &err {
                Some(e) => serde_json::to_value(e).unwrap_or(Value::Null),
                None => json!("Blank"),
            };
            let _ = writeln!(
                txt,
                "  {}",
                ta(
                    lang,
                    "ex-error",
                    &[
                        ("code", code.as_str().into()),
                        ("message", message.as_str().into())
                    ]
                )
            );
            let _ = writeln!(
                txt,
                "  {}",
                ta(
                    lang,
                    "ex-evidence",
                    &[("evidence", evidence.to_string().into())]
                )
            );
            j.insert("error".into(), json!({ "stage": "register", "code": code, "message": message, "evidence": evidence }));
        }
        return finish(dir, txt, j, files, lang);
    };
    let way = t(
        lang,
        if p.turned {
            "ex-way-turned"
        } else {
            "ex-way-upright"
        },
    );
    let _ = writeln!(
        txt,
        "  {}",
        ta(
            lang,
            "ex-registered",
            &[
                ("title", p.template.title.as_str().into()),
                ("form", p.template.id.as_str().into()),
                ("side", p.side.id.as_str().into()),
                ("way", way.into()),
                ("ppm", format!("{:.2}", p.px_per_mm).into()),
            ]
        )
    );
    if let Some(cm) = p.covered_mark {
        let _ = writeln!(
            txt,
            "  {}",
            ta(
                lang,
                "ex-covered",
                &[("corner", corner_text(lang, cm.corner).into())]
            )
        );
    }
    if !p.side.read {
        let _ = writeln!(txt, "  {}", t(lang, "ex-side-not-read"));
        return finish(dir, txt, j, files, lang);
    }

    // 3. read
    let _ = writeln!(txt, "\n{}", t(lang, "ex-stage-read"));
    let (Some(rt), Some(reading)) = (&pt.read, &pt.reading) else {
        if let Some(r) = record {
            let message = r.detail.clone().unwrap_or_default();
            let _ = writeln!(
                txt,
                "  {}",
                ta(
                    lang,
                    "ex-error",
                    &[
                        ("code", "read_error".into()),
                        ("message", message.as_str().into())
                    ]
                )
            );
            j.insert("error".into(), json!({ "stage": "read", "code": "read_error", "message": message, "evidence": { "side": p.side.id } }));
        }
        return finish(dir, txt, j, files, lang);
    };
    let empty = BTreeMap::new();
    let results = record.map(|r| &r.fields).unwrap_or(&empty);
    let _ = writeln!(
        txt,
        "  {}",
        ta(
            lang,
            "ex-bilevel",
            &[(
                "yes",
                t(lang, if rt.bilevel { "ex-yes" } else { "ex-no" }).into()
            )]
        )
    );
    let mut jfields = Vec::new();
    for (field, ft) in p.side.fields.iter().zip(&rt.fields) {
        let Some(r) = reading.fields.iter().find(|r| r.id == field.id) else {
            continue;
        };
        let threshold = field.threshold(&p.template.defaults);
        let result = results.get(&field.id);
        let (value, conf, status) = match result {
            Some(f) => (value_shown(Some(field), f), f.confidence, f.status),
            None => (String::new(), 0.0, FieldStatus::Missing),
        };
        let _ = writeln!(
            txt,
            "  {}",
            ta(
                lang,
                "ex-field",
                &[
                    ("label", labels.field(form, &field.id).into()),
                    ("id", field.id.as_str().into()),
                    ("value", i18n::date_both(lang, &value).into()),
                    ("conf", format!("{conf:.4}").into()),
                    ("threshold", format!("{threshold}").into()),
                    ("status", i18n::field_status(lang, status.code()).into()),
                ]
            )
        );
        if let Some(reason) = status.reason(&field.id) {
            let _ = writeln!(
                txt,
                "      {}",
                i18n::reason_text(lang, &reason, labels, form)
            );
        }
        let n = r.cells.len();
        let mut jcells = Vec::new();
        let mut shown = Vec::new();
        for (i, cell) in r.cells.iter().enumerate() {
            let o = cell_outcome(cell, threshold);
            let hidden = field.sensitive && i + 4 < n;
            let digit = match cell.digit {
                _ if hidden => "*".to_string(),
                Some(d) => d.to_string(),
                None if o == Outcome::Failed => "?".into(),
                None => "_".into(),
            };
            shown.push(format!("{digit} {:.4}", cell.confidence));
            jcells.push(json!({
                "digit": if hidden { json!("*") } else { json!(cell.digit) },
                "confidence": cell.confidence,
                "second": if hidden { Value::Null } else { json!(cell.second) },
                "outcome": o,
                "rect_mm": ft.cells_mm.get(i),
            }));
        }
        if !shown.is_empty() {
            let _ = writeln!(
                txt,
                "      {}",
                ta(lang, "ex-cells", &[("cells", shown.join(" · ").into())])
            );
        }
        let mut jboxes = Vec::new();
        for (i, b) in ft.boxes.iter().enumerate() {
            let m = r.marks.get(i);
            let o = box_outcome(b, m, threshold);
            let state = m.map(|m| m.state).unwrap_or(MarkState::Uncertain);
            let state_id = match state {
                MarkState::Empty => "ex-state-empty",
                MarkState::Marked => "ex-state-marked",
                MarkState::Uncertain => "ex-state-uncertain",
            };
            let pct = |x: f32| format!("{:.1}%", x * 100.0);
            let _ = writeln!(
                txt,
                "      {}",
                ta(
                    lang,
                    "ex-box",
                    &[
                        (
                            "label",
                            field
                                .options
                                .get(i)
                                .map(|o| o.label.as_str())
                                .unwrap_or("")
                                .into()
                        ),
                        ("state", t(lang, state_id).into()),
                        (
                            "conf",
                            format!("{:.3}", m.map(|m| m.confidence).unwrap_or(0.0)).into()
                        ),
                        ("ink", pct(b.evidence.ink).into()),
                        ("faint", pct(b.evidence.faint).into()),
                        ("enclosure", pct(b.evidence.enclosure).into()),
                        (
                            "unjudgeable",
                            if b.evidence.unjudgeable {
                                t(lang, "ex-box-unjudgeable")
                            } else {
                                String::new()
                            }
                            .into()
                        ),
                    ]
                )
            );
            jboxes.push(json!({
                "option": field.options.get(i).map(|o| o.code.clone()),
                "rect_mm": b.rect_mm,
                "evidence": b.evidence,
                "verdict": b.verdict,
                "state": state,
                "confidence": m.map(|m| m.confidence),
                "outcome": o,
            }));
        }
        jfields.push(json!({
            "id": field.id,
            "value": result.map(|f| value_shown(Some(field), f)),
            "confidence": conf,
            "threshold": threshold,
            "status": status.code(),
            "reason": status.reason(&field.id),
            "cells": jcells,
            "boxes": jboxes,
        }));
    }
    j.insert(
        "read".into(),
        json!({ "bilevel": rt.bilevel, "fields": jfields }),
    );
    let overlay = read_overlay(image, p, rt, reading, results);
    let path = dir.join(READ_PNG);
    let png = encode_png(
        &path,
        overlay.width(),
        overlay.height(),
        png::ColorType::Rgb,
        overlay.as_raw(),
        Some(READ_PX_PER_MM * 25.4),
    )?;
    private_file(&path, &png)?;
    files.push(READ_PNG);

    // 4. validate
    let _ = writeln!(txt, "\n{}", t(lang, "ex-stage-validate"));
    if let Some(vt) = &pt.validate {
        if let Some(day) = vt.received_on {
            let _ = writeln!(
                txt,
                "  {}",
                ta(lang, "ex-received", &[("day", day.to_string().into())])
            );
        }
        for rel in &vt.broken_relations {
            let weeks = rel
                .plus_weeks_of
                .as_deref()
                .map(|w| {
                    ta(
                        lang,
                        "ex-relation-weeks",
                        &[("weeks", labels.field(form, w).into())],
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                txt,
                "  {}",
                ta(
                    lang,
                    "ex-relation",
                    &[
                        ("earlier", labels.field(form, &rel.earlier).into()),
                        ("later", labels.field(form, &rel.later).into()),
                        ("weeks", weeks.into()),
                        ("lo", rel.days[0].into()),
                        ("hi", rel.days[1].into()),
                    ]
                )
            );
        }
        if vt.vouching.is_empty() {
            let _ = writeln!(txt, "  {}", t(lang, "ex-rules-none"));
        }
        for v in &vt.vouching {
            let decision = match v.not_searched {
                Some(why) => t(lang, &format!("ex-rule-{why}")),
                None => t(lang, &format!("ex-rule-{}", v.decision)),
            };
            let _ = writeln!(
                txt,
                "  {}",
                ta(
                    lang,
                    "ex-rule-vouch",
                    &[
                        ("field", labels.field(form, &v.field).into()),
                        ("kind", t(lang, &format!("ex-rule-kind-{}", v.kind)).into()),
                        (
                            "fields",
                            v.fields
                                .iter()
                                .map(|f| labels.field(form, f))
                                .collect::<Vec<_>>()
                                .join("・")
                                .into()
                        ),
                        (
                            "rivals",
                            v.rivals.map(odds_text).unwrap_or_else(|| "-".into()).into()
                        ),
                        ("limit", odds_text(v.limit).into()),
                        ("decision", decision.into()),
                    ]
                )
            );
        }
        j.insert(
            "validate".into(),
            json!({
                "received_on": vt.received_on,
                "broken_relations": vt.broken_relations,
                "vouching": vt.vouching.iter().map(|v| json!({
                    "field": v.field, "kind": v.kind, "fields": v.fields, "limit": num(v.limit),
                    "rivals": v.rivals.map(num), "not_searched": v.not_searched, "decision": v.decision,
                })).collect::<Vec<_>>(),
            }),
        );
    }

    // 5. match
    let _ = writeln!(txt, "\n{}", t(lang, "ex-stage-match"));
    let _ = writeln!(
        txt,
        "  {}",
        ta(lang, "ex-register-rows", &[("rows", register_rows.into())])
    );
    if let Some(m) = &pt.matched {
        use crate::matching::MatchOutcome;
        let line = match &m.outcome {
            MatchOutcome::Matched { row } => {
                ta(lang, "ex-match-matched", &[("row", (row + 1).into())])
            }
            MatchOutcome::RegisterNotFound => t(lang, "ex-match-not-found"),
            MatchOutcome::BirthdateMismatch { row } => {
                ta(lang, "ex-match-birth", &[("row", (row + 1).into())])
            }
            MatchOutcome::NotAttempted => t(lang, "ex-match-not-attempted"),
        };
        let _ = writeln!(txt, "  {line}");
        let mut jm = json!({ "outcome": m.outcome });
        if let Some(k) = &pt.key_vouch {
            match k.not_asked {
                Some(why) => {
                    let _ = writeln!(
                        txt,
                        "  {}",
                        ta(
                            lang,
                            "ex-vouch-not-asked",
                            &[("why", t(lang, &format!("ex-vouch-why-{why}")).into())]
                        )
                    );
                }
                None => {
                    let outcome = k.outcome.as_deref().unwrap_or("no_row");
                    let kind = outcome.split(':').next().unwrap_or(outcome);
                    let mut said = t(lang, &format!("ex-vouch-{kind}"));
                    if let Some(why) = outcome.strip_prefix("doubtful:") {
                        let why = i18n::why_text(lang, &format!("as_read_but_{why}"));
                        let _ = match lang {
                            Lang::Ja => write!(said, "（{why}）"),
                            Lang::En => write!(said, " ({why})"),
                        };
                    }
                    let _ = writeln!(
                        txt,
                        "  {}",
                        ta(
                            lang,
                            "ex-vouch",
                            &[
                                ("outcome", said.into()),
                                (
                                    "row",
                                    k.trace
                                        .row
                                        .map(|r| (r + 1).to_string())
                                        .unwrap_or_else(|| "-".into())
                                        .into()
                                ),
                                (
                                    "weakest",
                                    k.trace
                                        .weakest_cell
                                        .map(|w| format!("{w:.4}"))
                                        .unwrap_or_else(|| "-".into())
                                        .into()
                                ),
                                ("floor", format!("{}", k.trace.cell_floor).into()),
                                (
                                    "rivals",
                                    k.trace
                                        .rivals
                                        .map(odds_text)
                                        .unwrap_or_else(|| "-".into())
                                        .into()
                                ),
                                ("max", odds_text(k.trace.max_rivals).into()),
                            ]
                        )
                    );
                }
            }
            if let Value::Object(o) = &mut jm {
                o.insert(
                    "register_vouch".into(),
                    json!({ "not_asked": k.not_asked, "outcome": k.outcome, "row": k.trace.row,
                            "weakest_cell": k.trace.weakest_cell, "rivals": k.trace.rivals.map(num),
                            "cell_floor": k.trace.cell_floor, "max_rivals": num(k.trace.max_rivals) }),
                );
            }
        }
        let candidates = record.map(|r| r.candidates.as_slice()).unwrap_or(&[]);
        if !candidates.is_empty() {
            let _ = writeln!(txt, "  {}", t(lang, "ex-candidates"));
            for (n, c) in candidates.iter().enumerate() {
                let _ = writeln!(
                    txt,
                    "    {}",
                    ta(
                        lang,
                        "ex-candidate",
                        &[
                            ("n", (n + 1).into()),
                            ("atena", c.atena_no.as_str().into()),
                            ("birth", i18n::date_both(lang, &c.birth_date).into()),
                            ("why", i18n::why_text(lang, &c.why).into()),
                        ]
                    )
                );
            }
        }
        // Names stay out: explain is for finding why a page failed, and a
        // row's number, keys and the reason it is offered say that.
        if let Value::Object(o) = &mut jm {
            o.insert(
                "candidates".into(),
                json!(candidates
                    .iter()
                    .map(|c| json!({ "atena_no": c.atena_no, "birth_date": c.birth_date, "why": c.why }))
                    .collect::<Vec<_>>()),
            );
        }
        j.insert("match".into(), jm);
    }
    finish(dir, txt, j, files, lang)
}

fn register_text(txt: &mut String, trace: &RegisterTrace, lang: Lang) {
    match (trace.paper, trace.ink, trace.ink_threshold) {
        (Some(p), Some(i), Some(th)) => {
            let _ = writeln!(
                txt,
                "  {}",
                ta(
                    lang,
                    "ex-levels",
                    &[
                        ("paper", p.into()),
                        ("ink", i.into()),
                        ("threshold", th.into())
                    ]
                )
            );
        }
        _ => {
            let _ = writeln!(txt, "  {}", t(lang, "ex-blank"));
        }
    }
    for a in &trace.attempts {
        let _ = writeln!(
            txt,
            "  {}",
            ta(
                lang,
                "ex-attempt",
                &[
                    ("form", a.template.as_str().into()),
                    ("ppm", format!("{:.2}", a.px_per_mm_guess).into())
                ]
            )
        );
        for m in &a.marks {
            let corner = corner_text(lang, m.corner);
            let line = match (m.found_px, m.placed_px) {
                (Some((x, y)), _) if m.residual_mm.is_none() => ta(
                    lang,
                    "ex-mark-found-three",
                    &[
                        ("corner", corner.into()),
                        ("x", format!("{x:.1}").into()),
                        ("y", format!("{y:.1}").into()),
                    ],
                ),
                (Some((x, y)), _) => ta(
                    lang,
                    "ex-mark-found",
                    &[
                        ("corner", corner.into()),
                        ("x", format!("{x:.1}").into()),
                        ("y", format!("{y:.1}").into()),
                        (
                            "residual",
                            m.residual_mm
                                .map(|r| format!("{r:.2}"))
                                .unwrap_or_else(|| "-".into())
                                .into(),
                        ),
                    ],
                ),
                (None, Some((x, y))) => ta(
                    lang,
                    "ex-mark-covered",
                    &[
                        ("corner", corner.into()),
                        ("x", format!("{x:.1}").into()),
                        ("y", format!("{y:.1}").into()),
                        (
                            "residual",
                            m.residual_mm
                                .map(|r| format!("{r:.2} mm"))
                                .unwrap_or_else(|| t(lang, "ex-residual-none"))
                                .into(),
                        ),
                    ],
                ),
                (None, None) => {
                    let [x0, y0, x1, y1] = m.search_px;
                    ta(
                        lang,
                        "ex-mark-missing",
                        &[
                            ("corner", corner.into()),
                            ("x0", format!("{x0:.0}").into()),
                            ("y0", format!("{y0:.0}").into()),
                            ("x1", format!("{x1:.0}").into()),
                            ("y1", format!("{y1:.0}").into()),
                        ],
                    )
                }
            };
            let _ = writeln!(txt, "    {line}");
        }
        if let Some(s) = a.scale {
            let _ = writeln!(
                txt,
                "    {}",
                ta(lang, "ex-scale", &[("scale", format!("{s:.3}").into())])
            );
        }
        for read in &a.id_codes {
            let code = match read.code {
                Some(c) => c.to_string(),
                None => t(lang, "ex-idcode-none"),
            };
            let way = t(
                lang,
                if read.turned {
                    "ex-way-turned"
                } else {
                    "ex-way-upright"
                },
            );
            let _ = writeln!(
                txt,
                "    {}",
                ta(
                    lang,
                    "ex-idcode",
                    &[
                        ("way", way.into()),
                        ("bits", read.bits.as_str().into()),
                        ("code", code.into())
                    ]
                )
            );
        }
        if let Some(e) = &a.error {
            let _ = writeln!(
                txt,
                "    {}",
                ta(
                    lang,
                    "ex-error",
                    &[("code", e.code().into()), ("message", e.to_string().into())]
                )
            );
        }
    }
}

fn finish(
    dir: &Path,
    mut txt: String,
    mut j: serde_json::Map<String, Value>,
    mut files: Vec<&'static str>,
    lang: Lang,
) -> Result<Vec<&'static str>, ExplainError> {
    let _ = writeln!(txt, "\n{}", t(lang, "ex-images"));
    for f in &files {
        let id = match *f {
            DECODED_PNG => "ex-img-decoded",
            REGISTERED_PNG => "ex-img-registered",
            _ => "ex-img-read",
        };
        let _ = writeln!(txt, "  {}", t(lang, id));
    }
    let _ = writeln!(txt, "{}", t(lang, "ex-legend"));
    j.insert("images".into(), json!(files));
    private_file(&dir.join(EXPLAIN_TXT), txt.as_bytes())?;
    private_file(&dir.join(EXPLAIN_JSON), &pretty(&Value::Object(j)))?;
    files.push(EXPLAIN_TXT);
    files.push(EXPLAIN_JSON);
    Ok(files)
}
