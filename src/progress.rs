//! Progress bars for long one-shot commands (`run`, `synth`): drawn on
//! stderr only when it is a terminal, so logs, pipes and CI stay quiet.

use crate::i18n::{t, Lang};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts units done (files for `run`, pages for `synth`) and, for files,
/// the pages they held.
pub struct Progress {
    bar: ProgressBar,
    pages: AtomicUsize,
    per_file: bool,
    pages_word: String,
}

impl Progress {
    /// A bar over `len` files that also counts their pages.
    pub fn files(len: usize, lang: Lang, label: &str) -> Progress {
        Progress::new(len, lang, label, true)
    }

    /// A bar over `len` pages.
    pub fn pages(len: usize, lang: Lang, label: &str) -> Progress {
        Progress::new(len, lang, label, false)
    }

    fn new(len: usize, lang: Lang, label: &str, per_file: bool) -> Progress {
        let shown = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = if shown {
            ProgressBar::new(len as u64)
        } else {
            ProgressBar::hidden()
        };
        let unit = t(
            lang,
            if per_file {
                "progress-files"
            } else {
                "progress-pages"
            },
        );
        let pages_part = if per_file { " · {msg}" } else { "" };
        // Braces are indicatif's; the words come from the catalogue.
        let template = format!(
            "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit}{pages_part} · {{per_sec}} · {} {{eta}}",
            t(lang, "progress-left")
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(t(lang, label));
        Progress {
            bar,
            pages: AtomicUsize::new(0),
            per_file,
            pages_word: t(lang, "progress-pages"),
        }
    }

    /// One file (with `pages` pages) or `pages` pages done.
    pub fn done(&self, pages: usize) {
        let total = self.pages.fetch_add(pages, Ordering::Relaxed) + pages;
        if self.per_file {
            self.bar.inc(1);
            self.bar.set_message(format!("{total} {}", self.pages_word));
        } else {
            self.bar.inc(pages as u64);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
