//! `todoke digits cells`, then `todoke bench digits --labelled`: how a city
//! measures the reader on its own handwriting. Here the sample scans' cells
//! are sorted by the samples' truth, as a person would sort them by eye.

mod common;

use std::collections::HashMap;
use todoke::synth::Truth;

/// The digit written in each box of each digit field of a page, from its
/// truth: identifiers and weeks as written, dates as their era's YYMMDD.
fn boxes_of(
    fields: &std::collections::BTreeMap<String, serde_json::Value>,
) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    for (id, v) in fields {
        let Some(text) = v.as_str() else { continue };
        let digits = match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => todoke::matching::era_digits(date)
                .expect("in an era")
                .1
                .to_vec(),
            Err(_) => text.bytes().map(|b| b - b'0').collect(),
        };
        out.insert(id.clone(), digits);
    }
    out
}

#[test]
fn the_samples_cells_sorted_by_their_truth_read_as_labelled() {
    let samples = common::repo().join("samples");
    let scans: Vec<_> = todoke::intake::collect(&samples.join("inbox"))
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cells");
    let config = todoke::config::Config {
        forms_dir: common::repo().join("forms"),
        ..Default::default()
    };
    let done = todoke::pipeline::export_cells(&scans, &config, &out).unwrap();
    assert_eq!(done.files, scans.len());

    let mut truth: HashMap<(std::path::PathBuf, usize), HashMap<String, Vec<u8>>> = HashMap::new();
    for scan in &scans {
        let rel = scan.strip_prefix(samples.join("inbox")).unwrap();
        let t: Truth = serde_json::from_str(
            &std::fs::read_to_string(
                samples
                    .join("truth")
                    .join(format!("{}.json", rel.display())),
            )
            .unwrap(),
        )
        .unwrap();
        for p in t.pages {
            truth.insert((scan.clone(), p.page), boxes_of(&p.fields));
        }
    }
    // Every box of every read side's handwritten fields, the My Number's
    // aside, was written once.
    let expected: usize = truth
        .values()
        .flat_map(|f| f.iter())
        .filter(|(id, _)| id.as_str() != "my_number")
        .map(|(_, d)| d.len())
        .sum();
    assert!(expected > 200, "{expected} boxes in the samples");
    assert_eq!(done.cells.len(), expected);
    assert!(done.cells.iter().all(|c| c.field != "my_number"));

    for c in &done.cells {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&c.png).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", c.png.display());
        let digit = truth[&(c.scan.clone(), c.page)][&c.field][c.index];
        let to = out.join(digit.to_string());
        std::fs::create_dir_all(&to).unwrap();
        std::fs::rename(&c.png, to.join(c.png.file_name().unwrap())).unwrap();
    }

    let mut report = Vec::new();
    todoke::digits::bench::bench_labelled(&common::reader(), &out, &mut report).unwrap();
    let report = String::from_utf8(report).unwrap();
    println!("{report}");
    assert!(
        report.contains(&format!("{expected} digits, 0 blank")),
        "{report}"
    );
    let top1: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("top-1 accuracy on digits: "))
        .and_then(|l| l.split(';').next())
        .and_then(|v| v.parse().ok())
        .expect("top-1 line");
    // The samples are written with training digits, so this is no measure
    // of the reader: it shows the crops are the ones the reader reads well.
    assert!(top1 >= 0.95, "top-1 {top1} on the samples' cells");
}
