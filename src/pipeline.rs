//! The whole run, stage by stage: intake → decode → register → read →
//! validate → matching → emit. Every file ends in exactly one place: its
//! pages as records in the batch (validated, mismatch, skipped, unreadable)
//! or the file in quarantine with its reason.

use crate::config::Config;
use crate::decode::{self, DecodeLimits, PdfRenderer};
use crate::digits::DigitReader;
use crate::emit::{
    self, BatchInfo, BatchSummary, CandidateView, PageRecord, PageStatus, QuarantineEntry,
};
use crate::intake::{self, Scan};
use crate::matching::{
    self, Candidate, KeyCells, MatchOutcome, MatchResult, Register, Vouch, VouchPolicy,
};
use crate::read::{self, PageReading, ReadTrace, Readers};
use crate::register::{self, RegisterTrace, RegisteredPage};
use crate::template::{self, Template};
use crate::validate::{self, FieldStatus, ValidateTrace, ValidatedPage};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct RunOptions {
    pub inbox: PathBuf,
    pub register: PathBuf,
    pub out: PathBuf,
    pub config: Config,
    /// Batch id; defaults to the local start time.
    pub batch_id: Option<String>,
}

pub struct RunSummary {
    pub batch: BatchSummary,
    pub batch_dir: PathBuf,
    pub files: usize,
    pub pages: usize,
    pub quarantined: usize,
    pub seconds: f64,
    /// Peak resident memory of the process, from the kernel.
    pub peak_rss_mb: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error(transparent)]
    Register(#[from] matching::RegisterError),
    #[error(transparent)]
    Intake(#[from] intake::IntakeError),
    #[error("digit model: {0}")]
    Model(String),
    #[error(transparent)]
    Emit(#[from] emit::EmitError),
    #[error("cannot encode the cell image {path}: {source}")]
    CellImage {
        path: PathBuf,
        source: image::ImageError,
    },
}

/// What one file became, before any batch is written.
pub enum FileOutcome {
    Pages(Vec<PageRecord>),
    Quarantine { reason: String },
}

/// What `Engine::explain` saw of one file: the same run as `process`,
/// with every stage asked to say what it looked at.
pub struct ExplainedFile<'t> {
    pub sha256: String,
    /// The whole file went to quarantine, with this reason.
    pub quarantine: Option<String>,
    /// Pages in file order (only the one asked for, when one was).
    pub pages: Vec<PageTrace<'t>>,
    /// Pages the file has, read or not.
    pub page_count: usize,
}

/// One page's way through the stages, for `todoke explain`: each stage's
/// own trace and result, up to the stage that stopped it.
pub struct PageTrace<'t> {
    pub page: usize,
    /// The page as decoded; `None` when it could not be.
    pub image: Option<image::GrayImage>,
    /// Why the page could not be decoded: code and message.
    pub decode_error: Option<(String, String)>,
    pub register: RegisterTrace,
    pub registered: Option<RegisteredPage<'t>>,
    pub read: Option<ReadTrace>,
    pub reading: Option<PageReading>,
    pub validate: Option<ValidateTrace>,
    /// What the register was asked about keys read with doubt.
    pub key_vouch: Option<KeyVouch>,
    pub matched: Option<MatchResult>,
    /// The record `run` and `watch` would write for the page.
    pub record: Option<PageRecord>,
}

impl PageTrace<'_> {
    fn new(page: usize, image: Option<image::GrayImage>) -> Self {
        PageTrace {
            page,
            image,
            decode_error: None,
            register: RegisterTrace::default(),
            registered: None,
            read: None,
            reading: None,
            validate: None,
            key_vouch: None,
            matched: None,
            record: None,
        }
    }
}

/// Whether the register was asked to vouch for the keys, and what it said.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyVouch {
    /// Why the register was not asked (`no_vouch_cell_floor`,
    /// `keys_not_usable`, `era_tick_unsure`), if it was not.
    pub not_asked: Option<&'static str>,
    /// `vouched`, `doubtful:<why>` or `no_row`.
    pub outcome: Option<String>,
    pub trace: matching::VouchTrace,
}

/// Asks `process_file` to keep traces of its pages.
struct Explain<'t> {
    only_page: Option<usize>,
    pages: Vec<PageTrace<'t>>,
    page_count: usize,
}

/// Everything a file needs on its way from bytes to page records: loaded
/// once, shared by `run` and the watch daemon.
pub struct Engine<'r> {
    pub templates: Vec<Template>,
    /// Behind a lock so the daemon can swap it while its readers work; a
    /// file is read against the register as it was when the file started.
    register: std::sync::RwLock<std::sync::Arc<Register>>,
    pdf: PdfRenderer,
    limits: DecodeLimits,
    handwriting: &'r dyn DigitReader,
    printed: crate::digits::printed::PrintedReader,
    /// Language of the batch's staff files (`[ui] lang`).
    lang: crate::i18n::Lang,
}

impl<'r> Engine<'r> {
    /// Loads templates and register; a malformed register is an error here,
    /// before anything is read or written.
    pub fn new(
        config: &Config,
        register_path: &Path,
        handwriting: &'r dyn DigitReader,
    ) -> Result<Self, RunError> {
        let register = Register::load(register_path, &config.register)?;
        Self::with_register(config, register, handwriting)
    }

    /// An engine over a register already loaded (`Register::empty()` for
    /// `todoke explain` without one).
    pub fn with_register(
        config: &Config,
        register: Register,
        handwriting: &'r dyn DigitReader,
    ) -> Result<Self, RunError> {
        let templates = template::load_dir(&config.forms_dir)?;
        if register.people.is_empty() {
            tracing::warn!("the register has no rows: every page will go to staff");
        }
        let pdf = PdfRenderer::start(&pdfium_path(config));
        if let Err(e) = pdf.available() {
            tracing::warn!("PDF scans will be quarantined: {e}");
        }
        Ok(Engine {
            templates,
            register: std::sync::RwLock::new(std::sync::Arc::new(register)),
            pdf,
            limits: config.decode.limits(),
            handwriting,
            printed: crate::digits::printed::PrintedReader,
            lang: config.ui.lang,
        })
    }

    /// Rows of the register in use.
    pub fn register_rows(&self) -> usize {
        self.current_register().people.len()
    }

    /// The register in use now; a swap meanwhile leaves this one whole.
    fn current_register(&self) -> std::sync::Arc<Register> {
        self.register
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swaps in a newer register (IT replaces the export weekly).
    pub fn set_register(&self, register: Register) {
        *self.register.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(register);
    }

    /// One file through decode → register → read → validate → matching;
    /// returns the file's sha256 (empty if it could not be read) and outcome.
    pub fn process(&self, scan: &Scan) -> (String, FileOutcome) {
        self.process_with(scan, None)
    }

    /// `process`, every stage telling `explain` what it saw when given.
    fn process_with<'s>(
        &'s self,
        scan: &Scan,
        explain: Option<&mut Explain<'s>>,
    ) -> (String, FileOutcome) {
        let readers = Readers {
            handwriting: self.handwriting,
            printed: Some(&self.printed),
        };
        process_file(
            scan,
            &self.limits,
            &self.pdf,
            &self.templates,
            &self.current_register(),
            &readers,
            explain,
        )
    }

    /// One file through the same stages as `process`, every stage telling
    /// what it saw (`todoke explain`); `page` limits it to one page.
    pub fn explain(&self, path: &Path, page: Option<usize>) -> ExplainedFile<'_> {
        let scan = Scan {
            path: path.to_path_buf(),
            rel: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            branch: String::new(),
            // Explained today: the file was at the latest taken in today.
            received_on: chrono::Local::now().date_naive(),
        };
        let mut explain = Explain {
            only_page: page,
            pages: Vec::new(),
            page_count: 0,
        };
        let (sha256, outcome) = self.process_with(&scan, Some(&mut explain));
        ExplainedFile {
            sha256,
            quarantine: match outcome {
                FileOutcome::Quarantine { reason } => Some(reason),
                FileOutcome::Pages(_) => None,
            },
            pages: explain.pages,
            page_count: explain.page_count,
        }
    }

    /// Language of the staff files (`[ui] lang`).
    pub fn lang(&self) -> crate::i18n::Lang {
        self.lang
    }

    pub fn batch_info(
        &self,
        encoding: Option<template::OutputEncoding>,
        started: String,
    ) -> BatchInfo {
        BatchInfo {
            reader: self.handwriting.describe(),
            encoding,
            started,
            lang: self.lang,
        }
    }
}

pub fn run(opts: &RunOptions, reader: &dyn DigitReader) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let started_at = chrono::Local::now();
    let engine = Engine::new(&opts.config, &opts.register, reader)?;
    let listing = intake::list(&opts.inbox)?;
    for r in &listing.refused {
        tracing::warn!(file = %r.rel, kind = r.kind, "not a regular file: never read");
    }
    let scans = listing.scans;

    let progress =
        crate::progress::Progress::files(scans.len(), opts.config.ui.lang, "progress-run");
    let outcomes: Vec<(Scan, FileOutcome)> = scans
        .into_par_iter()
        .map(|scan| {
            let (_sha, outcome) = engine.process(&scan);
            progress.done(match &outcome {
                FileOutcome::Pages(p) => p.len(),
                FileOutcome::Quarantine { .. } => 0,
            });
            (scan, outcome)
        })
        .collect();
    progress.finish();

    let mut records = Vec::new();
    let mut quarantined: Vec<QuarantineEntry> = Vec::new();
    let files = outcomes.len();
    for (scan, outcome) in outcomes {
        match outcome {
            FileOutcome::Pages(pages) => records.extend(pages),
            FileOutcome::Quarantine { reason } => {
                tracing::info!(file = %scan.rel, %reason, "quarantined");
                quarantined.push(emit::quarantine(&opts.out, &scan.path, &scan.rel, &reason)?);
            }
        }
    }
    let batch_id = opts
        .batch_id
        .clone()
        .unwrap_or_else(|| started_at.format("%Y%m%d-%H%M%S").to_string());
    let info = engine.batch_info(opts.config.output.encoding, started_at.to_rfc3339());
    let pages = records.len();
    let batch = emit::write_batch(
        &opts.out,
        &batch_id,
        &engine.templates,
        &records,
        &quarantined,
        &info,
    )?;
    Ok(RunSummary {
        batch,
        batch_dir: opts.out.join("batches").join(&batch_id),
        files,
        pages,
        quarantined: quarantined.len(),
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
    })
}

fn process_file<'t>(
    scan: &Scan,
    limits: &DecodeLimits,
    pdf: &PdfRenderer,
    templates: &'t [Template],
    register: &Register,
    readers: &Readers<'_>,
    mut explain: Option<&mut Explain<'t>>,
) -> (String, FileOutcome) {
    let (bytes, sha) = match read_scan(&scan.path, limits) {
        Ok(b) => b,
        Err(reason) => return (String::new(), FileOutcome::Quarantine { reason }),
    };
    let mut records = Vec::new();
    let mut faults = Vec::new();
    let decoded = decode::decode_each(&bytes, limits, pdf, &mut |page| {
        let n = match &page {
            Ok(p) => p.page,
            Err(f) => f.page,
        };
        let mut ex = explain.as_deref_mut();
        if let Some(ex) = ex.as_deref_mut() {
            ex.page_count = ex.page_count.max(n);
        }
        if ex
            .as_ref()
            .is_some_and(|ex| ex.only_page.is_some_and(|only| only != n))
        {
            return;
        }
        match page {
            Ok(p) => {
                let mut trace = ex
                    .as_ref()
                    .map(|_| PageTrace::new(p.page, Some(p.image.clone())));
                let record = process_page(
                    scan,
                    &sha,
                    p.page,
                    &p.image,
                    templates,
                    register,
                    readers,
                    trace.as_mut(),
                );
                if let (Some(ex), Some(mut trace)) = (ex, trace) {
                    trace.record = Some(record.clone());
                    ex.pages.push(trace);
                }
                records.push(record);
            }
            Err(fault) => {
                if let Some(ex) = ex {
                    let mut trace = PageTrace::new(fault.page, None);
                    trace.decode_error =
                        Some((fault.error.code().to_string(), fault.error.to_string()));
                    trace.record = Some(undecodable_page(scan, &sha, &fault));
                    ex.pages.push(trace);
                }
                faults.push(fault)
            }
        }
    });
    drop(bytes);
    if let Err(e) = decoded {
        let reason = format!("{}: {e}", e.code());
        return (sha, FileOutcome::Quarantine { reason });
    }
    // Not one page could be decoded: the file as a whole is bad.
    if records.is_empty() {
        if let Some(f) = faults.first() {
            let reason = format!("{}: {}", f.error.code(), f.error);
            return (sha, FileOutcome::Quarantine { reason });
        }
    }
    records.extend(faults.iter().map(|f| undecodable_page(scan, &sha, f)));
    records.sort_by_key(|r| r.page);
    (sha, FileOutcome::Pages(records))
}

/// A page the file declares but that could not be decoded goes to staff,
/// who can look at the file; it is never dropped.
fn undecodable_page(scan: &Scan, sha: &str, fault: &decode::PageFault) -> PageRecord {
    let mut record = PageRecord::new(&scan.rel, fault.page, &scan.branch, sha);
    record.status = PageStatus::Unreadable;
    record.reasons.push(UNDECODABLE_PAGE.to_string());
    record.detail = Some(format!("{}: {}", fault.error.code(), fault.error));
    record
}

/// Reason code of a page that could not be decoded.
pub const UNDECODABLE_PAGE: &str = "undecodable_page";

/// A file's bytes and sha256, or the reason it goes to quarantine. The size
/// is checked before anything is read, so an oversized file costs nothing.
fn read_scan(path: &Path, limits: &DecodeLimits) -> Result<(Vec<u8>, String), String> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| format!("unreadable_file: {e}");
    let mut file = intake::open_regular(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    if len > limits.max_file_bytes {
        let e = decode::DecodeError::FileTooLarge {
            bytes: len,
            limit: limits.max_file_bytes,
        };
        return Err(format!("{}: {e}", e.code()));
    }
    // Read one byte past the limit: a file that grows after the size check
    // is still refused rather than read whole.
    let mut bytes = Vec::with_capacity(len as usize);
    file.by_ref()
        .take(limits.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, sha))
}

/// One page through register → read → validate → matching; `trace`, when
/// given, asks every stage to say what it saw.
#[allow(clippy::too_many_arguments)]
fn process_page<'t>(
    scan: &Scan,
    sha: &str,
    page_no: usize,
    image: &image::GrayImage,
    templates: &'t [Template],
    register: &Register,
    readers: &Readers<'_>,
    mut trace: Option<&mut PageTrace<'t>>,
) -> PageRecord {
    let mut record = PageRecord::new(&scan.rel, page_no, &scan.branch, sha);
    let registered = register::register_traced(
        image,
        templates,
        trace.as_deref_mut().map(|t| &mut t.register),
    );
    let page = match registered {
        Ok(p) => p,
        // A blank page too goes to staff: an empty back side looks the same
        // as a page whose image failed to decode, or an all-black one, and
        // only a person can tell them apart. Only a known side that is not
        // read is skipped.
        Err(e) => {
            record.status = PageStatus::Unreadable;
            record.reasons.push(e.code().to_string());
            record.detail = Some(e.to_string());
            record.images = unreadable_overlay(image, templates);
            return record;
        }
    };
    if let Some(t) = trace.as_deref_mut() {
        t.registered = Some(page.clone());
    }
    record.form = Some(page.template.id.clone());
    record.side = Some(page.side.id.clone());
    if !page.side.read {
        record.status = PageStatus::Skipped;
        return record;
    }
    let mut read_trace = trace.as_ref().map(|_| ReadTrace::default());
    let reading = match read::read_page_traced(image, &page, readers, read_trace.as_mut()) {
        Ok(r) => r,
        Err(e) => {
            record.status = PageStatus::Unreadable;
            record.reasons.push("read_error".into());
            record.detail = Some(e.to_string());
            record.images = unreadable_overlay(image, templates);
            return record;
        }
    };
    let mut validate_trace = trace.as_ref().map(|_| ValidateTrace::default());
    let mut validated = validate::validate_traced(
        page.template,
        page.side,
        &reading,
        Some(scan.received_on),
        validate_trace.as_mut(),
    );
    let atena_cells = reading
        .fields
        .iter()
        .find(|f| f.id == "atena_no")
        .map(|f| f.cells.as_slice())
        .unwrap_or(&[]);
    let mut matched = matching::match_person(
        register,
        validated.atena_no(),
        validated.birth_date(),
        atena_cells,
    );
    let mut key_vouch = trace.as_ref().map(|_| KeyVouch {
        not_asked: None,
        outcome: None,
        trace: matching::VouchTrace::default(),
    });
    if matched.outcome == MatchOutcome::NotAttempted {
        let vouch = vouch_keys(
            page.template,
            page.side,
            &reading,
            &validated,
            register,
            key_vouch.as_mut(),
        );
        if let (Some(k), Some(v)) = (key_vouch.as_mut(), &vouch) {
            k.outcome = Some(match v {
                Vouch::Vouched { .. } => "vouched".into(),
                Vouch::Doubtful { why, .. } => format!("doubtful:{why}"),
                Vouch::NoRow => "no_row".into(),
            });
        }
        match vouch {
            Some(Vouch::Vouched { row }) => {
                validated.vouched_for(&["atena_no", "birth_date"]);
                matched = MatchResult {
                    outcome: MatchOutcome::Matched { row },
                    candidates: Vec::new(),
                };
            }
            // The keys as read name someone: staff see that row first.
            Some(Vouch::Doubtful { row, why }) => {
                matched.candidates.retain(|c| c.row != row);
                matched.candidates.insert(
                    0,
                    Candidate {
                        row,
                        distance: 0,
                        why: format!("as_read_but_{why}"),
                    },
                );
            }
            Some(Vouch::NoRow) | None => {}
        }
    }
    record.turned = page.turned;
    record.detail = page.covered_mark.map(|c| c.detail());
    record.reasons = validated.reasons.clone();
    record.reasons.extend(matched.reason().map(String::from));
    // The gate: every field passed and both keys name one and the same person.
    record.status = if validated.reasons.is_empty() && matched.is_match() {
        PageStatus::Validated
    } else {
        PageStatus::Mismatch
    };
    if record.status == PageStatus::Mismatch {
        record.candidates = candidate_views(register, &matched);
        record.images = doubtful_images(&reading, &validated);
    }
    record.fields = validated.fields;
    if let Some(t) = trace {
        t.read = read_trace;
        t.reading = Some(reading);
        t.validate = validate_trace;
        t.key_vouch = key_vouch.filter(|k| k.outcome.is_some() || k.not_asked.is_some());
        t.matched = Some(matched);
    }
    record
}

/// What staff see of a page the reader could not place: registration's
/// overlay (marks searched and found, the id code read), as for
/// `todoke explain`. Registration is run again with its trace on: it is
/// quick, and only unreadable pages pay for it.
fn unreadable_overlay(image: &image::GrayImage, templates: &[Template]) -> Vec<(String, Vec<u8>)> {
    let mut trace = RegisterTrace::default();
    let placed = register::register_traced(image, templates, Some(&mut trace)).ok();
    crate::explain::page_overlay_png(image, &trace, placed.as_ref())
        .map(|png| vec![(crate::explain::PAGE_IMAGE.to_string(), png)])
        .unwrap_or_default()
}

/// Asks the register about keys that follow every rule but were read with
/// some doubt; `None` when the template does not allow it or a key is not
/// even a valid value. Era ticks must be as sure as the field demands: only
/// the digit cells are weighed.
fn vouch_keys(
    template: &Template,
    side: &template::Side,
    reading: &PageReading,
    validated: &ValidatedPage,
    register: &Register,
    mut trace: Option<&mut KeyVouch>,
) -> Option<Vouch> {
    let mut not_asked = |why: &'static str| {
        if let Some(t) = trace.as_deref_mut() {
            t.not_asked = Some(why);
        }
    };
    let Some(floor) = template.defaults.vouch_cell_floor else {
        not_asked("no_vouch_cell_floor");
        return None;
    };
    let keys = validated.doubtful_str("atena_no").zip(
        validated
            .doubtful_str("birth_date")
            .and_then(|b| chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").ok()),
    );
    let Some((atena, birth)) = keys else {
        not_asked("keys_not_usable");
        return None;
    };
    let read = |id: &str| reading.fields.iter().find(|f| f.id == id);
    let (atena_read, birth_read) = (read("atena_no")?, read("birth_date")?);
    let birth_field = side.fields.iter().find(|f| f.id == "birth_date")?;
    if !validate::ticks_sure(birth_field, birth_read, &template.defaults) {
        not_asked("era_tick_unsure");
        return None;
    }
    let era_doubt = birth_field.era.is_none().then(|| {
        birth_read
            .marks
            .iter()
            .map(|m| 1.0 - m.confidence)
            .fold(0.0f32, f32::max)
    });
    let cells = KeyCells {
        atena: &atena_read.cells,
        birth: &birth_read.cells,
        era_doubt,
    };
    let policy = VouchPolicy {
        cell_floor: floor,
        max_rivals: template.defaults.vouch_max_rivals,
    };
    Some(matching::vouch_traced(
        register,
        atena,
        birth,
        &cells,
        &policy,
        trace.map(|t| &mut t.trace),
    ))
}

/// Register rows to offer staff. When the keys as read do name one person
/// but the page failed for another reason, that person comes first, so a
/// reviewer who sees the reading is right confirms with one key.
fn candidate_views(register: &Register, matched: &MatchResult) -> Vec<CandidateView> {
    let view = |row: usize, why: &str| {
        let p = &register.people[row];
        CandidateView {
            atena_no: p.atena_no.clone(),
            name: p.name.clone(),
            birth_date: p.birth_date.format("%Y-%m-%d").to_string(),
            why: why.to_string(),
        }
    };
    let exact = match matched.outcome {
        matching::MatchOutcome::Matched { row } => Some(view(row, "as_read")),
        _ => None,
    };
    exact
        .into_iter()
        .chain(matched.candidates.iter().map(|c| view(c.row, &c.why)))
        .take(3)
        .collect()
}

/// Images staff need to decide: every field that did not pass, and the two
/// keys of the match, which are in doubt whenever the match fails.
fn doubtful_images(reading: &PageReading, validated: &ValidatedPage) -> Vec<(String, Vec<u8>)> {
    reading
        .fields
        .iter()
        .filter(|f| {
            f.id == "atena_no"
                || f.id == "birth_date"
                || validated
                    .fields
                    .get(&f.id)
                    .is_some_and(|r| r.status != FieldStatus::Ok)
        })
        .filter_map(|f| {
            let mut png = Vec::new();
            f.image
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .ok()?;
            Some((f.id.clone(), png))
        })
        .collect()
}

/// What `export_cells` wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CellExport {
    pub files: usize,
    /// Sides read by the pipeline whose cells were written.
    pub pages: usize,
    pub cells: Vec<ExportedCell>,
    /// Files that did not decode and pages that did not register to a read
    /// side, each with its reason.
    pub skipped: Vec<String>,
}

/// One cell written by `export_cells`: where it came from, and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedCell {
    pub png: PathBuf,
    pub scan: PathBuf,
    pub page: usize,
    pub field: String,
    /// The box within the field, from 0.
    pub index: usize,
}

/// Fields whose cells are never exported: a My Number is specially
/// protected, and its digits in a labelled folder would be one.
const CELLS_NOT_EXPORTED: [&str; 1] = ["my_number"];

/// Writes every handwritten digit cell of `files` into `out`, one PNG each,
/// cropped exactly as the reader is handed it, for a person to sort into
/// `out/0` … `out/9` and `out/blank`: how the reader is measured on a
/// city's own handwriting (`todoke bench digits --labelled`). Names are
/// opaque (a hash of file, page, field and box), so a folder of labelled
/// cells does not spell out anyone's numbers; files are the owner's only.
pub fn export_cells(
    files: &[PathBuf],
    config: &Config,
    out: &Path,
) -> Result<CellExport, RunError> {
    let templates = template::load_dir(&config.forms_dir)?;
    let pdf = PdfRenderer::start(&pdfium_path(config));
    let limits = config.decode.limits();
    emit::private_dir(out)?;
    let mut done = CellExport::default();
    for path in files {
        done.files += 1;
        let shown = path.display();
        let (bytes, sha) = match read_scan(path, &limits) {
            Ok(b) => b,
            Err(why) => {
                done.skipped.push(format!("{shown}: {why}"));
                continue;
            }
        };
        let mut pages = Vec::new();
        let decoded = decode::decode_each(&bytes, &limits, &pdf, &mut |p| match p {
            Ok(p) => pages.push(p),
            Err(f) => done
                .skipped
                .push(format!("{shown} page {}: {}", f.page, f.error.code())),
        });
        if let Err(e) = decoded {
            done.skipped.push(format!("{shown}: {}: {e}", e.code()));
            continue;
        }
        for p in pages {
            let page = match register::register(&p.image, &templates) {
                Ok(page) if page.side.read => page,
                Ok(page) => {
                    done.skipped.push(format!(
                        "{shown} page {}: side {} is not read",
                        p.page, page.side.id
                    ));
                    continue;
                }
                Err(e) => {
                    done.skipped
                        .push(format!("{shown} page {}: {}", p.page, e.code()));
                    continue;
                }
            };
            done.pages += 1;
            let fields = page.side.fields.iter().filter(|f| {
                f.source == template::DigitSource::Handwriting
                    && !CELLS_NOT_EXPORTED.contains(&f.id.as_str())
            });
            for field in fields {
                for (i, cell) in read::digit_cells(&p.image, &page, field).iter().enumerate() {
                    let name = Sha256::digest(format!("{sha}/{}/{}/{i}", p.page, field.id));
                    let file = out.join(format!("{}.png", &hex::encode(name)[..16]));
                    let mut png = Vec::new();
                    cell.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                        .map_err(|source| RunError::CellImage {
                            path: file.clone(),
                            source,
                        })?;
                    emit::private_file(&file, &png)?;
                    done.cells.push(ExportedCell {
                        png: file,
                        scan: path.clone(),
                        page: p.page,
                        field: field.id.clone(),
                        index: i,
                    });
                }
            }
        }
    }
    Ok(done)
}

/// Peak resident set size, from /proc (Linux).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Reads the default settings file if `path` is None.
/// `pdfium` of the settings, else the shipped library.
fn pdfium_path(config: &Config) -> PathBuf {
    crate::paths::locate(crate::paths::Asset::Pdfium, config.pdfium.as_deref()).path
}

pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}
