//! Read stage: registered page in, raw per-field readings out.
//!
//! Only digit boxes and checkboxes are read. Interpreting what was read
//! (dates, eras, single vs multiple choice) is the validate stage's job.

use crate::checkbox::{self, BoxEvidence, Verdict};
use crate::digits::{CellReading, DigitReader};
use crate::register::{warp_rect, RegisteredPage};
use crate::template::{DigitSource, Field, FieldKind, RectMm};
use image::GrayImage;
use serde::{Deserialize, Serialize};

/// Everything read from one page side.
#[derive(Debug, Clone)]
pub struct PageReading {
    pub form: String,
    pub side: String,
    /// In template order.
    pub fields: Vec<FieldReading>,
}

#[derive(Debug, Clone)]
pub struct FieldReading {
    pub id: String,
    pub kind: FieldKind,
    /// One per digit box, left to right; empty for choice fields.
    pub cells: Vec<CellReading>,
    /// One per checkbox in template option order (era choices for dates).
    pub marks: Vec<MarkReading>,
    /// The upright field area as seen on the scan, for the mismatch report.
    pub image: GrayImage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkState {
    Empty,
    Marked,
    /// Ink between the empty and marked thresholds: neither is trusted.
    Uncertain,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MarkReading {
    /// Share of the inside at least half as dark as the printed border.
    pub ink: f32,
    pub state: MarkState,
    /// How sure the state is, 0..=1.
    pub confidence: f32,
}

/// Where the read stage looked and what it measured, filled only when a
/// caller asks (`read_page_traced`, used by `todoke explain`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadTrace {
    /// The page is a black-and-white scan (`checkbox::is_bilevel`).
    pub bilevel: bool,
    /// In template order, like `PageReading::fields`.
    pub fields: Vec<FieldTrace>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldTrace {
    pub id: String,
    /// Each digit box's crop as handed to the reader, margin included,
    /// in template millimetres.
    pub cells_mm: Vec<RectMm>,
    /// Each checkbox, in option order.
    pub boxes: Vec<BoxTrace>,
}

/// One checkbox: where it is and what its ink said.
#[derive(Debug, Clone, Serialize)]
pub struct BoxTrace {
    pub rect_mm: RectMm,
    pub evidence: BoxEvidence,
    pub verdict: Verdict,
}

/// Readers a page needs: handwriting for most fields, printed for fields
/// the template marks as machine-printed.
pub struct Readers<'r> {
    pub handwriting: &'r dyn DigitReader,
    pub printed: Option<&'r dyn DigitReader>,
}

/// Pixels per millimetre of the crops handed to digit readers: a 6 mm box
/// becomes about 60 px, inside the 40–200 px readers are made for.
const CELL_PX_PER_MM: f64 = 10.0;
/// Margin around each digit box, so strokes over the border are kept.
const CELL_MARGIN_MM: f64 = 0.6;
/// Resolution of field images in the mismatch report.
const FIELD_PX_PER_MM: f64 = 8.0;

/// Reads every field of a registered side. Pure: nothing but the image and
/// the template is looked at.
pub fn read_page(
    image: &GrayImage,
    page: &RegisteredPage<'_>,
    readers: &Readers<'_>,
) -> Result<PageReading, ReadError> {
    read_page_traced(image, page, readers, None)
}

/// `read_page`, recording in `trace` (when given) where every box was
/// looked for and each checkbox's evidence.
pub fn read_page_traced(
    image: &GrayImage,
    page: &RegisteredPage<'_>,
    readers: &Readers<'_>,
    mut trace: Option<&mut ReadTrace>,
) -> Result<PageReading, ReadError> {
    let bilevel = checkbox::is_bilevel(image);
    if let Some(t) = trace.as_deref_mut() {
        t.bilevel = bilevel;
    }
    let mut fields = Vec::with_capacity(page.side.fields.len());
    for field in &page.side.fields {
        let cells = match &field.boxes {
            Some(_) => {
                let crops = digit_cells(image, page, field);
                let reader = match field.source {
                    DigitSource::Handwriting => readers.handwriting,
                    DigitSource::Printed => {
                        readers.printed.ok_or_else(|| ReadError::NoPrintedReader {
                            field: field.id.clone(),
                        })?
                    }
                };
                reader.read_cells(&crops)
            }
            None => Vec::new(),
        };
        let mut evidence = Vec::new();
        let marks = read_marks_with(
            image,
            page,
            field,
            bilevel,
            trace.is_some().then_some(&mut evidence),
        );
        if let Some(t) = trace.as_deref_mut() {
            t.fields.push(FieldTrace {
                id: field.id.clone(),
                cells_mm: field.boxes.as_ref().map_or_else(Vec::new, |row| {
                    row.rects().iter().map(|r| r.grow(CELL_MARGIN_MM)).collect()
                }),
                boxes: field
                    .options
                    .iter()
                    .zip(evidence)
                    .map(|(o, e)| BoxTrace {
                        rect_mm: o.rect(),
                        verdict: checkbox::verdict(&e, &page.template.defaults),
                        evidence: e,
                    })
                    .collect(),
            });
        }
        let area = field_area(field).grow(1.5);
        fields.push(FieldReading {
            id: field.id.clone(),
            kind: field.kind,
            cells,
            marks,
            image: warp_rect(image, &page.to_image, area, FIELD_PX_PER_MM),
        });
    }
    Ok(PageReading {
        form: page.template.id.clone(),
        side: page.side.id.clone(),
        fields,
    })
}

/// One reading per checkbox of `field`, in option order. `bilevel`: the page
/// is a black-and-white scan (`checkbox::is_bilevel`).
pub fn read_marks(
    image: &GrayImage,
    page: &RegisteredPage<'_>,
    field: &Field,
    bilevel: bool,
) -> Vec<MarkReading> {
    read_marks_with(image, page, field, bilevel, None)
}

/// `read_marks`, handing each box's evidence to `evidence` when given.
fn read_marks_with(
    image: &GrayImage,
    page: &RegisteredPage<'_>,
    field: &Field,
    bilevel: bool,
    mut evidence: Option<&mut Vec<BoxEvidence>>,
) -> Vec<MarkReading> {
    let mut marks: Vec<MarkReading> = (0..field.options.len())
        .map(|i| {
            let e = checkbox::evidence(image, &page.to_image, page.side, field, i, bilevel);
            if let Some(all) = evidence.as_deref_mut() {
                all.push(e);
            }
            mark_reading(&e, &page.template.defaults)
        })
        .collect();
    // A black-and-white scanner drops a faint pencil answer below its black
    // level entirely. A required single choice with nothing left is missing
    // anyway; an "all that apply" or an optional question with nothing
    // marked cannot be told from one answered in pencil, so it is not taken
    // as unanswered (on validation pages, 4 optional questions answered in
    // pencil came back as "no answer" with nothing doubtful about them).
    // The same goes for the rest of an "all that apply" whose ticks came
    // through thin: a light pen at the scanner's black level keeps part of
    // one tick and none of the next (on synthetic light-pen answers, 12 of
    // 180 two-answer fields kept one answer and passed as complete).
    let none_marked = marks.iter().all(|m| m.state != MarkState::Marked);
    let unanswered_is_an_answer = field.kind == FieldKind::Multi || !field.required;
    let marked_ink = page.template.defaults.checkbox_marked_ink;
    let thin = || {
        marks.iter().any(|m| {
            m.state == MarkState::Marked && (marked_ink..checkbox::BILEVEL_FIRM).contains(&m.ink)
        })
    };
    let blanks_in_doubt =
        (unanswered_is_an_answer && none_marked) || (field.kind == FieldKind::Multi && thin());
    if bilevel && blanks_in_doubt {
        for m in marks.iter_mut().filter(|m| m.state != MarkState::Marked) {
            m.state = MarkState::Uncertain;
            m.confidence = m.confidence.min(0.5);
        }
    }
    marks
}

/// The crops of a field's digit boxes, each with a margin, as readers are
/// handed them; none for a field without boxes.
pub fn digit_cells(image: &GrayImage, page: &RegisteredPage<'_>, field: &Field) -> Vec<GrayImage> {
    field.boxes.as_ref().map_or_else(Vec::new, |row| {
        row.rects()
            .into_iter()
            .map(|r| {
                warp_rect(
                    image,
                    &page.to_image,
                    r.grow(CELL_MARGIN_MM),
                    CELL_PX_PER_MM,
                )
            })
            .collect()
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("field {field} is machine-printed but no printed-digit reader is configured")]
    NoPrintedReader { field: String },
}

/// A box's evidence as a mark state. Only what `checkbox::verdict` calls
/// clearly empty or clearly marked is sure; anything else is uncertain with
/// a confidence below any field threshold, so it is never taken as empty.
pub fn mark_reading(e: &BoxEvidence, defaults: &crate::template::Defaults) -> MarkReading {
    let (empty, marked) = (defaults.checkbox_empty_ink, defaults.checkbox_marked_ink);
    let as_if = match checkbox::verdict(e, defaults) {
        Verdict::Empty => e.ink.min(empty),
        Verdict::Marked => e.ink.max(marked),
        Verdict::Uncertain => e.ink.clamp(empty + 1e-4, marked - 1e-4),
    };
    MarkReading {
        ink: e.ink,
        ..classify_mark(as_if, empty, marked)
    }
}

/// Turns an ink share into a mark state. Inside the band between the two
/// thresholds nothing is guessed: the mark is uncertain and its confidence
/// falls towards zero at the band's middle.
pub fn classify_mark(ink: f32, empty: f32, marked: f32) -> MarkReading {
    let (state, confidence) = if ink <= empty {
        (MarkState::Empty, 0.9 + 0.1 * (1.0 - ink / empty.max(1e-6)))
    } else if ink >= marked {
        (
            MarkState::Marked,
            0.9 + 0.1 * ((ink - marked) / marked.max(1e-6)).min(1.0),
        )
    } else {
        let mid = (empty + marked) / 2.0;
        let half = (marked - empty) / 2.0;
        (
            MarkState::Uncertain,
            0.5 * (ink - mid).abs() / half.max(1e-6),
        )
    };
    MarkReading {
        ink,
        state,
        confidence: confidence.clamp(0.0, 1.0),
    }
}

/// The smallest rectangle holding a field's boxes and checkboxes.
pub fn field_area(field: &Field) -> RectMm {
    let mut rects: Vec<RectMm> = field.boxes.as_ref().map(|b| b.rects()).unwrap_or_default();
    rects.extend(field.options.iter().map(|o| o.rect()));
    let x0 = rects.iter().map(|r| r.x).fold(f64::INFINITY, f64::min);
    let y0 = rects.iter().map(|r| r.y).fold(f64::INFINITY, f64::min);
    let x1 = rects
        .iter()
        .map(|r| r.x + r.w)
        .fold(f64::NEG_INFINITY, f64::max);
    let y1 = rects
        .iter()
        .map(|r| r.y + r.h)
        .fold(f64::NEG_INFINITY, f64::max);
    if rects.is_empty() {
        return RectMm {
            x: 0.0,
            y: 0.0,
            w: 1.0,
            h: 1.0,
        };
    }
    // Option labels sit to the right of their boxes; show them too.
    let label_room = if field.options.is_empty() { 0.0 } else { 30.0 };
    RectMm {
        x: x0,
        y: y0,
        w: x1 - x0 + label_room,
        h: y1 - y0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_outside_the_band_are_sure_and_inside_are_not() {
        let empty = classify_mark(0.01, 0.04, 0.10);
        assert_eq!(empty.state, MarkState::Empty);
        assert!(empty.confidence > 0.9);
        let marked = classify_mark(0.3, 0.04, 0.10);
        assert_eq!(marked.state, MarkState::Marked);
        assert!(marked.confidence > 0.9);
        let unsure = classify_mark(0.07, 0.04, 0.10);
        assert_eq!(unsure.state, MarkState::Uncertain);
        assert!(unsure.confidence < 0.1);
    }
}
