//! `todoke bench digits`: the reader on the validation fold its thresholds
//! were picked on, then on cells made from the MNIST evaluation split
//! (MNIST test set, even indices), which nothing trains or tunes on. Figures only:
//! nothing measured here feeds back into the model or its threshold.

use super::cells::{render_cell, render_sample, Content};
use super::mnist::{self, Split};
use super::train::{self, risk_coverage, RiskCoverage};
use super::{pngs_in, DigitReader};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;
use std::time::Instant;

/// Passes over the cells whose median time gives the speed.
const SPEED_PASSES: usize = 5;

pub fn bench(
    reader: &dyn DigitReader,
    mnist_dir: &Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let info = reader.describe();
    writeln!(out, "reader: {} {}", info.name, info.version)?;
    // The very cells the ensemble's temperature and the shipped thresholds
    // were picked on, so the two tables can be read side by side.
    let (val_readings, val_truth) =
        train::validation_readings(reader, mnist_dir, train::THRESHOLD_SEED)?;
    let (digit, blank) = train::accuracies(&val_readings, &val_truth);
    writeln!(
        out,
        "validation fold (MNIST training set, index % 6 == 1, reserved indices excluded; each digit drawn {} times; thresholds are picked here): top-1 {digit:.4}, blank vs digit {blank:.4}",
        train::VALIDATION_PASSES
    )?;
    write_table(out, &risk_coverage(&val_readings, &val_truth))?;
    write_tails(out, &val_readings, &val_truth)?;
    let eval = mnist::load(mnist_dir, Split::Eval)?;
    let mut rng = StdRng::seed_from_u64(0xE7A1);
    let mut cells = Vec::new();
    let mut truth: Vec<Option<u8>> = Vec::new();
    for s in &eval {
        cells.push(render_sample(s, &mut rng));
        truth.push(Some(s.label));
    }
    for _ in 0..eval.len() / 10 {
        cells.push(render_cell(Content::Blank, &mut rng));
        truth.push(None);
    }
    // One thread, whatever RAYON_NUM_THREADS says: the figure is per core,
    // and the pipeline runs one reader per file in parallel.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let read_all = || -> Vec<_> {
        cells
            .chunks(64)
            .flat_map(|c| reader.read_cells(c))
            .collect()
    };
    // A pass takes about a second, short enough for a neighbour's burst to
    // skew it: the speed reported is the median of several passes.
    let mut seconds = Vec::new();
    let mut readings = Vec::new();
    for _ in 0..SPEED_PASSES {
        let started = Instant::now();
        readings = pool.install(read_all);
        seconds.push(started.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let seconds = seconds[seconds.len() / 2];

    let digits: Vec<usize> = (0..truth.len()).filter(|&i| truth[i].is_some()).collect();
    let blanks: Vec<usize> = (0..truth.len()).filter(|&i| truth[i].is_none()).collect();
    let share = |n: usize, of: usize| n as f64 / of.max(1) as f64;
    writeln!(
        out,
        "evaluation split: {} digits of the evaluation split (MNIST test set, even indices; other writers) and {} blank cells, rendered into scanned boxes",
        digits.len(),
        blanks.len()
    )?;
    writeln!(
        out,
        "top-1 accuracy on digits: {:.4}",
        share(
            digits
                .iter()
                .filter(|&&i| readings[i].digit == truth[i])
                .count(),
            digits.len()
        )
    )?;
    let blank_right = blanks
        .iter()
        .filter(|&&i| readings[i].digit.is_none())
        .count();
    let digit_kept = digits
        .iter()
        .filter(|&&i| readings[i].digit.is_some())
        .count();
    writeln!(
        out,
        "blank detection accuracy (blank vs digit, all cells): {:.4} (blank cells read blank {:.4}, digit cells read as a digit {:.4})",
        share(blank_right + digit_kept, truth.len()),
        share(blank_right, blanks.len()),
        share(digit_kept, digits.len())
    )?;
    write_table(out, &risk_coverage(&readings, &truth))?;
    write_tails(out, &readings, &truth)?;
    writeln!(
        out,
        "speed: {:.0} cells/s on one thread (preprocessing and model, batches of 64; median of {SPEED_PASSES} passes)",
        truth.len() as f64 / seconds
    )?;
    Ok(())
}

fn write_tails(
    out: &mut dyn std::io::Write,
    readings: &[super::CellReading],
    truth: &[Option<u8>],
) -> std::io::Result<()> {
    writeln!(
        out,
        "digits given a small probability (not the one read): probability from, alternatives, expected to be the truth, were the truth"
    )?;
    for (from, n, expected, hits) in train::tail_calibration(readings, truth) {
        let from = match from {
            0.0 => "0".to_string(),
            _ => format!("{from:.0e}"),
        };
        writeln!(out, "{from:>9}  {n:>8}  {expected:>9.2}  {hits:>5}")?;
    }
    Ok(())
}

fn write_table(out: &mut dyn std::io::Write, rc: &RiskCoverage) -> std::io::Result<()> {
    writeln!(
        out,
        "threshold  accepted  error-among-accepted  (all cells)"
    )?;
    for (t, cov, err) in rc {
        writeln!(
            out,
            "{t:>9.4}  {:>7.2}%  {:>8.3}%",
            cov * 100.0,
            err * 100.0
        )?;
    }
    Ok(())
}

/// Labels `bench_labelled` reads, each a folder: a digit, or a blank cell.
const LABELS: [(&str, Option<u8>); 11] = [
    ("0", Some(0)),
    ("1", Some(1)),
    ("2", Some(2)),
    ("3", Some(3)),
    ("4", Some(4)),
    ("5", Some(5)),
    ("6", Some(6)),
    ("7", Some(7)),
    ("8", Some(8)),
    ("9", Some(9)),
    ("blank", None),
];

/// `todoke bench digits --labelled DIR`: the reader on cells a person
/// sorted into `DIR/0` … `DIR/9` and `DIR/blank` (cells of real forms,
/// written by `todoke digits cells`): the same figures as on MNIST, and the
/// cells read wrong at or above the shipped threshold, where a label is
/// worth a second look before the figure is believed.
pub fn bench_labelled(
    reader: &dyn DigitReader,
    dir: &Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let mut files = Vec::new();
    let mut truth = Vec::new();
    for (name, label) in LABELS {
        let sub = dir.join(name);
        if sub.is_dir() {
            for f in pngs_in(&sub)? {
                files.push(f);
                truth.push(label);
            }
        }
    }
    anyhow::ensure!(
        !files.is_empty(),
        "no labelled cells under {} (expected PNGs in {0}/0 … {0}/9 and {0}/blank)",
        dir.display()
    );
    let cells = files
        .iter()
        .map(|f| Ok(image::open(f)?.into_luma8()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let readings: Vec<_> = cells
        .chunks(64)
        .flat_map(|c| reader.read_cells(c))
        .collect();
    let info = reader.describe();
    writeln!(out, "reader: {} {}", info.name, info.version)?;
    let unsorted = pngs_in(dir)?.len();
    writeln!(
        out,
        "labelled cells in {}: {} digits, {} blank{}",
        dir.display(),
        truth.iter().flatten().count(),
        truth.iter().filter(|t| t.is_none()).count(),
        match unsorted {
            0 => String::new(),
            n => format!(" ({n} not yet sorted, not counted)"),
        }
    )?;
    let (digit, blank) = train::accuracies(&readings, &truth);
    writeln!(
        out,
        "top-1 accuracy on digits: {digit:.4}; blank vs digit: {blank:.4}"
    )?;
    let rc = risk_coverage(&readings, &truth);
    write_table(out, &rc)?;
    write_tails(out, &readings, &truth)?;
    let show = |t: Option<f32>| t.map_or("none".to_string(), |t| t.to_string());
    writeln!(
        out,
        "lowest threshold with error <= {}%: {}; with no error: {}",
        train::TARGET_ERROR * 100.0,
        show(train::pick_threshold(&rc)),
        show(train::pick_error_free(&rc))
    )?;
    let digit_name = |d: Option<u8>| d.map_or("blank".to_string(), |d| d.to_string());
    for ((f, r), t) in files.iter().zip(&readings).zip(&truth) {
        if r.digit != *t && r.confidence >= super::cnn::SHIPPED_THRESHOLD {
            writeln!(
                out,
                "read wrong at {:.4}: {} (labelled {}, read {})",
                r.confidence,
                f.display(),
                digit_name(*t),
                digit_name(r.digit)
            )?;
        }
    }
    Ok(())
}
