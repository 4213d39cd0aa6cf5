//! `todoke review` in headless Chromium (driven through chromedriver's
//! WebDriver protocol): staff clear mismatches by keyboard; the ledger, the
//! audit log and the next batch's CSV say what they did.

mod common;

use common::browser::{free_port, http, Browser};
use common::{close_batch, spawn_watch, synth_files, terminate, todoke, working_folder, Running};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// A working folder whose first batch holds synthetic mismatches.
fn batch_with_mismatches(dir: &Path) -> (PathBuf, PathBuf) {
    let synth = dir.join("synth");
    synth_files(&synth, 24, 515);
    let work = dir.join("todoke");
    let settings = working_folder(&work, &synth.join("register.csv"));
    for e in todoke::intake::collect(&synth.join("inbox")).unwrap() {
        let to = work.join("inbox").join(&e.rel);
        std::fs::copy(&e.path, &to).unwrap();
    }
    let daemon = spawn_watch(&settings);
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let l = todoke::ledger::Ledger::open(&work.join("todoke.db")).unwrap();
        let s = l.status().unwrap();
        if todoke::intake::collect(&work.join("inbox"))
            .unwrap()
            .is_empty()
            && s.received_by_branch.is_empty()
            && s.by_state.values().sum::<i64>() > 0
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300));
    }
    terminate(daemon);
    close_batch(&settings);
    (settings, synth)
}

/// The truth of every synthetic page, by `<branch>/<file>` and page.
fn truth(synth: &Path) -> BTreeMap<(String, i64), todoke::synth::TruthPage> {
    let mut out = BTreeMap::new();
    for e in todoke::intake::collect(&synth.join("truth")).unwrap() {
        let t: todoke::synth::Truth =
            serde_json::from_str(&std::fs::read_to_string(&e.path).unwrap()).unwrap();
        for p in t.pages {
            out.insert((t.file.clone(), p.page as i64), p);
        }
    }
    out
}

fn value_text(v: &Value) -> String {
    todoke::review::value_text(v)
}

#[test]
fn staff_clear_mismatches_by_keyboard_and_the_next_batch_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (settings, synth) = batch_with_mismatches(dir.path());
    let truth = truth(&synth);
    let db = settings.parent().unwrap().join("todoke.db");
    let open_before = todoke::ledger::Ledger::open(&db)
        .unwrap()
        .open_mismatches()
        .unwrap();
    // Pages a reviewer can settle: not a deliberate mismatch, so the person
    // is in the register.
    let settle: Vec<&todoke::ledger::OpenMismatch> = open_before
        .iter()
        .filter(|m| {
            truth
                .get(&(m.record.source.clone(), m.page))
                .is_some_and(|t| t.mismatch.is_none() && !t.fields.is_empty())
        })
        .collect();
    assert!(settle.len() >= 4, "{} settleable mismatches", settle.len());

    let port = free_port();
    let mut review = Running::new(
        todoke()
            .args(["review", "--config"])
            .arg(&settings)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(review.get().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("review: ").unwrap().to_string();
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/?t=")),
        "{url}"
    );

    // Without the token, or without the CSRF value, nothing is served or changed.
    let (status, _, _) = http(port, "GET", "/", &[], "");
    assert_eq!(status, 403);
    let token = url.split("?t=").nth(1).unwrap();
    let (status, headers, _) = http(port, "GET", &format!("/?t={token}"), &[], "");
    assert_eq!(status, 200);
    assert!(headers["set-cookie"].contains("HttpOnly"));
    let cookie = format!("todoke_t={token}; todoke_reviewer=mallory");
    let target = format!("/m/{}/{}", settle[0].scan_id, settle[0].page);
    let (status, _, _) = http(
        port,
        "POST",
        &target,
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "action=reject&reason=x",
    );
    assert_eq!(status, 403, "a change without the CSRF value is refused");
    let (status, _, _) = http(
        port,
        "POST",
        &target,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "action=reject&reason=x&csrf=whatever",
    );
    assert_eq!(status, 403, "a change without the token is refused");

    // Data the page shows as it is: file names, branch folders, and the
    // two key names the hints spell (Enter) and the program's name.
    let mut allowed: Vec<String> = open_before
        .iter()
        .flat_map(|m| [m.record.source.clone(), m.record.branch.clone()])
        .collect();
    allowed.extend(["Enter".to_string(), "todoke".to_string()]);
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let untranslated =
        |html: &str| todoke::i18n::english_words(&todoke::i18n::visible_text(html), &allowed);

    let b = Browser::start(1280, 1100);
    b.goto(&url);
    let page = b.source();
    assert!(page.contains("要確認の書類"), "{page}");
    assert_eq!(
        untranslated(&page),
        Vec::<String>::new(),
        "Japanese list page"
    );
    assert!(
        page.contains("data-reason=\""),
        "reason codes kept in the HTML"
    );
    b.type_into("#login-name", "山田 花子");
    b.keys(&[ENTER]);
    let page = b.source();
    assert!(
        page.contains("確認者: 山田 花子"),
        "logged in: {} {page}",
        b.url()
    );
    let shots = std::env::var_os("TODOKE_SCREENSHOTS").map(PathBuf::from);
    if let Some(d) = &shots {
        b.screenshot(&d.join("review-list.png"));
    }

    // Fill a card's doubtful fields with what the paper says, as a reviewer
    // who has looked at each image does.
    let fill_truth = |m: &todoke::ledger::OpenMismatch, skip: &[&str]| {
        let t = &truth[&(m.record.source.clone(), m.page)];
        for id in todoke::review::doubtful_fields(&m.record) {
            if skip.contains(&id.as_str()) {
                continue;
            }
            if let Some(v) = t.fields.get(&id) {
                b.type_into(&format!("input[name='f_{id}']"), &value_text(v));
            }
        }
        b.keys(&[ESCAPE]);
    };
    let card = |m: &todoke::ledger::OpenMismatch| {
        b.goto(&format!(
            "http://127.0.0.1:{port}/m/{}/{}",
            m.scan_id, m.page
        ));
    };

    // 1. Accept the first candidate by keyboard: one key.
    let first = settle
        .iter()
        .find(|m| {
            let t = &truth[&(m.record.source.clone(), m.page)];
            m.record.candidates.first().is_some_and(|c| {
                Some(&json!(c.atena_no)) == t.fields.get("atena_no")
                    && Some(&json!(c.birth_date)) == t.fields.get("birth_date")
            })
        })
        .expect("a mismatch whose first candidate is the right person");
    card(first);
    if let Some(d) = &shots {
        b.screenshot(&d.join("review-card.png"));
    }
    let page = b.source();
    assert_eq!(untranslated(&page), Vec::<String>::new(), "Japanese card");
    assert!(page.contains("修正を保存（Enter）") && page.contains("却下の理由"));
    for code in &first.record.reasons {
        assert!(page.contains(&format!("data-reason=\"{code}\"")), "{code}");
        assert!(
            !todoke::i18n::visible_text(&page).contains(code.as_str()),
            "bare {code}"
        );
    }
    fill_truth(first, &["atena_no", "birth_date"]);
    let keystrokes = b.keys(&["1"]);
    assert_eq!(keystrokes, 1);
    assert!(
        !b.url()
            .split('?')
            .next()
            .unwrap()
            .ends_with(&format!("/m/{}/{}", first.scan_id, first.page)),
        "the next mismatch is shown"
    );
    assert!(
        b.source().contains("修正を保存しました。"),
        "the save is confirmed"
    );

    // 2. A typed correction that matches one person.
    let typed = settle
        .iter()
        .find(|m| m.scan_id != first.scan_id || m.page != first.page)
        .unwrap();
    card(typed);
    fill_truth(typed, &[]);
    b.type_into("input[name='f_atena_no']", {
        let t = &truth[&(typed.record.source.clone(), typed.page)];
        &value_text(&t.fields["atena_no"])
    });
    b.keys(&[ENTER]);

    // 3. A typed correction that matches nobody stays open.
    let wrong = settle
        .iter()
        .find(|m| {
            ![first, typed]
                .iter()
                .any(|x| x.scan_id == m.scan_id && x.page == m.page)
        })
        .unwrap();
    card(wrong);
    fill_truth(wrong, &[]);
    b.type_into("input[name='f_atena_no']", "9999999999");
    b.keys(&[ENTER]);
    let page = b.source();
    assert!(
        page.contains("まだ確定できません")
            && page.contains("data-reason=\"register_not_found\"")
            && page.contains("住民記録にいません"),
        "{page}"
    );
    assert_eq!(
        untranslated(&page),
        Vec::<String>::new(),
        "refused correction"
    );

    // 4. Reject one, with a reason, by keyboard.
    let rejected = settle
        .iter()
        .find(|m| {
            ![first, typed, wrong]
                .iter()
                .any(|x| x.scan_id == m.scan_id && x.page == m.page)
        })
        .unwrap();
    card(rejected);
    b.keys(&["x"]);
    b.type_into("#reject-reason", "同じ書類");
    b.keys(&[ENTER]);
    drop(b);
    drop(review);

    // The same page in English ([ui] lang = "en" or --lang en).
    let port = free_port();
    let mut review = Running::new(
        todoke()
            .args(["review", "--lang", "en", "--config"])
            .arg(&settings)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(review.get().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("review: ").unwrap().to_string();
    let b = Browser::start(1280, 1100);
    b.goto(&url);
    let page = b.source();
    assert!(
        page.contains("Open mismatches") && page.contains("<html lang=\"en\">"),
        "{page}"
    );
    b.type_into("#login-name", "山田 花子");
    b.keys(&[ENTER]);
    assert!(b.source().contains("Reviewer: 山田 花子"));
    b.goto(&format!(
        "http://127.0.0.1:{port}/m/{}/{}",
        wrong.scan_id, wrong.page
    ));
    b.type_into("input[name='f_atena_no']", "9999999999");
    b.keys(&[ENTER]);
    let page = b.source();
    assert!(
        page.contains("Still open")
            && page.contains("data-reason=\"register_not_found\"")
            && page.contains("Nobody in the resident register"),
        "{page}"
    );
    drop(b);
    drop(review);

    // The ledger and the audit log say what happened, and who did it.
    let ledger = todoke::ledger::Ledger::open(&db).unwrap();
    let still: Vec<(i64, i64)> = ledger
        .open_mismatches()
        .unwrap()
        .iter()
        .map(|m| (m.scan_id, m.page))
        .collect();
    let key = |m: &todoke::ledger::OpenMismatch| (m.scan_id, m.page);
    assert!(!still.contains(&key(first)), "accepted by key");
    assert!(!still.contains(&key(typed)), "typed correction accepted");
    assert!(
        still.contains(&key(wrong)),
        "a correction matching nobody stays open"
    );
    assert!(!still.contains(&key(rejected)), "rejected");
    let audit = ledger.audit(None).unwrap();
    let actions: Vec<(i64, &str)> = audit
        .iter()
        .map(|e| (e.scan_id, e.action.as_str()))
        .collect();
    assert!(actions.contains(&(first.scan_id, "accept")));
    assert!(actions.contains(&(typed.scan_id, "accept")));
    assert!(actions.contains(&(wrong.scan_id, "still_open")));
    assert!(actions.contains(&(rejected.scan_id, "reject")));
    assert!(audit.iter().all(|e| e.reviewer == "山田 花子"));
    assert!(audit
        .iter()
        .any(|e| e.action == "reject" && e.reason.as_deref() == Some("同じ書類")));
    let printed = todoke()
        .args(["audit", "--config"])
        .arg(&settings)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&printed.stdout).contains("reject"));

    // The next batch holds the two corrected records, marked, with the reviewer.
    let batch = close_batch(&settings);
    let mut corrected = 0;
    for form in ["pregnancy-notification", "infant-checkup"] {
        let bytes = std::fs::read(batch.join(format!("{form}.csv"))).unwrap();
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
        for row in text.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
            assert!(row.ends_with(",1,山田 花子"), "{row}");
            corrected += 1;
        }
    }
    assert_eq!(corrected, 2);
}
