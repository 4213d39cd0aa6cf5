//! `synth`, `run`, then `todoke tally --batches`: the counts in tally.json
//! are those of the paper (the synthetic truth) on the pages that validated,
//! the open mismatches are shown apart, and tally.html renders in headless
//! Chromium (a screenshot goes to `$TODOKE_SCREENSHOTS/tally.png` when set).

mod common;

use common::browser::Browser;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use todoke::synth::{synth, SynthOptions, Truth};

#[test]
fn tally_of_a_synthetic_batch_matches_the_paper() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("synth");
    synth(&SynthOptions {
        forms_dir: common::repo().join("forms"),
        mnist_dir: todoke::digits::mnist::default_dir(),
        form: Some("infant-checkup".into()),
        count: 40,
        seed: 1717,
        out: s.clone(),
        branches: vec!["honcho".into(), "sakura".into()],
        dpi: None,
        digits: Default::default(),
    })
    .unwrap();
    let out = dir.path().join("out");
    common::run(&s.join("inbox"), &s.join("register.csv"), &out);

    let mut truth: HashMap<(String, u64), todoke::synth::TruthPage> = HashMap::new();
    for branch in ["honcho", "sakura"] {
        for e in std::fs::read_dir(s.join("truth").join(branch)).unwrap() {
            let t: Truth =
                serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
            for p in t.pages {
                truth.insert((t.file.clone(), p.page as u64), p);
            }
        }
    }
    // What the paper says on the pages that validated, by branch; and the
    // pages left open.
    let mut paper: BTreeMap<String, Vec<&todoke::synth::TruthPage>> = BTreeMap::new();
    let mut open = 0;
    for r in common::records(&out) {
        let key = (
            r["source"].as_str().unwrap().to_string(),
            r["page"].as_u64().unwrap(),
        );
        match r["status"].as_str().unwrap() {
            "validated" => paper
                .entry(r["branch"].as_str().unwrap().to_string())
                .or_default()
                .push(&truth[&key]),
            "mismatch" | "unreadable" => open += 1,
            _ => {}
        }
    }
    let validated: usize = paper.values().map(Vec::len).sum();
    assert!(
        validated > 0 && open > 0,
        "{validated} validated, {open} open"
    );

    let tally_dir = out.join("tally");
    let o = common::todoke()
        .args(["tally", "--batches"])
        .arg(out.join("batches"))
        .args([
            "--from",
            "2000-04-01",
            "--to",
            "2100-03-31",
            "--by",
            "branch",
            "--out",
        ])
        .arg(&tally_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains(&format!(
        "tally: {}",
        tally_dir.join("tally.html").display()
    )));
    assert!(
        stdout.contains(&format!(
            "集計したページ: {validated}  未集計（要確認のまま）: {open}"
        )),
        "{stdout}"
    );
    for name in ["tally.csv", "tally.json", "tally.html"] {
        let mode = std::fs::metadata(tally_dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }

    let t: Value =
        serde_json::from_slice(&std::fs::read(tally_dir.join("tally.json")).unwrap()).unwrap();
    let form = t["forms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["form"] == "infant-checkup")
        .unwrap();
    let questions = form["questions"].as_array().unwrap();
    for col in form["columns"].as_array().unwrap() {
        let name = col["name"].as_str().unwrap();
        let pages: Vec<&todoke::synth::TruthPage> = match name {
            "合計" => paper.values().flatten().copied().collect(),
            b => paper.get(b).cloned().unwrap_or_default(),
        };
        assert_eq!(col["pages"], pages.len(), "{name}");
        for (qi, q) in questions.iter().enumerate() {
            let id = q["field"].as_str().unwrap();
            let mut want = vec![0u64; q["options"].as_array().unwrap().len()];
            for p in &pages {
                match &p.fields[id] {
                    Value::Array(ticks) => ticks
                        .iter()
                        .for_each(|i| want[i.as_u64().unwrap() as usize - 1] += 1),
                    v => want[v.as_u64().unwrap() as usize - 1] += 1,
                }
            }
            assert_eq!(col["questions"][qi]["options"], json!(want), "{name} {id}");
        }
        // 育てにくさを感じたときに対処できる親の割合, from the paper.
        let feels: Vec<_> = pages
            .iter()
            .filter(|p| [1, 2].contains(&p.fields["q_difficulty"].as_u64().unwrap()))
            .collect();
        let knows = feels
            .iter()
            .filter(|p| p.fields["q_know_solution"] == 1)
            .count();
        let i = form["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .position(|d| d["name"] == "育てにくさを感じたときに対処できる親の割合")
            .unwrap();
        let r = &col["indicators"][i];
        assert_eq!(
            (r["numerator"].as_u64(), r["denominator"].as_u64()),
            (Some(knows as u64), Some(feels.len() as u64)),
            "{name}"
        );
    }

    let b = Browser::start(1100, 1500);
    b.goto(&format!(
        "file://{}",
        tally_dir.join("tally.html").display()
    ));
    let page = b.source();
    assert!(
        page.contains("問診回答集計") && page.contains("<svg"),
        "{page}"
    );
    assert_eq!(
        b.count("svg rect") as usize,
        2 * (questions
            .iter()
            .map(|q| q["options"].as_array().unwrap().len())
            .sum::<usize>()
            + form["indicators"].as_array().unwrap().len())
    );
    if let Some(d) = std::env::var_os("TODOKE_SCREENSHOTS").map(PathBuf::from) {
        b.screenshot(&d.join("tally.png"));
    }
}
