//! `synth` then `run`: every page is accounted for, no validated row differs
//! from the truth, and every deliberate mismatch reaches staff.

mod common;

use std::collections::HashMap;
use todoke::synth::{synth, SynthOptions, Truth};

#[test]
fn synthetic_batch_is_accounted_for_and_never_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("synth");
    let summary = synth(&SynthOptions {
        forms_dir: common::repo().join("forms"),
        mnist_dir: todoke::digits::mnist::default_dir(),
        form: None,
        count: 60,
        seed: 4242,
        out: s.clone(),
        branches: vec!["honcho".into(), "sakura".into(), "yatabe".into()],
        dpi: None,
        digits: Default::default(),
    })
    .unwrap();
    let out = dir.path().join("out");
    let run = common::run(&s.join("inbox"), &s.join("register.csv"), &out);
    assert_eq!(run.quarantined, 0);
    assert_eq!(run.pages, summary.pages, "every page has a record");

    let mut truth: HashMap<(String, u64), todoke::synth::TruthPage> = HashMap::new();
    for branch in ["honcho", "sakura", "yatabe"] {
        let Ok(entries) = std::fs::read_dir(s.join("truth").join(branch)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let t: Truth = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let name = path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_string();
            for p in t.pages {
                truth.insert((format!("{branch}/{name}"), p.page as u64), p);
            }
        }
    }
    let records = common::records(&out);
    assert_eq!(records.len(), truth.len());
    let mismatches = std::fs::read_to_string(out.join("batches/test/mismatches.csv")).unwrap();
    let (mut validated, mut readable, mut deliberate) = (0, 0, 0);
    for r in &records {
        let key = (
            r["source"].as_str().unwrap().to_string(),
            r["page"].as_u64().unwrap(),
        );
        let t = truth
            .get(&key)
            .unwrap_or_else(|| panic!("no truth for {key:?}"));
        assert_eq!(r["side"].as_str(), t.side.as_deref(), "{key:?} side");
        if t.mismatch.is_some() {
            deliberate += 1;
            assert_eq!(r["status"], "mismatch", "{key:?} is a deliberate mismatch");
            assert!(
                mismatches.contains(&format!("{},{}", key.0, key.1)),
                "{key:?} not in mismatches.csv"
            );
        }
        if r["status"] == "validated" {
            validated += 1;
            for (id, want) in &t.fields {
                let got = &r["fields"][id]["value"];
                if id == "my_number" {
                    // records.jsonl masks it; the last four digits must agree.
                    let w = want.as_str().unwrap();
                    assert!(
                        got.as_str().unwrap().ends_with(&w[w.len() - 4..]),
                        "{key:?} {id}"
                    );
                } else {
                    assert_eq!(
                        got, want,
                        "{key:?} field {id}: validated value differs from truth"
                    );
                }
            }
        }
        if t.mismatch.is_none() && !t.fields.is_empty() {
            readable += 1;
        }
    }
    assert!(
        deliberate > 0,
        "the synthetic batch holds deliberate mismatches"
    );
    println!("validated {validated} of {readable} non-mismatch pages; {deliberate} deliberate mismatches");
    // Otherwise "no validated row differs from the truth" would hold vacuously.
    assert!(validated > 0, "no page validated");
    // The CSV holds exactly the validated pages.
    let csv_rows: usize = ["pregnancy-notification", "infant-checkup"]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(out.join(format!("batches/test/{f}.csv"))).unwrap();
            let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
            assert!(!bad);
            text.split("\r\n").filter(|l| !l.is_empty()).count() - 1
        })
        .sum();
    assert_eq!(csv_rows, validated);

    // What staff read is Japanese (the default): in report.html nothing but
    // file names, branch folders and the batch id is in Latin letters, each
    // reason keeps its code in data-reason, and fields are named by the
    // label printed on their own form.
    let html = std::fs::read_to_string(out.join("batches/test/report.html")).unwrap();
    let mut allowed: Vec<String> = records
        .iter()
        .flat_map(|r| {
            [
                r["source"].as_str(),
                r["branch"].as_str(),
                r["detail"].as_str(),
            ]
            .into_iter()
            .flatten()
            .map(String::from)
        })
        .collect();
    allowed.push("test".into());
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let shown = todoke::i18n::visible_text(&html);
    let left = todoke::i18n::english_words(&shown, &allowed);
    assert!(left.is_empty(), "untranslated in report.html: {left:?}");
    let needs_staff = records.iter().filter(|r| r["status"] == "mismatch").count();
    assert!(needs_staff > 0);
    assert!(shown.contains(&format!("職員の確認が必要なページ（{needs_staff}件）")));
    for r in records.iter().filter(|r| r["status"] == "mismatch") {
        for code in r["reasons"].as_array().unwrap() {
            let code = code.as_str().unwrap();
            assert!(html.contains(&format!("data-reason=\"{code}\"")), "{code}");
            assert!(!shown.contains(code), "bare reason code {code} shown");
        }
    }
    let preg_atena = html.contains("data-field=\"atena_no\"")
        && html
            .split("<div class=\"card\">")
            .any(|card| card.contains("妊娠届出書") && card.contains("<b>宛名番号</b>"));
    assert!(preg_atena, "the notification's own label for atena_no");
    assert!(!html
        .split("<div class=\"card\">")
        .any(|card| card.contains("妊娠届出書") && card.contains("（お子さん）")));
    // mismatches.csv: Japanese headers, sentences, and the codes in a column.
    let mut csv = csv::Reader::from_reader(mismatches.trim_start_matches('\u{feff}').as_bytes());
    let head: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(head[5..7], ["確認が必要な理由", "理由コード"]);
    for row in csv.records() {
        let row = row.unwrap();
        assert!(!row[6].is_empty() && !row[5].contains(&row[6]), "{row:?}");
    }
}
