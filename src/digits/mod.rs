//! Reading one handwritten (or printed) digit from one box cell.
//!
//! The read stage crops each digit box (with a little margin, so fragments
//! of the printed border may be visible) and hands it to a [`DigitReader`].

pub mod bench;
pub mod cells;
pub mod cnn;
pub mod fast;
pub mod mnist;
pub mod preprocess;
pub mod printed;
pub mod train;

use image::GrayImage;
use serde::{Deserialize, Serialize};

/// What a reader says about one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellReading {
    /// `None` when the cell is blank.
    pub digit: Option<u8>,
    /// Calibrated probability that `digit` is right (blank included).
    pub confidence: f32,
    /// The runner-up and its probability, for candidate search in review.
    pub second: Option<u8>,
    pub second_confidence: f32,
}

impl CellReading {
    /// Odds that the cell shows `digit` rather than what it was read as.
    /// The reader reports its top two; any other digit is given all that
    /// is left over, an overestimate on the safe side. A model that says
    /// 1e-9 is not that sure, so no probability counts below 1e-4.
    pub fn odds_of(&self, digit: u8) -> f64 {
        const FLOOR: f32 = 1e-4;
        let p = if self.second == Some(digit) {
            self.second_confidence
        } else {
            1.0 - self.confidence - self.second_confidence
        };
        f64::from(p.max(FLOOR)) / f64::from(self.confidence.max(FLOOR))
    }
}

/// A digit reader: one cell image in, one reading out.
///
/// Cells are dark ink on a light background, any size from about 40 to 200 px,
/// possibly showing parts of the printed box border.
pub trait DigitReader: Send + Sync {
    /// Name and version (model sha256) recorded in every batch manifest.
    fn describe(&self) -> ReaderInfo;
    fn read_cell(&self, cell: &GrayImage) -> CellReading;
    /// Many cells at once; readers that batch override this for speed.
    fn read_cells(&self, cells: &[GrayImage]) -> Vec<CellReading> {
        cells.iter().map(|c| self.read_cell(c)).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderInfo {
    pub name: String,
    pub version: String,
}

/// Prints `file,digit,confidence,second,second_confidence` for every PNG in
/// `dir`, sorted by name; `digit` is empty for a blank cell.
pub fn classify_dir(
    reader: &dyn DigitReader,
    dir: &std::path::Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    let show = |d: Option<u8>| d.map(|d| d.to_string()).unwrap_or_default();
    for f in files {
        let cell = image::open(&f)?.into_luma8();
        let r = reader.read_cell(&cell);
        writeln!(
            out,
            "{},{},{:.4},{},{:.4}",
            f.file_name().unwrap_or_default().to_string_lossy(),
            show(r.digit),
            r.confidence,
            show(r.second),
            r.second_confidence
        )?;
    }
    Ok(())
}
