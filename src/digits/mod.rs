//! Reading one handwritten (or printed) digit from one box cell.
//!
//! The read stage crops each digit box (with a little margin, so fragments
//! of the printed border may be visible) and hands it to a [`DigitReader`].

pub mod bench;
pub mod cells;
pub mod checkpoint;
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
    /// The probability of each digit 0–9, where the reader gives them all
    /// (the CNN does; Tesseract, and a cell cleaned to nothing, do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit_probabilities: Option<[f32; 10]>,
}

impl CellReading {
    /// A reading that names no runner-up: Tesseract's, a cell with no ink
    /// left, a model that failed.
    pub fn only(digit: Option<u8>, confidence: f32) -> CellReading {
        CellReading {
            digit,
            confidence,
            second: None,
            second_confidence: 0.0,
            digit_probabilities: None,
        }
    }

    /// Odds that the cell shows `digit` rather than what it was read as:
    /// the reader's own probability of that digit where it gives one for
    /// every digit; else its runner-up's, and for any other digit all that
    /// is left over, an overestimate on the safe side. A model that says
    /// 1e-9 is not that sure, so no probability counts below 1e-4.
    pub fn odds_of(&self, digit: u8) -> f64 {
        const FLOOR: f32 = 1e-4;
        let p = match &self.digit_probabilities {
            Some(all) => all.get(usize::from(digit)).copied().unwrap_or(0.0),
            None if self.second == Some(digit) => self.second_confidence,
            None => 1.0 - self.confidence - self.second_confidence,
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
    let files = pngs_in(dir)?;
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

/// The PNG files directly in `dir`, sorted by name.
pub fn pngs_in(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odds_use_every_digit_probability_when_the_reader_gives_them() {
        let mut all = [0.0f32; 10];
        all[7] = 0.95;
        all[1] = 0.04;
        all[2] = 0.002;
        let full = CellReading {
            digit: Some(7),
            confidence: 0.95,
            second: Some(1),
            second_confidence: 0.04,
            digit_probabilities: Some(all),
        };
        let top_two = CellReading {
            digit_probabilities: None,
            ..full.clone()
        };
        let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(near(full.odds_of(1), 0.04 / 0.95));
        assert!(near(top_two.odds_of(1), 0.04 / 0.95));
        // A third digit: its own probability, against all that is left.
        assert!(near(full.odds_of(2), 0.002 / 0.95));
        assert!(near(top_two.odds_of(2), 0.01 / 0.95));
        // Nothing counts as less likely than the floor.
        assert!(near(full.odds_of(3), 1e-4 / 0.95));
    }
}
