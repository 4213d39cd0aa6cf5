//! `synth`, `run`, then `todoke tally --batches`: the counts in tally.json
//! are those of the paper (the synthetic truth) on the pages that validated,
//! the open mismatches are shown apart, and tally.html renders in headless
//! Chromium (a screenshot goes to `$TODOKE_SCREENSHOTS/tally.png` when set).

mod common;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
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

    let b = Browser::start();
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

/// One HTTP/1.1 exchange with chromedriver; returns status and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let mut body = Vec::new();
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).unwrap();
        }
        None => {
            r.read_to_end(&mut body).unwrap();
        }
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A minimal WebDriver client, as in tests/review.rs.
struct Browser {
    port: u16,
    session: String,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            "",
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) is installed by make setup");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,1500", "--lang=ja"]}}}});
        let mut b = Browser {
            port,
            session: String::new(),
            driver,
        };
        let v = b.call("POST", "/session", caps);
        b.session = v["sessionId"].as_str().unwrap().to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = http(self.port, method, path, &body);
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "webdriver {method} {path}: {text}");
        v["value"].clone()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), json!({ "url": url }));
    }

    fn source(&self) -> String {
        self.call("GET", &self.s("/source"), Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn count(&self, css: &str) -> u64 {
        self.call(
            "POST",
            &self.s("/elements"),
            json!({"using": "css selector", "value": css}),
        )
        .as_array()
        .map(|a| a.len() as u64)
        .unwrap_or(0)
    }

    fn screenshot(&self, to: &Path) {
        let b64 = self.call("GET", &self.s("/screenshot"), Value::Null);
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }
}
