//! Shared set-up for the end-to-end tests: the shipped model and templates.

#![allow(dead_code)]

pub mod browser;

use std::path::{Path, PathBuf};
use todoke::digits::cnn::{default_model_path, CnnReader};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn reader() -> CnnReader {
    CnnReader::load(&default_model_path()).expect("models/digits.safetensors loads")
}

pub fn run(inbox: &Path, register: &Path, out: &Path) -> todoke::pipeline::RunSummary {
    let opts = todoke::pipeline::RunOptions {
        inbox: inbox.to_path_buf(),
        register: register.to_path_buf(),
        out: out.to_path_buf(),
        config: todoke::config::Config {
            forms_dir: repo().join("forms"),
            ..Default::default()
        },
        batch_id: Some("test".into()),
    };
    todoke::pipeline::run(&opts, &reader()).expect("batch is written")
}

pub fn records(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("batches/test/records.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The built `todoke` binary, logging warnings only.
pub fn todoke() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_todoke"));
    c.env("TODOKE_LOG", "warn");
    c
}

/// A working folder made by `todoke init`, tuned for a test's patience.
pub fn working_folder(dir: &Path, register: &Path) -> PathBuf {
    let st = todoke()
        .arg("init")
        .arg(dir)
        .arg("--forms-dir")
        .arg(repo().join("forms"))
        .status()
        .unwrap();
    assert!(st.success());
    let settings = dir.join("todoke.toml");
    let text = std::fs::read_to_string(&settings)
        .unwrap()
        .replace("quiet_secs = 5.0", "quiet_secs = 0.7")
        .replace("rescan_secs = 30.0", "rescan_secs = 1.0")
        .replace("close_at = \"Mon 09:00\"", "close_at = \"\"");
    std::fs::write(&settings, text).unwrap();
    std::fs::copy(register, dir.join("register.csv")).unwrap();
    settings
}

pub fn synth_files(dir: &Path, count: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    todoke::synth::synth(&todoke::synth::SynthOptions {
        forms_dir: repo().join("forms"),
        mnist_dir: todoke::digits::mnist::default_dir(),
        form: None,
        count,
        seed,
        out: dir.to_path_buf(),
        branches: vec!["honcho".into(), "sakura".into(), "yatabe".into()],
        dpi: Some(200),
        digits: Default::default(),
    })
    .unwrap();
    let mut files: Vec<(String, Vec<u8>)> = todoke::intake::collect(&dir.join("inbox"))
        .unwrap()
        .into_iter()
        .map(|s| (s.rel.clone(), std::fs::read(&s.path).unwrap()))
        .collect();
    files.sort();
    files
}

/// A child process that is killed if the test ends early, so a failed
/// test leaves no daemon behind.
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn new(child: std::process::Child) -> Running {
        Running(Some(child))
    }

    pub fn get(&mut self) -> &mut std::process::Child {
        self.0.as_mut().unwrap()
    }

    pub fn into_child(mut self) -> std::process::Child {
        self.0.take().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `todoke watch` on a working folder, killed if the test ends early.
pub fn spawn_watch(settings: &Path) -> Running {
    Running::new(
        todoke()
            .arg("watch")
            .arg("--config")
            .arg(settings)
            .spawn()
            .unwrap(),
    )
}

/// Waits until the daemon of the working folder `work` has taken at least
/// `taken` scans and none is left unread: a fixed pause is not enough on a
/// loaded machine.
pub fn wait_until_read(work: &Path, taken: i64) {
    let start = std::time::Instant::now();
    loop {
        let by_state = todoke::ledger::Ledger::open_existing(
            &work.join("todoke.db"),
            std::time::Duration::from_secs(5),
        )
        .and_then(|l| l.status())
        .map(|s| s.by_state)
        .unwrap_or_default();
        let received = by_state.get("received").copied().unwrap_or(0);
        if received == 0 && by_state.values().sum::<i64>() >= taken {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(180),
            "still unread after 3 minutes: {by_state:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// The review page served on a free port on its own thread, as reviewer
/// "tester": its port and access token.
pub fn serve_review(config: todoke::config::Config) -> (u16, String) {
    let server = todoke::serve::ReviewServer::start(
        config,
        &todoke::serve::ReviewOptions {
            bind: "127.0.0.1".into(),
            port: 0,
            reviewer: Some("tester".into()),
        },
    )
    .unwrap();
    let url = server.url.clone();
    std::thread::spawn(move || server.run());
    let rest = url.strip_prefix("http://127.0.0.1:").unwrap();
    let (port, token) = rest.split_once("/?t=").unwrap();
    (port.parse().unwrap(), token.to_string())
}

/// Stops a daemon the polite way and checks it exited cleanly.
pub fn terminate(running: Running) {
    let child = running.into_child();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "SIGTERM ends the daemon cleanly");
}

/// `todoke batch close`; returns the batch folder it printed.
pub fn close_batch(settings: &Path) -> PathBuf {
    let out = todoke()
        .args(["batch", "close", "--config"])
        .arg(settings)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("batch: "))
            .unwrap(),
    )
}
