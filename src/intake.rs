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

/// Whether a file's format says it has been written to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Complete,
    Incomplete,
    /// TIFF has no end marker; only decoding every directory tells.
    NeedsDecoding,
    /// Not a scan format: taken after the quiet period, then quarantined.
    Unknown,
}

/// Judges a file from its first and last bytes. Scanners and copy tools
/// write front to back, so a file whose end marker is present is complete.
pub fn ending(head: &[u8], tail: &[u8]) -> Ending {
    // Trailing padding after the end marker is common (scanner firmware,
    // SMB block fills); allow a little.
    let trimmed = {
        let end = tail
            .iter()
            .rposition(|&b| b != 0 && b != b'\n' && b != b'\r' && b != b' ');
        &tail[..end.map_or(0, |e| e + 1)]
    };
    if head.starts_with(b"%PDF-") {
        let window = &trimmed[trimmed.len().saturating_sub(1024)..];
        if window.windows(5).any(|w| w == b"%%EOF") {
            Ending::Complete
        } else {
            Ending::Incomplete
        }
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        if tail.ends_with(b"IEND\xAE\x42\x60\x82") {
            Ending::Complete
        } else {
            Ending::Incomplete
        }
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let window = &tail[tail.len().saturating_sub(64)..];
        if window.windows(2).any(|w| w == [0xFF, 0xD9]) {
            Ending::Complete
        } else {
            Ending::Incomplete
        }
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        Ending::NeedsDecoding
    } else {
        Ending::Unknown
    }
}

/// Reads a file's head and tail and judges it; TIFFs are walked through
/// every directory. An empty file is never complete by its format.
pub fn looks_complete(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut head = vec![0u8; len.min(16) as usize];
    f.read_exact(&mut head)?;
    let tail_len = len.min(2048);
    f.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    f.read_exact(&mut tail)?;
    Ok(match ending(&head, &tail) {
        Ending::Complete | Ending::Unknown => true,
        Ending::Incomplete => false,
        Ending::NeedsDecoding => tiff_readable(std::fs::File::open(path)?),
    })
}

fn tiff_readable(f: std::fs::File) -> bool {
    let Ok(mut d) = tiff::decoder::Decoder::new(std::io::BufReader::new(f)) else {
        return false;
    };
    // Decoding every page is the only sure test; it happens once per file.
    loop {
        if d.read_image().is_err() {
            return false;
        }
        if !d.more_images() {
            return true;
        }
        if d.next_image().is_err() {
            return false;
        }
    }
}

/// Tracks files until their size and mtime have been still for the quiet
/// period. Time is passed in, so the rule tests without waiting.
#[derive(Debug, Default)]
pub struct QuietTracker {
    seen: std::collections::HashMap<PathBuf, (u64, std::time::SystemTime, std::time::Instant)>,
}

impl QuietTracker {
    /// Records what a file looks like now; true once it has looked the same
    /// for `quiet`.
    pub fn observe(
        &mut self,
        path: &Path,
        size: u64,
        mtime: std::time::SystemTime,
        now: std::time::Instant,
        quiet: std::time::Duration,
    ) -> bool {
        let e = self
            .seen
            .entry(path.to_path_buf())
            .or_insert((size, mtime, now));
        if e.0 != size || e.1 != mtime {
            *e = (size, mtime, now);
        }
        now.duration_since(e.2) >= quiet
    }

    pub fn forget(&mut self, path: &Path) {
        self.seen.remove(path);
    }

    /// Drops files that vanished (taken, or removed by staff).
    pub fn retain_existing(&mut self) {
        self.seen.retain(|p, _| p.exists());
    }

    pub fn tracked(&self) -> Vec<PathBuf> {
        self.seen.keys().cloned().collect()
    }
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

    #[test]
    fn a_scan_is_complete_only_with_its_end_marker() {
        let png = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("forms/pregnancy-notification.png"),
        )
        .unwrap();
        let judge = |b: &[u8]| ending(&b[..16.min(b.len())], &b[b.len().saturating_sub(2048)..]);
        assert_eq!(judge(&png), Ending::Complete);
        assert_eq!(judge(&png[..png.len() - 5]), Ending::Incomplete);
        assert_eq!(judge(&png[..png.len() / 2]), Ending::Incomplete);
        let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n\0\0".to_vec();
        assert_eq!(judge(&pdf), Ending::Complete);
        assert_eq!(judge(&pdf[..20]), Ending::Incomplete);
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
        assert_eq!(judge(&jpeg), Ending::Complete);
        assert_eq!(judge(&jpeg[..7]), Ending::Incomplete);
        assert_eq!(judge(b"II*\0rest"), Ending::NeedsDecoding);
        assert_eq!(judge(b"meeting notes"), Ending::Unknown);
    }

    #[test]
    fn a_half_written_tiff_is_not_complete() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::GrayImage::from_fn(300, 200, |x, y| image::Luma([((x * y) % 251) as u8]));
        let full = dir.path().join("full.tif");
        img.save(&full).unwrap();
        assert!(looks_complete(&full).unwrap());
        let bytes = std::fs::read(&full).unwrap();
        let half = dir.path().join("half.tif");
        std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
        assert!(!looks_complete(&half).unwrap());
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        assert!(!looks_complete(&empty).unwrap());
    }

    #[test]
    fn a_file_is_quiet_only_after_it_stops_changing() {
        use std::time::{Duration, Instant, SystemTime};
        let mut q = QuietTracker::default();
        let t0 = Instant::now();
        let m0 = SystemTime::UNIX_EPOCH;
        let p = Path::new("/inbox/honcho/a.pdf");
        let quiet = Duration::from_secs(5);
        assert!(!q.observe(p, 100, m0, t0, quiet));
        assert!(!q.observe(p, 100, m0, t0 + Duration::from_secs(4), quiet));
        // It grew: the clock starts again.
        let m1 = m0 + Duration::from_secs(4);
        assert!(!q.observe(p, 200, m1, t0 + Duration::from_secs(4), quiet));
        assert!(!q.observe(p, 200, m1, t0 + Duration::from_secs(8), quiet));
        assert!(q.observe(p, 200, m1, t0 + Duration::from_secs(9), quiet));
    }
}
