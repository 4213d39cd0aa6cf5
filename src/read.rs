//! Read stage: registered page in, raw per-field readings out.
//!
//! Only digit boxes and checkboxes are read. Interpreting what was read
//! (dates, eras, single vs multiple choice) is the validate stage's job.

use crate::digits::CellReading;
use crate::template::FieldKind;
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
    /// Share of dark pixels inside the printed border.
    pub ink: f32,
    pub state: MarkState,
    /// How sure the state is, 0..=1.
    pub confidence: f32,
}
