//! Intake stage: finds the scan files of an inbox and says where each came from.
//!
//! The inbox's first-level folders are branch offices; files directly in the
//! inbox belong to the branch `main`. Office clutter (hidden files, Windows
//! thumbnails, editor locks, partial-upload names) is not a scan and is left
//! where it is rather than quarantined.

use std::path::{Path, PathBuf};

/// One file found in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub path: PathBuf,
    /// Path relative to the inbox, `/`-separated.
    pub rel: String,
    pub branch: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("cannot read inbox folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Branch name of files placed directly in the inbox.
pub const ROOT_BRANCH: &str = "main";

/// Every scan under `inbox`, sorted by relative path so runs are repeatable.
pub fn collect(inbox: &Path) -> Result<Vec<Scan>, IntakeError> {
    let mut out = Vec::new();
    walk(inbox, inbox, &mut out)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Scan>) -> Result<(), IntakeError> {
    let io = |source| IntakeError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_clutter(&name) {
            continue;
        }
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel_path = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<String> = rel_path
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let branch = if parts.len() > 1 {
                parts[0].clone()
            } else {
                ROOT_BRANCH.to_string()
            };
            out.push(Scan {
                path: path.clone(),
                rel: parts.join("/"),
                branch,
            });
        }
    }
    Ok(())
}

/// Names that are never scans: hidden files, Windows and macOS leftovers,
/// Office lock files and the temporary names copy tools write to first.
pub fn is_clutter(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || lower == "thumbs.db"
        || lower == "desktop.ini"
        || lower.ends_with(".tmp")
        || lower.ends_with(".part")
        || lower.ends_with(".crdownload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_come_from_the_first_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sakura/2026")).unwrap();
        std::fs::write(dir.path().join("sakura/2026/a.png"), b"x").unwrap();
        std::fs::write(dir.path().join("b.pdf"), b"x").unwrap();
        std::fs::write(dir.path().join("Thumbs.db"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden.png"), b"x").unwrap();
        let scans = collect(dir.path()).unwrap();
        let got: Vec<(&str, &str)> = scans
            .iter()
            .map(|s| (s.rel.as_str(), s.branch.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("b.pdf", "main"), ("sakura/2026/a.png", "sakura")]
        );
    }
}
