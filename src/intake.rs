//! Intake stage: finds the scan files of an inbox and says where each came from.
//!
//! The inbox's first-level folders are branch offices; files directly in the
//! inbox belong to the branch `main`. Office clutter (hidden files, Windows
//! thumbnails, editor locks, partial-upload names) is not a scan and is left
//! where it is rather than quarantined.

use chrono::NaiveDate;
use std::path::{Path, PathBuf};

/// One file found in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub path: PathBuf,
    /// Path relative to the inbox, `/`-separated.
    pub rel: String,
    pub branch: String,
    /// The day todoke reads the file (the server's local date): nothing on
    /// the paper was written later, so it bounds the dates read.
    pub received_on: NaiveDate,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("cannot read inbox folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An inbox entry that is not a regular file or folder: a symbolic link, a
/// FIFO, a device or a socket. It is reported and never read: a link could
/// point anywhere on the server, and reading a FIFO would wait forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Path relative to the inbox, `/`-separated.
    pub rel: String,
    pub branch: String,
    /// "symlink", "fifo", "device" or "socket".
    pub kind: &'static str,
}

/// What an inbox holds: its scans, and the entries that are never read.
#[derive(Debug, Default)]
pub struct Listing {
    pub scans: Vec<Scan>,
    pub refused: Vec<Refused>,
}

/// Branch name of files placed directly in the inbox.
pub const ROOT_BRANCH: &str = "main";

/// Every scan under `inbox`, sorted by relative path so runs are repeatable.
pub fn collect(inbox: &Path) -> Result<Vec<Scan>, IntakeError> {
    Ok(list(inbox)?.scans)
}

/// Every scan under `inbox` and every entry that is not to be read.
pub fn list(inbox: &Path) -> Result<Listing, IntakeError> {
    let mut out = Listing::default();
    // A file found now is read today.
    let today = chrono::Local::now().date_naive();
    walk(inbox, inbox, today, &mut out)?;
    out.scans.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.refused.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// What kind of entry that is neither a regular file nor a folder this is;
/// `None` for a regular file or a folder.
pub fn refused_kind(kind: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_symlink() {
        Some("symlink")
    } else if kind.is_fifo() {
        Some("fifo")
    } else if kind.is_block_device() || kind.is_char_device() {
        Some("device")
    } else if kind.is_socket() {
        Some("socket")
    } else {
        None
    }
}

/// Opens a scan for reading only if it is a regular file itself: a symbolic
/// link is not followed (`O_NOFOLLOW`), a FIFO does not block the open
/// (`O_NONBLOCK`), and anything but a regular file is refused.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other("a symbolic link, not a file: never followed")
            } else {
                e
            }
        })?;
    let kind = file.metadata()?.file_type();
    match refused_kind(kind) {
        Some(k) => Err(std::io::Error::other(format!(
            "a {k}, not a regular file: never read"
        ))),
        None if kind.is_dir() => Err(std::io::Error::other("a folder, not a file")),
        None => Ok(file),
    }
}

/// `path`'s contents, read only if it is a regular file (see
/// [`open_regular`]).
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The sha256 of a regular file (see [`open_regular`]), read in pieces so
/// that a file of any size costs little memory.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(&mut open_regular(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

fn walk(root: &Path, dir: &Path, today: NaiveDate, out: &mut Listing) -> Result<(), IntakeError> {
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
        // Not followed: a link to a folder is refused like one to a file.
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(root, &path, today, out)?;
            continue;
        }
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
        if kind.is_file() {
            out.scans.push(Scan {
                path: path.clone(),
                rel: parts.join("/"),
                branch,
                received_on: today,
            });
        } else if let Some(kind) = refused_kind(kind) {
            out.refused.push(Refused {
                rel: parts.join("/"),
                branch,
                kind,
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
        let dir = tempfile::tempdir().unwrap();
        let check = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            crate::decode::looks_complete(&std::fs::read(&p).unwrap())
        };
        let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
        assert!(check("a.pdf", pdf));
        assert!(!check("b.pdf", &pdf[..20]));
        // SOI, an APP0 segment of 4 bytes (its length included), EOI.
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF, 0xD9];
        assert!(check("a.jpg", &jpeg));
        assert!(!check("b.jpg", &jpeg[..8]));
        assert!(!check("empty.png", b""));
        assert!(!check("notes.pdf", b"meeting notes"));
    }

    #[test]
    fn a_half_written_tiff_is_not_complete() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::GrayImage::from_fn(300, 200, |x, y| image::Luma([((x * y) % 251) as u8]));
        let full = dir.path().join("full.tif");
        img.save(&full).unwrap();
        assert!(crate::decode::looks_complete(
            &std::fs::read(&full).unwrap()
        ));
        let bytes = std::fs::read(&full).unwrap();
        let half = dir.path().join("half.tif");
        std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
        assert!(!crate::decode::looks_complete(
            &std::fs::read(&half).unwrap()
        ));
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
