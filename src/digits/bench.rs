//! `todoke bench digits`: the reader on cells made from the MNIST evaluation
//! split (`index % 5 == 0`), which nothing trains or tunes on. Figures only:
//! nothing measured here feeds back into the model or its threshold.

use super::cells::{render_cell, Content};
use super::mnist::{self, Split};
use super::train::THRESHOLDS;
use super::DigitReader;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;
use std::time::Instant;

pub fn bench(
    reader: &dyn DigitReader,
    mnist_dir: &Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let eval = mnist::load(mnist_dir, Split::Eval)?;
    let mut rng = StdRng::seed_from_u64(0xE7A1);
    let mut cells = Vec::new();
    let mut truth: Vec<Option<u8>> = Vec::new();
    for s in &eval {
        cells.push(render_cell(Content::Digit(&s.pixels), &mut rng));
        truth.push(Some(s.label));
    }
    for _ in 0..eval.len() / 10 {
        cells.push(render_cell(Content::Blank, &mut rng));
        truth.push(None);
    }
    let started = Instant::now();
    let readings: Vec<_> = cells
        .chunks(64)
        .flat_map(|c| reader.read_cells(c))
        .collect();
    let seconds = started.elapsed().as_secs_f64();

    let digits: Vec<usize> = (0..truth.len()).filter(|&i| truth[i].is_some()).collect();
    let blanks: Vec<usize> = (0..truth.len()).filter(|&i| truth[i].is_none()).collect();
    let right = |i: &usize| readings[*i].digit == truth[*i];
    let info = reader.describe();
    writeln!(out, "reader: {} {}", info.name, info.version)?;
    writeln!(
        out,
        "cells: {} digits from the MNIST evaluation split (index % 5 == 0) and {} blank cells, rendered into scanned boxes",
        digits.len(),
        blanks.len()
    )?;
    writeln!(
        out,
        "top-1 accuracy on digits: {:.4}",
        digits.iter().filter(|i| right(i)).count() as f64 / digits.len() as f64
    )?;
    let blank_ok = blanks
        .iter()
        .filter(|&&i| readings[i].digit.is_none())
        .count()
        + digits
            .iter()
            .filter(|&&i| readings[i].digit.is_some())
            .count();
    writeln!(
        out,
        "blank detection accuracy (blank vs digit, all cells): {:.4}",
        blank_ok as f64 / truth.len() as f64
    )?;
    writeln!(
        out,
        "threshold  accepted  error-among-accepted  (all cells)"
    )?;
    for t in THRESHOLDS {
        let accepted: Vec<usize> = (0..truth.len())
            .filter(|&i| readings[i].confidence >= t)
            .collect();
        let wrong = accepted.iter().filter(|i| !right(i)).count();
        writeln!(
            out,
            "{t:>9.3}  {:>7.2}%  {:>8.3}%",
            accepted.len() as f64 * 100.0 / truth.len() as f64,
            wrong as f64 * 100.0 / accepted.len().max(1) as f64
        )?;
    }
    writeln!(
        out,
        "speed: {:.0} cells/s (preprocessing and model; set RAYON_NUM_THREADS=1 for one core)",
        truth.len() as f64 / seconds
    )?;
    Ok(())
}
