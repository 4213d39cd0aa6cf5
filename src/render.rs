//! Draws the blank paper form from its template.
//!
//! The template is the only input, so what is printed and what is read can
//! never drift apart. Text sizes are em sizes in millimetres and text boxes
//! run from `y` to `y + size`, which is what a template author measures
//! clearances against (see forms/README.md).

use crate::pdfwrite::{write_pdf, PdfPage};
use crate::template::{self, Field, FieldKind, RectMm, Side, Template};
use ab_glyph::{point, Font, FontArc, PxScale, ScaleFont};
use anyhow::Context;
use image::{GrayImage, Luma};
use std::path::{Path, PathBuf};

/// Em size of field labels.
pub const LABEL_MM: f64 = 3.5;
/// Em size of checkbox option labels.
pub const OPTION_MM: f64 = 3.3;
/// Em size of group suffixes (年 月 日) and printed eras.
pub const SUFFIX_MM: f64 = 3.5;
/// Clear space between a box and the text printed next to it.
pub const TEXT_CLEAR_MM: f64 = 2.2;
/// Space between a printed era and its date's first box.
pub const ERA_CLEAR_MM: f64 = 3.0;
/// Printed border of digit boxes and checkboxes.
pub const LINE_MM: f64 = 0.3;
/// Form title: centred, top at this y, this em size.
pub const TITLE_Y_MM: f64 = 17.5;
pub const TITLE_MM: f64 = 7.0;
/// Side id and version in small print, centred near the bottom edge.
pub const SIDE_ID_Y_MM: f64 = 284.0;
pub const SIDE_ID_MM: f64 = 2.4;
/// Top of the ideographic em box above the baseline, in em.
const ASCENT_EM: f64 = 0.88;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/takao-gothic/TakaoGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read font {path}: {source}")]
    FontIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable font: {reason}")]
    FontFormat { path: PathBuf, reason: String },
    #[error("no Japanese font found: set TODOKE_FONT or install fonts-ipafont-gothic (looked in {looked})")]
    NoFont { looked: String },
}

/// The font for printed text: `TODOKE_FONT`, else the first common CJK font
/// installed. Form text is Japanese, so a Latin-only fallback is refused.
pub fn load_font() -> Result<FontArc, RenderError> {
    if let Some(p) = std::env::var_os("TODOKE_FONT") {
        return font_from(Path::new(&p));
    }
    for p in FONT_PATHS {
        let path = Path::new(p);
        if path.exists() {
            return font_from(path);
        }
    }
    Err(RenderError::NoFont {
        looked: FONT_PATHS.join(", "),
    })
}

fn font_from(path: &Path) -> Result<FontArc, RenderError> {
    let data = std::fs::read(path).map_err(|source| RenderError::FontIo {
        path: path.to_path_buf(),
        source,
    })?;
    let font = FontArc::try_from_vec(data).map_err(|e| RenderError::FontFormat {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if font.glyph_id('届').0 == 0 {
        return Err(RenderError::FontFormat {
            path: path.to_path_buf(),
            reason: "has no Japanese glyphs".into(),
        });
    }
    Ok(font)
}

/// Width of `text` in millimetres at em size `size_mm`.
pub fn text_width_mm(font: &FontArc, text: &str, size_mm: f64) -> f64 {
    let (scale, _) = em_scale(font, 100.0);
    let sf = font.as_scaled(scale);
    let w: f32 = text.chars().map(|c| sf.h_advance(font.glyph_id(c))).sum();
    w as f64 / 100.0 * size_mm
}

/// A piece of printed text and the rectangle its em boxes cover.
#[derive(Debug, Clone)]
pub struct Printed {
    pub text: String,
    pub x: f64,
    pub y: f64,
    pub size: f64,
}

/// Every text item the renderer prints on a side, with its position; used
/// by the renderer and by clearance checks.
pub fn printed_texts(t: &Template, side: &Side, font: &FontArc) -> Vec<Printed> {
    let mut out = Vec::new();
    let w = |s: &str, size| text_width_mm(font, s, size);
    out.push(Printed {
        text: t.title.clone(),
        x: (t.page.width_mm - w(&t.title, TITLE_MM)) / 2.0,
        y: TITLE_Y_MM,
        size: TITLE_MM,
    });
    let small = format!("{}  v{}", side.id, t.version);
    out.push(Printed {
        x: (t.page.width_mm - w(&small, SIDE_ID_MM)) / 2.0,
        y: SIDE_ID_Y_MM,
        size: SIDE_ID_MM,
        text: small,
    });
    for item in &side.texts {
        out.push(Printed {
            text: item.text.clone(),
            x: item.x_mm,
            y: item.y_mm,
            size: item.size_mm,
        });
    }
    for f in &side.fields {
        out.push(Printed {
            text: f.label.clone(),
            x: f.label_at_mm[0],
            y: f.label_at_mm[1],
            size: LABEL_MM,
        });
        if let Some(row) = &f.boxes {
            let rects = row.rects();
            let mid = row.y_mm + (row.h_mm - SUFFIX_MM) / 2.0;
            if let Some(era) = f.era.filter(|_| f.kind == FieldKind::Date) {
                out.push(Printed {
                    text: era.label().into(),
                    x: row.x_mm - ERA_CLEAR_MM - w(era.label(), SUFFIX_MM),
                    y: mid,
                    size: SUFFIX_MM,
                });
            }
            let mut i = 0;
            for (g, &n) in row.groups.iter().enumerate() {
                i += n;
                if let (Some(s), Some(last)) =
                    (row.group_suffixes.get(g), rects.get(i.wrapping_sub(1)))
                {
                    out.push(Printed {
                        text: s.clone(),
                        x: last.x + last.w + TEXT_CLEAR_MM,
                        y: mid,
                        size: SUFFIX_MM,
                    });
                }
            }
        }
        for o in &f.options {
            out.push(Printed {
                text: o.label.clone(),
                x: o.x_mm + o.size_mm + TEXT_CLEAR_MM,
                y: o.y_mm + (o.size_mm - OPTION_MM) / 2.0,
                size: OPTION_MM,
            });
        }
    }
    out
}

/// Every area that is read on a side: digit boxes and checkboxes.
pub fn reading_areas(field: &Field) -> Vec<RectMm> {
    let mut out = field.boxes.as_ref().map(|b| b.rects()).unwrap_or_default();
    out.extend(field.options.iter().map(|o| o.rect()));
    out
}

/// Draws the blank side at `dpi`. Pure: the same inputs give the same pixels.
pub fn render_side(t: &Template, side: &Side, dpi: f64, font: &FontArc) -> image::GrayImage {
    let ppm = dpi / 25.4;
    let w = (t.page.width_mm * ppm).round() as u32;
    let h = (t.page.height_mm * ppm).round() as u32;
    let mut img = GrayImage::from_pixel(w, h, Luma([255]));

    let m = t.marks.size_mm;
    for c in &t.marks.centres_mm {
        fill_mm(&mut img, ppm, c[0] - m / 2.0, c[1] - m / 2.0, m, m);
    }
    let s = &t.id_code;
    for (i, dark) in template::id_code_bits(side.code).iter().enumerate() {
        if *dark {
            fill_mm(
                &mut img,
                ppm,
                s.x_mm + i as f64 * s.cell_mm,
                s.y_mm,
                s.cell_mm,
                s.cell_mm,
            );
        }
    }

    for f in &side.fields {
        for r in reading_areas(f) {
            frame_mm(&mut img, ppm, r, LINE_MM);
        }
    }
    for p in printed_texts(t, side, font) {
        draw_text(&mut img, font, &p.text, p.x, p.y, p.size, ppm);
    }
    img
}

fn em_scale(font: &FontArc, em_px: f32) -> (PxScale, f32) {
    let upem = font.units_per_em().unwrap_or(1000.0);
    (PxScale::from(em_px * font.height_unscaled() / upem), em_px)
}

fn draw_text(
    img: &mut GrayImage,
    font: &FontArc,
    text: &str,
    x_mm: f64,
    y_mm: f64,
    size_mm: f64,
    ppm: f64,
) {
    let (scale, em_px) = em_scale(font, (size_mm * ppm) as f32);
    let sf = font.as_scaled(scale);
    let baseline = (y_mm * ppm) as f32 + em_px * ASCENT_EM as f32;
    let mut caret = (x_mm * ppm) as f32;
    let (w, h) = (img.width() as i64, img.height() as i64);
    for ch in text.chars() {
        let id = font.glyph_id(ch);
        let glyph = id.with_scale_and_position(scale, point(caret, baseline));
        caret += sf.h_advance(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, cov| {
            let px = b.min.x as i64 + gx as i64;
            let py = b.min.y as i64 + gy as i64;
            if px >= 0 && py >= 0 && px < w && py < h {
                let p = img.get_pixel_mut(px as u32, py as u32);
                let v = (255.0 * (1.0 - cov.clamp(0.0, 1.0))) as u8;
                p[0] = p[0].min(v);
            }
        });
    }
}

fn fill_mm(img: &mut GrayImage, ppm: f64, x: f64, y: f64, w: f64, h: f64) {
    let x0 = (x * ppm).round().max(0.0) as u32;
    let y0 = (y * ppm).round().max(0.0) as u32;
    let x1 = (((x + w) * ppm).round() as u32).min(img.width());
    let y1 = (((y + h) * ppm).round() as u32).min(img.height());
    for yy in y0..y1 {
        for xx in x0..x1 {
            img.put_pixel(xx, yy, Luma([0]));
        }
    }
}

/// A rectangle's border, the line centred on its edge; at least one pixel
/// wide so that low-dpi renderings keep their boxes.
fn frame_mm(img: &mut GrayImage, ppm: f64, r: RectMm, line: f64) {
    let lw = (line * ppm).max(1.0) / ppm;
    let half = lw / 2.0;
    fill_mm(img, ppm, r.x - half, r.y - half, r.w + lw, lw);
    fill_mm(img, ppm, r.x - half, r.y + r.h - half, r.w + lw, lw);
    fill_mm(img, ppm, r.x - half, r.y - half, lw, r.h + lw);
    fill_mm(img, ppm, r.x + r.w - half, r.y - half, lw, r.h + lw);
}

/// `todoke forms render`: the blank of one side as PNG, or of a form's sides
/// as a PDF (both sides when `side` is `None`). A PNG for a two-sided form
/// with no side given is written once per side, `<stem>-<side id>.png`.
pub fn render_cli(
    forms_dir: &Path,
    form: &str,
    side: Option<&str>,
    dpi: f64,
    out: &Path,
) -> anyhow::Result<()> {
    let templates = template::load_dir(forms_dir)?;
    let t = templates
        .iter()
        .find(|t| t.id == form)
        .with_context(|| format!("no form {form} in {}", forms_dir.display()))?;
    let sides: Vec<&Side> = match side {
        Some(id) => vec![t
            .side(id)
            .with_context(|| format!("form {form} has no side {id}"))?],
        None => t.sides.iter().collect(),
    };
    let font = load_font()?;
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match ext.as_str() {
        "pdf" => {
            let pages: Vec<PdfPage> = sides
                .iter()
                .map(|s| PdfPage::gray(render_side(t, s, dpi, &font), dpi))
                .collect();
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(out)
                    .with_context(|| format!("cannot create {}", out.display()))?,
            );
            write_pdf(&pages, &mut file)
                .with_context(|| format!("cannot write {}", out.display()))?;
        }
        "png" => {
            for s in &sides {
                let path = if sides.len() == 1 {
                    out.to_path_buf()
                } else {
                    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("blank");
                    out.with_file_name(format!("{stem}-{}.png", s.id))
                };
                render_side(t, s, dpi, &font)
                    .save(&path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        other => anyhow::bail!("cannot render to .{other}: use .png or .pdf"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms() -> Vec<Template> {
        template::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("forms")).unwrap()
    }

    fn overlaps(a: RectMm, b: RectMm) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    #[test]
    fn printed_text_keeps_clear_of_reading_areas_and_the_paper_edge() {
        let Ok(font) = load_font() else {
            eprintln!("no CJK font installed; skipping");
            return;
        };
        for t in forms() {
            for side in &t.sides {
                let areas: Vec<RectMm> = side.fields.iter().flat_map(reading_areas).collect();
                for a in &areas {
                    assert!(
                        a.x >= 8.0
                            && a.y >= 8.0
                            && a.x + a.w <= t.page.width_mm - 8.0
                            && a.y + a.h <= t.page.height_mm - 8.0,
                        "{}: {a:?} too close to the paper edge",
                        side.id
                    );
                    for b in &areas {
                        if a != b {
                            assert!(
                                !overlaps(a.grow(0.5), *b),
                                "{}: {a:?} touches {b:?}",
                                side.id
                            );
                        }
                    }
                }
                for p in printed_texts(&t, side, &font) {
                    let r = RectMm {
                        x: p.x,
                        y: p.y,
                        w: text_width_mm(&font, &p.text, p.size),
                        h: p.size,
                    };
                    assert!(
                        r.x + r.w <= t.page.width_mm - 8.0,
                        "{}: {:?} runs off the page",
                        side.id,
                        p.text
                    );
                    for a in &areas {
                        assert!(
                            !overlaps(a.grow(2.0), r),
                            "{}: {:?} within 2 mm of {a:?}",
                            side.id,
                            p.text
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_rendered_side_has_its_marks_and_id_code() {
        let Ok(font) = load_font() else {
            eprintln!("no CJK font installed; skipping");
            return;
        };
        let templates = forms();
        for t in &templates {
            for side in &t.sides {
                let img = render_side(t, side, 100.0, &font);
                let ppm = 100.0 / 25.4;
                let px = |x: f64, y: f64| img.get_pixel((x * ppm) as u32, (y * ppm) as u32)[0];
                for c in &t.marks.centres_mm {
                    assert_eq!(px(c[0], c[1]), 0);
                }
                let s = &t.id_code;
                for (i, dark) in template::id_code_bits(side.code).iter().enumerate() {
                    let v = px(
                        s.x_mm + (i as f64 + 0.5) * s.cell_mm,
                        s.y_mm + s.cell_mm / 2.0,
                    );
                    assert_eq!(v == 0, *dark, "{} cell {i}", side.id);
                }
            }
        }
    }

    #[test]
    fn templates_carry_every_field_of_the_spec() {
        let templates = forms();
        let ids = |form: &str, side: &str| -> Vec<String> {
            let t = templates.iter().find(|t| t.id == form).expect(form);
            t.side(side)
                .expect(side)
                .fields
                .iter()
                .map(|f| f.id.clone())
                .collect()
        };
        let pregnancy = [
            "notified_on",
            "atena_no",
            "birth_date",
            "my_number",
            "gestation_weeks",
            "due_date",
            "fetus_count",
            "first_pregnancy",
            "occupation",
            "q_feeling",
            "q_smoking",
            "q_household_smoking",
            "q_drinking",
            "q_consult",
            "q_worries",
        ];
        let infant = [
            "atena_no",
            "birth_date",
            "checkup_date",
            "q_continue_raising",
            "q_postnatal_care",
            "q_smoking_pregnancy",
            "q_mother_smoking",
            "q_father_smoking",
            "q_drinking_pregnancy",
            "q_relaxed_time",
            "q_difficulty",
            "q_know_solution",
            "q_father_involvement",
            "q_sbs_known",
            "q_household_events",
            "q_economy",
        ];
        assert_eq!(
            ids("pregnancy-notification", "pregnancy-notification"),
            pregnancy
        );
        assert_eq!(ids("infant-checkup", "infant-checkup-back"), infant);
        assert!(ids("infant-checkup", "infant-checkup-front").is_empty());
        let t = templates.iter().find(|t| t.id == "infant-checkup").unwrap();
        assert!(!t.side("infant-checkup-front").unwrap().read);
        assert!(t.side("infant-checkup-back").unwrap().read);
        for t in &templates {
            for s in &t.sides {
                for f in &s.fields {
                    assert!(
                        t.output.columns.iter().any(|c| c.value == f.id),
                        "{} has no column",
                        f.id
                    );
                }
            }
            for v in ["@source", "@page", "@branch", "@corrected"] {
                assert!(
                    t.output.columns.iter().any(|c| c.value == v),
                    "{} lacks {v}",
                    t.id
                );
            }
        }
        let p = templates
            .iter()
            .find(|t| t.id == "pregnancy-notification")
            .unwrap();
        let f = |id: &str| {
            p.sides[0]
                .fields
                .iter()
                .find(|f| f.id == id)
                .unwrap()
                .clone()
        };
        assert_eq!(f("my_number").boxes.unwrap().count(), 12);
        assert!(f("my_number").sensitive);
        assert_eq!(f("my_number").check, Some(template::CheckScheme::MyNumber));
        assert_eq!(f("atena_no").boxes.unwrap().count(), 10);
        assert_eq!(f("gestation_weeks").range, Some([4, 42]));
        let eras: Vec<String> = f("birth_date")
            .options
            .iter()
            .map(|o| o.code.clone())
            .collect();
        assert_eq!(eras, ["showa", "heisei", "reiwa"]);
        assert_eq!(f("due_date").era, Some(template::Era::Reiwa));
    }

    #[test]
    fn a_rendered_blank_registers_as_its_side_either_way_up() {
        let Ok(font) = load_font() else {
            eprintln!("no CJK font installed; skipping");
            return;
        };
        let templates = forms();
        for t in &templates {
            for side in &t.sides {
                let img = render_side(t, side, 200.0, &font);
                let turned = image::imageops::rotate180(&img);
                for (page, want_turned) in [(&img, false), (&turned, true)] {
                    let r = crate::register::register(page, &templates)
                        .unwrap_or_else(|e| panic!("{} turned={want_turned}: {e}", side.id));
                    assert_eq!(r.side.id, side.id);
                    assert_eq!(r.turned, want_turned, "{}", side.id);
                }
            }
        }
    }

    /// Regenerates the committed blanks: forms/<side>.png at 150 dpi and
    /// forms/<form>.pdf at 200 dpi.
    #[test]
    #[ignore]
    fn write_blanks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("forms");
        for t in forms() {
            for s in &t.sides {
                render_cli(
                    &dir,
                    &t.id,
                    Some(&s.id),
                    150.0,
                    &dir.join(format!("{}.png", s.id)),
                )
                .unwrap();
            }
            render_cli(&dir, &t.id, None, 200.0, &dir.join(format!("{}.pdf", t.id))).unwrap();
        }
    }
}
