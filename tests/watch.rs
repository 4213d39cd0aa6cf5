//! The watch daemon as IT runs it: the real binary, killed and restarted.

mod common;

use common::{close_batch, spawn_watch, synth_files, terminate, todoke, working_folder};

use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn inbox_is_empty(inbox: &Path) -> bool {
    todoke::intake::collect(inbox).unwrap().is_empty()
}

/// Everything the published batches say, across all of them.
struct Published {
    /// (source, page) → batch ids it appears in.
    pages: BTreeMap<(String, u64), Vec<String>>,
    /// source → (batch id, reason).
    quarantined: BTreeMap<String, Vec<(String, String)>>,
    validated_rows: Vec<String>,
}

fn published(out: &Path) -> Published {
    let mut p = Published {
        pages: BTreeMap::new(),
        quarantined: BTreeMap::new(),
        validated_rows: Vec::new(),
    };
    for e in std::fs::read_dir(out.join("batches")).unwrap() {
        let dir = e.unwrap().path();
        let id = dir.file_name().unwrap().to_string_lossy().to_string();
        if id.starts_with('.') {
            continue;
        }
        assert!(
            dir.join("READY").exists(),
            "batch {id} published without READY"
        );
        for line in std::fs::read_to_string(dir.join("records.jsonl"))
            .unwrap()
            .lines()
        {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = (
                r["source"].as_str().unwrap().to_string(),
                r["page"].as_u64().unwrap(),
            );
            p.pages.entry(key).or_default().push(id.clone());
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        for q in manifest["quarantined"].as_array().unwrap() {
            p.quarantined
                .entry(q["source"].as_str().unwrap().to_string())
                .or_default()
                .push((id.clone(), q["reason"].as_str().unwrap().to_string()));
        }
        for form in ["pregnancy-notification", "infant-checkup"] {
            let bytes = std::fs::read(dir.join(format!("{form}.csv"))).unwrap();
            let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
            // A page published twice would give the same row twice.
            for row in text.lines().skip(1) {
                p.validated_rows.push(format!("{form}:{row}"));
            }
        }
    }
    p
}

fn pages_in(bytes: &[u8], name: &str) -> usize {
    // pdfium binds once per process.
    static PDF: std::sync::OnceLock<todoke::decode::PdfRenderer> = std::sync::OnceLock::new();
    let pdf = PDF
        .get_or_init(|| todoke::decode::PdfRenderer::start(&todoke::decode::pdfium_library_path()));
    let limits = todoke::decode::DecodeLimits::default();
    match todoke::decode::decode(bytes, &limits, pdf) {
        Ok(pages) => pages.len(),
        Err(e) => panic!("{name}: {e}"),
    }
}

#[test]
fn a_file_being_written_is_taken_only_once_complete() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let files = synth_files(&synth, 3, 77);
    let (rel, bytes) = files
        .iter()
        .find(|(r, _)| r.ends_with(".png") || r.ends_with(".jpg"))
        .or_else(|| files.first())
        .unwrap()
        .clone();
    let work = dir.path().join("todoke");
    let settings = working_folder(&work, &synth.join("register.csv"));
    let daemon = spawn_watch(&settings);
    let target = work.join("inbox").join(&rel);
    let mut f = std::fs::File::create(&target).unwrap();
    f.write_all(&bytes[..bytes.len() / 2]).unwrap();
    f.flush().unwrap();
    // Well past the quiet period, but the format's end is missing.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        target.exists(),
        "a half-written file must stay in the inbox"
    );
    f.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(f);
    let written = Instant::now();
    while target.exists() && written.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let taken_after = written.elapsed();
    assert!(!target.exists(), "the completed file is taken");
    assert!(
        taken_after >= Duration::from_millis(700),
        "taken {taken_after:?} after its last write, within the quiet period"
    );
    // Its record is in the ledger: closing a batch publishes it.
    common::wait_until_read(&work, 1);
    terminate(daemon);
    close_batch(&settings);
    let p = published(&work.join("out"));
    assert!(p.quarantined.is_empty(), "{:?}", p.quarantined);
    assert_eq!(p.pages.len(), pages_in(&bytes, &rel));
    assert!(p.pages.keys().all(|(s, _)| s == &rel));
    eprintln!(
        "taken {:.2} s after its last write (quiet period 0.7 s)",
        taken_after.as_secs_f64()
    );
}

#[test]
fn killed_twenty_times_nothing_is_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let mut files = synth_files(&synth, 104, 9001);
    // Two blank sheets scanned in black and white are the same bytes, and
    // the daemon rightly takes the second for a duplicate: keep one.
    let mut seen = BTreeSet::new();
    files.retain(|(_, b)| seen.insert(b.clone()));
    let page_count: BTreeMap<String, usize> = files
        .iter()
        .map(|(r, b)| (r.clone(), pages_in(b, r)))
        .collect();
    let pages: usize = page_count.values().sum();
    assert!(pages >= 100, "{pages} pages");
    let work = dir.path().join("todoke");
    let settings = working_folder(&work, &synth.join("register.csv"));
    let inbox = work.join("inbox");

    // What arrives: every synthetic file (some written slowly in chunks),
    // copies of a few under other names, and corrupt files.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut arrivals: Vec<(String, Vec<u8>, bool)> = files
        .iter()
        .map(|(r, b)| (r.clone(), b.clone(), rng.gen_bool(0.3)))
        .collect();
    // Copies of some files under other names: whichever of the two is
    // taken first is read, the other is a duplicate.
    let mut copy_of: BTreeMap<String, String> = BTreeMap::new();
    for (i, (rel, bytes)) in files.iter().enumerate().step_by(9) {
        let branch = ["honcho", "sakura", "yatabe"][i % 3];
        let name = format!("{branch}/again-{}", rel.rsplit('/').next().unwrap());
        copy_of.insert(rel.clone(), name.clone());
        arrivals.push((name, bytes.clone(), false));
    }
    let mut corrupt = BTreeSet::new();
    for (i, (rel, bytes)) in files.iter().enumerate().step_by(11) {
        let name = format!("sakura/broken-{i}.{}", rel.rsplit('.').next().unwrap());
        corrupt.insert(name.clone());
        arrivals.push((name, bytes[..bytes.len() / 3].to_vec(), false));
    }
    corrupt.insert("honcho/notes.pdf".into());
    arrivals.push(("honcho/notes.pdf".into(), b"not a scan\n".to_vec(), false));
    corrupt.insert("yatabe/empty.png".into());
    arrivals.push(("yatabe/empty.png".into(), Vec::new(), false));
    // Interleave the copies with the originals, keeping each copy after its original.
    arrivals.sort_by_key(|(name, _, _)| {
        let base = name
            .rsplit('/')
            .next()
            .unwrap()
            .trim_start_matches("again-");
        (base.to_string(), name.contains("again-"))
    });

    let feeder_inbox = inbox.clone();
    let feeder = std::thread::spawn(move || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for (name, bytes, slow) in arrivals {
            let path = feeder_inbox.join(&name);
            let mut f = std::fs::File::create(&path).unwrap();
            if slow && bytes.len() > 4 {
                // Pauses shorter than the quiet period, as a slow SMB copy.
                for chunk in bytes.chunks(bytes.len() / 4 + 1) {
                    f.write_all(chunk).unwrap();
                    f.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(rng.gen_range(100..400)));
                }
            } else {
                f.write_all(&bytes).unwrap();
            }
            drop(f);
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
        }
    });

    let mut kills = 0;
    let mut closes = 0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    while kills < 24 || !feeder.is_finished() {
        let daemon = spawn_watch(&settings);
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..2500)));
        kill(daemon.into_child());
        kills += 1;
        if kills % 6 == 0 {
            // A close on demand, itself killed part of the time.
            let mut close = todoke()
                .args(["batch", "close", "--config"])
                .arg(&settings)
                .spawn()
                .unwrap();
            if kills % 12 == 0 {
                std::thread::sleep(Duration::from_millis(rng.gen_range(50..600)));
                let _ = close.kill();
            }
            close.wait().unwrap();
            closes += 1;
        }
    }
    feeder.join().unwrap();
    // Let the daemon finish the backlog, then stop it the polite way.
    let daemon = spawn_watch(&settings);
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let ledger = todoke::ledger::Ledger::open(&work.join("todoke.db")).unwrap();
        let s = ledger.status().unwrap();
        let waiting = s.received_by_branch.values().sum::<i64>();
        if inbox_is_empty(&inbox) && waiting == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "backlog never cleared"
        );
    }
    terminate(daemon);
    close_batch(&settings);
    eprintln!("{kills} kills, {closes} closes on demand");

    let p = published(&work.join("out"));
    let mut quarantined_duplicates = 0;
    for (rel, bytes) in &files {
        let n = page_count[rel];
        // The file itself or its copy was read; the other is a duplicate.
        let names: Vec<&String> = std::iter::once(rel).chain(copy_of.get(rel)).collect();
        let read: Vec<&&String> = names
            .iter()
            .filter(|name| p.pages.keys().any(|(s, _)| s == **name))
            .collect();
        assert_eq!(
            read.len(),
            1,
            "{rel}: read as {read:?}; quarantined {:?}",
            p.quarantined.get(rel)
        );
        for page in 1..=n as u64 {
            let batches = p.pages.get(&((*read[0]).clone(), page));
            assert_eq!(
                batches.map(|b| b.len()),
                Some(1),
                "{rel} page {page}: {batches:?}"
            );
        }
        assert!(
            !p.quarantined.contains_key(*read[0]),
            "{rel} read and quarantined"
        );
        for other in names.iter().filter(|n| **n != *read[0]) {
            let q = p
                .quarantined
                .get(*other)
                .unwrap_or_else(|| panic!("{other} lost"));
            assert_eq!(q.len(), 1, "{other}: {q:?}");
            assert!(q[0].1.starts_with("duplicate_file"), "{other}: {q:?}");
            quarantined_duplicates += 1;
        }
        let _ = bytes;
    }
    for name in &corrupt {
        let q = p
            .quarantined
            .get(name)
            .unwrap_or_else(|| panic!("{name} lost"));
        assert_eq!(q.len(), 1, "{name}: {q:?}");
    }
    // Nothing else was published.
    assert_eq!(p.pages.len(), pages);
    assert_eq!(quarantined_duplicates, copy_of.len());
    assert_eq!(p.quarantined.len(), copy_of.len() + corrupt.len());
    let unique: BTreeSet<&String> = p.validated_rows.iter().collect();
    assert_eq!(
        unique.len(),
        p.validated_rows.len(),
        "a validated row twice"
    );
}
