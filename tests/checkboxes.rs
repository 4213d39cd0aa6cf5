//! Checkbox answers as people mark them, on rendered and scanned pages: no
//! answer is silently dropped, circles and faint pencil are read, and a
//! page beside a dark scanner lid still registers.

mod common;

use image::GrayImage;
use rand::SeedableRng;
use todoke::read::{self, FieldReading, MarkState};
use todoke::synth::{self, MarkStyle, ScanLook};
use todoke::template::{self, Template};
use todoke::validate::{self, FieldResult, FieldStatus};
use todoke::{checkbox, register, render};

const PREGNANCY: &str = "pregnancy-notification";

fn templates() -> Vec<Template> {
    template::load_dir(&common::repo().join("forms")).expect("shipped templates load")
}

/// The upright blank of a side at `dpi`.
fn blank(templates: &[Template], side_id: &str, dpi: u32) -> GrayImage {
    let font = render::load_font().expect("the form font is installed");
    let t = templates
        .iter()
        .find(|t| t.sides.iter().any(|s| s.id == side_id))
        .expect("side exists");
    let side = t.sides.iter().find(|s| s.id == side_id).unwrap();
    render::render_side(t, side, dpi as f64, &font)
}

fn field<'t>(templates: &'t [Template], side_id: &str, id: &str) -> &'t template::Field {
    templates
        .iter()
        .flat_map(|t| &t.sides)
        .find(|s| s.id == side_id)
        .and_then(|s| s.fields.iter().find(|f| f.id == id))
        .expect("field exists")
}

fn answer(
    img: &mut GrayImage,
    templates: &[Template],
    dpi: u32,
    id: &str,
    idx: usize,
    style: MarkStyle,
    seed: u64,
) {
    let f = field(templates, PREGNANCY, id);
    synth::draw_answer(img, dpi, f, idx, style, seed);
}

fn scan(page: &GrayImage, dpi: u32, look: ScanLook, seed: u64) -> GrayImage {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    synth::scan(page, dpi, false, true, look, &mut rng)
}

/// Registers the scan and reads and validates one choice field of it.
fn read_field(
    scan: &GrayImage,
    templates: &[Template],
    id: &str,
) -> (Vec<read::MarkReading>, FieldResult) {
    let page = register::register(scan, templates).expect("the page registers");
    let f = page.side.fields.iter().find(|f| f.id == id).unwrap();
    let marks = read::read_marks(scan, &page, f, checkbox::is_bilevel(scan));
    let r = FieldReading {
        id: f.id.clone(),
        kind: f.kind,
        cells: Vec::new(),
        marks: marks.clone(),
        image: GrayImage::new(1, 1),
    };
    let result = validate::validate_field(f, &r, f.threshold(&page.template.defaults));
    (marks, result)
}

/// Half a loop around a box, in pen: a circle begun and left, or a stray
/// stroke; either way not an answer one can read, nor nothing.
fn half_loop(img: &mut GrayImage, dpi: u32, r: template::RectMm) {
    let ppm = dpi as f64 / 25.4;
    let (cx, cy) = (r.x + r.w / 2.0, r.y + r.h / 2.0);
    for k in 0..400 {
        let t = std::f64::consts::PI * (0.1 + 0.9 * k as f64 / 400.0);
        for dr in [-0.2, -0.1, 0.0, 0.1, 0.2] {
            let rad = 3.3 + dr;
            let (x, y) = ((cx + rad * t.cos()) * ppm, (cy - rad * t.sin()) * ppm);
            img.put_pixel(x as u32, y as u32, image::Luma([30]));
        }
    }
}

/// A smudge of light ink inside a box: a mark begun and not finished.
fn smudge(img: &mut GrayImage, dpi: u32, r: template::RectMm) {
    let ppm = dpi as f64 / 25.4;
    let (x0, y0) = ((r.x + 1.4) * ppm, (r.y + 1.6) * ppm);
    for dy in 0..(0.5 * ppm) as u32 {
        for dx in 0..(0.7 * ppm) as u32 {
            img.put_pixel(x0 as u32 + dx, y0 as u32 + dy, image::Luma([150]));
        }
    }
}

/// Item 1 of issue 14: a box whose ink is neither clearly nothing nor
/// clearly an answer makes its field doubtful, in a multi-answer field and
/// in a single-answer one, while the same fields marked plainly pass.
#[test]
fn a_box_neither_empty_nor_marked_makes_its_field_doubtful() {
    let templates = templates();
    let dpi = 300;
    let worries = field(&templates, PREGNANCY, "q_worries");
    let fetus = field(&templates, PREGNANCY, "fetus_count");

    // Plain ticks: both fields read and pass.
    let mut plain = blank(&templates, PREGNANCY, dpi);
    answer(
        &mut plain,
        &templates,
        dpi,
        "q_worries",
        0,
        MarkStyle::Tick,
        1,
    );
    answer(
        &mut plain,
        &templates,
        dpi,
        "fetus_count",
        0,
        MarkStyle::Tick,
        2,
    );
    let plain = scan(&plain, dpi, ScanLook::default(), 3);
    let (_, r) = read_field(&plain, &templates, "q_worries");
    assert_eq!(r.status, FieldStatus::Ok, "{r:?}");
    assert_eq!(r.value, serde_json::json!([1]));
    let (_, r) = read_field(&plain, &templates, "fetus_count");
    assert_eq!(r.status, FieldStatus::Ok, "{r:?}");
    assert_eq!(r.value, serde_json::json!(1));

    // The same ticks, and beside them a half loop around another worry and
    // a smudge in the other fetus box.
    let mut doubtful = blank(&templates, PREGNANCY, dpi);
    answer(
        &mut doubtful,
        &templates,
        dpi,
        "q_worries",
        0,
        MarkStyle::Tick,
        1,
    );
    answer(
        &mut doubtful,
        &templates,
        dpi,
        "fetus_count",
        0,
        MarkStyle::Tick,
        2,
    );
    half_loop(&mut doubtful, dpi, worries.options[2].rect());
    smudge(&mut doubtful, dpi, fetus.options[1].rect());
    let doubtful = scan(&doubtful, dpi, ScanLook::default(), 3);

    let (marks, r) = read_field(&doubtful, &templates, "q_worries");
    assert_eq!(marks[0].state, MarkState::Marked);
    assert_eq!(marks[2].state, MarkState::Uncertain, "{:?}", marks[2]);
    assert_eq!(r.status, FieldStatus::LowConfidence, "{r:?}");
    let (marks, r) = read_field(&doubtful, &templates, "fetus_count");
    assert_eq!(marks[0].state, MarkState::Marked);
    assert_ne!(marks[1].state, MarkState::Empty, "{:?}", marks[1]);
    assert_ne!(r.status, FieldStatus::Ok, "{r:?}");
}
