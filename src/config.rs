//! Settings file (`todoke.toml`). Every setting has a default, so `todoke run`
//! works without one; the file only says where a municipality differs.

use crate::decode::DecodeLimits;
use crate::matching::RegisterMapping;
use crate::template::OutputEncoding;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder of form templates.
    pub forms_dir: PathBuf,
    /// Digit model; empty means the shipped one.
    pub model: Option<PathBuf>,
    /// The pdfium library; empty means the shipped one.
    pub pdfium: Option<PathBuf>,
    pub register: RegisterMapping,
    pub output: OutputConfig,
    pub decode: DecodeConfig,
    pub watch: WatchConfig,
    pub batch: BatchConfig,
    pub log: LogConfig,
    pub review: ReviewConfig,
    pub ui: UiConfig,
}

/// What staff read: the review page, report.html, mismatches.csv, and the
/// lines the commands print (logs stay English, for IT).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// `ja` (default) or `en`.
    pub lang: crate::i18n::Lang,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Address the review page listens on; keep it 127.0.0.1 unless a
    /// reverse proxy with its own login is in front.
    pub bind: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Reviewer recorded with every decision; empty: asked on the page.
    pub reviewer: String,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            bind: "127.0.0.1".into(),
            port: 8470,
            reviewer: String::new(),
        }
    }
}

/// Where the daemon works. Relative paths are taken from the settings
/// file's folder, so a working folder made by `todoke init` can be moved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// One sub-folder per branch office; scans are dropped there.
    pub inbox: PathBuf,
    pub branches: Vec<String>,
    /// Batches and quarantine.
    pub out: PathBuf,
    /// Scans taken from the inbox; must be on the inbox's file system for
    /// taking to be an atomic rename (otherwise they are copied and verified).
    pub work: PathBuf,
    /// The SQLite ledger.
    pub state: PathBuf,
    /// The resident register export.
    pub register: PathBuf,
    /// `auto` (polling on SMB/CIFS and NFS, inotify elsewhere), `inotify` or `poll`.
    pub mode: WatchMode,
    /// A file is complete once its size and mtime have not changed for this long.
    pub quiet_secs: f64,
    /// How often a polled inbox is listed.
    pub poll_secs: f64,
    /// A full listing of every inbox at this interval catches missed events.
    pub rescan_secs: f64,
    /// Every branch inbox is a mount of that branch's share: one that is not
    /// a mount point (the share dropped) is reported unhealthy rather than
    /// looking like a branch with no scans. Files found there are still
    /// taken: left alone, the share would hide them once it is back.
    pub mounted: bool,
    /// A new register export with fewer rows than the one in use by more
    /// than this share (0.2 = a fifth) is refused, the previous one staying
    /// in use: a cut-off or header-only export would send every page to
    /// staff. Set to 1.0 to accept any export.
    pub register_max_shrink: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    Auto,
    Inotify,
    Poll,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Weekly close, local time, e.g. `Mon 09:00`; empty: only on demand.
    pub close_at: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: String,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            inbox: "inbox".into(),
            branches: DEFAULT_BRANCHES.iter().map(|b| b.to_string()).collect(),
            out: "out".into(),
            work: "work".into(),
            state: "todoke.db".into(),
            register: "register.csv".into(),
            mode: WatchMode::Auto,
            quiet_secs: 5.0,
            poll_secs: 2.0,
            rescan_secs: 30.0,
            mounted: false,
            register_max_shrink: 0.2,
        }
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            close_at: "Mon 09:00".into(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "human".into(),
        }
    }
}

pub const DEFAULT_BRANCHES: [&str; 3] = ["honcho", "sakura", "yatabe"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Overrides every template's CSV encoding (`cp932` or `utf8`).
    pub encoding: Option<OutputEncoding>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    pub pdf_dpi: f32,
    pub max_side_px: u32,
    pub max_pages: usize,
    pub max_page_pixels: u64,
    pub max_file_bytes: u64,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        let d = DecodeLimits::default();
        DecodeConfig {
            pdf_dpi: d.pdf_dpi,
            max_side_px: d.max_side_px,
            max_pages: d.max_pages,
            max_page_pixels: d.max_page_pixels,
            max_file_bytes: d.max_file_bytes,
        }
    }
}

impl DecodeConfig {
    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_side_px: self.max_side_px,
            max_pages: self.max_pages,
            pdf_dpi: self.pdf_dpi,
            max_page_pixels: self.max_page_pixels,
            max_file_bytes: self.max_file_bytes,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            forms_dir: default_forms_dir(),
            model: None,
            pdfium: None,
            register: RegisterMapping::default(),
            output: OutputConfig::default(),
            decode: DecodeConfig::default(),
            watch: WatchConfig::default(),
            batch: BatchConfig::default(),
            log: LogConfig::default(),
            review: ReviewConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

/// The shipped templates when `todoke.toml` names none (order in `paths`).
pub fn default_forms_dir() -> PathBuf {
    crate::paths::locate(crate::paths::Asset::Forms, None).path
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings {path} are not valid: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl Config {
    /// Reads a settings file; relative paths in it are taken from its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        if c.forms_dir.is_relative() && text.contains("forms_dir") {
            c.forms_dir = base.join(&c.forms_dir);
        }
        for p in [&mut c.model, &mut c.pdfium].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        let w = &mut c.watch;
        for p in [
            &mut w.inbox,
            &mut w.out,
            &mut w.work,
            &mut w.state,
            &mut w.register,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }
}

/// The settings file `todoke init` writes: every setting at its default,
/// each explained, so IT changes values rather than looks them up.
pub const SETTINGS_TEMPLATE: &str = r#"# todoke settings. Relative paths are taken from this file's folder.

# Form templates (TOML) and their printable blanks.
forms_dir = "@FORMS@"

# Digit model and pdfium library; leave commented to use the shipped ones
# (TODOKE_MODEL / TODOKE_PDFIUM, then /usr/share/todoke/models/digits.safetensors
# and /usr/lib/todoke/libpdfium.so beside an installed /usr/bin/todoke).
# model = "digits.safetensors"
# pdfium = "/usr/lib/todoke/libpdfium.so"

[watch]
# One sub-folder per branch office; scanners drop files there.
inbox = "inbox"
branches = ["honcho", "sakura", "yatabe"]
# Batches (out/batches/<id>/, READY written last) and quarantine.
out = "out"
# Scans taken from the inbox. Keep it on the inbox's file system so taking a
# scan is an atomic rename; otherwise it is copied, synced, verified, removed.
work = "work"
# The ledger (SQLite): every scan, its state and batch. Back it up.
state = "todoke.db"
# Resident register export (CSV, UTF-8 or CP932); re-read when it changes.
register = "register.csv"
# auto: poll SMB/CIFS and NFS shares (inotify sees nothing there), inotify elsewhere.
# Or force "inotify" or "poll".
mode = "auto"
# A file is taken once its size and mtime are unchanged this long and it ends
# where its format says (PDF %%EOF last, PNG IEND, JPEG EOI after the last scan,
# TIFF with nothing after its last page).
quiet_secs = 5.0
# How often a polled inbox is listed.
poll_secs = 2.0
# A full listing of every inbox at this interval catches missed events.
rescan_secs = 30.0
# true when each inbox/<branch> is where that branch's share is mounted: an inbox
# that is then not a mount point (the share dropped, or never came up at boot) is
# reported by `todoke status` and the log instead of looking like a branch that
# sent no scans.
mounted = false
# A register export with more than this share fewer rows than the one in use
# (cut off, or only its header) is refused and the previous one kept; set it to
# 1.0 for one reload to accept a register that really shrank.
register_max_shrink = 0.2

[batch]
# Weekly close, local time ("Mon 09:00"); "" closes only on
# `todoke batch close`. A close missed while stopped happens at start.
close_at = "Mon 09:00"

[log]
# "human" or "json". Logs never carry names, birthdates or My Number.
format = "human"

[review]
# `todoke review` serves the mismatch page here (127.0.0.1: this machine only).
bind = "127.0.0.1"
# 0 picks a free port.
port = 8470
# Name recorded with every decision; empty: each reviewer gives theirs on the page.
reviewer = ""

[ui]
# Language of what staff read: the review page, report.html, mismatches.csv and
# the summary lines commands print: "ja" or "en". Logs stay English.
lang = "ja"

[register]
# Column headers of the register export.
atena_no = "atena_no"
birth_date = "birth_date"
name = "name"

[output]
# Overrides every template's CSV encoding: "cp932" or "utf8".
# encoding = "cp932"

[decode]
# PDF pages are rendered at this resolution.
pdf_dpi = 300.0
# Larger images are refused (quarantined) before they are decoded.
max_side_px = 14100
# Files with more pages are quarantined.
max_pages = 200
# Pages with more pixels (width × height) are refused: a page is held whole
# in memory while it is read, so this bounds memory (A4 at 600 dpi is 35 M).
max_page_pixels = 40000000
# Larger files are quarantined without being decoded (128 MiB).
max_file_bytes = 134217728
"#;

/// The settings text for a working folder whose templates are `forms_dir`.
pub fn settings_text(forms_dir: &Path) -> String {
    SETTINGS_TEMPLATE.replace("@FORMS@", &forms_dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_settings_are_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("todoke.toml");
        std::fs::write(&path, settings_text(Path::new("/opt/todoke/forms"))).unwrap();
        let c = Config::load(&path).unwrap();
        let d = Config::default();
        assert_eq!(c.forms_dir, Path::new("/opt/todoke/forms"));
        assert_eq!(c.watch.branches, d.watch.branches);
        assert_eq!(c.watch.inbox, dir.path().join("inbox"));
        assert_eq!(c.watch.state, dir.path().join("todoke.db"));
        assert_eq!(c.watch.mode, d.watch.mode);
        assert_eq!(c.watch.quiet_secs, d.watch.quiet_secs);
        assert_eq!(c.watch.poll_secs, d.watch.poll_secs);
        assert_eq!(c.watch.rescan_secs, d.watch.rescan_secs);
        assert_eq!(c.watch.register_max_shrink, d.watch.register_max_shrink);
        assert_eq!(c.batch.close_at, d.batch.close_at);
        assert_eq!(c.log.format, d.log.format);
        assert_eq!(c.review.bind, d.review.bind);
        assert_eq!(c.review.port, d.review.port);
        assert_eq!(c.review.reviewer, d.review.reviewer);
        assert_eq!(c.decode.pdf_dpi, d.decode.pdf_dpi);
        assert_eq!(c.decode.max_side_px, d.decode.max_side_px);
        assert_eq!(c.decode.max_pages, d.decode.max_pages);
        assert_eq!(c.decode.max_page_pixels, d.decode.max_page_pixels);
        assert_eq!(c.decode.max_file_bytes, d.decode.max_file_bytes);
        assert_eq!(c.register.atena_no, d.register.atena_no);
        assert_eq!(c.ui.lang, d.ui.lang);
    }
}
