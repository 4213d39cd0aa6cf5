//! Shared set-up for the end-to-end tests: the shipped model and templates.

#![allow(dead_code)]

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
