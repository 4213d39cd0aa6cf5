//! Form templates: what is printed where, what is read, and how it is emitted.
//!
//! A template is the single source of truth for a paper form: the renderer
//! draws the blank from it, `synth` fills it, the register and read stages
//! find fields through it, and emit takes its output layout from it. All
//! geometry is in millimetres from the top-left corner of the upright page.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Form id, e.g. `pregnancy-notification`.
    pub id: String,
    /// Title printed on the form (Japanese).
    pub title: String,
    pub version: String,
    pub page: PageSpec,
    pub marks: MarkSpec,
    pub id_code: IdCodeSpec,
    #[serde(default)]
    pub defaults: Defaults,
    pub sides: Vec<Side>,
    pub output: OutputSpec,
    /// The date field that places a page in a tally's period (受診日,
    /// 届出日); unset or unread, the page's batch date.
    #[serde(default)]
    pub tally_date: Option<toml::Spanned<String>>,
    /// Shares `todoke tally` reports, defined as the national survey defines
    /// them (forms/README.md cites each source).
    #[serde(default)]
    pub indicators: Vec<Indicator>,
}

/// One indicator: of the pages `condition` selects (all, without one), the
/// share whose answer to `field` is among `numerator`. The denominator is
/// the pages answering one of `denominator`; unset, every page with a valid
/// answer (no answer and invalid excluded), or with a condition every page
/// it selects, as the national sheet divides 「はい」 by those who feel
/// difficulty, whether or not they answered the follow-up.
///
/// Option codes keep their place in the file, so an unknown one is
/// reported with its line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub name: String,
    pub field: toml::Spanned<String>,
    pub numerator: Vec<toml::Spanned<String>>,
    #[serde(default)]
    pub denominator: Option<Vec<toml::Spanned<String>>>,
    #[serde(default)]
    pub condition: Option<IndicatorCondition>,
}

/// The pages an indicator is counted among: those whose answer to `field`
/// is one of `options`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorCondition {
    pub field: toml::Spanned<String>,
    pub options: Vec<toml::Spanned<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSpec {
    pub width_mm: f64,
    pub height_mm: f64,
}

/// Solid square registration marks, one near each corner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkSpec {
    pub size_mm: f64,
    /// Centres, in the order top-left, top-right, bottom-left, bottom-right.
    pub centres_mm: [[f64; 2]; 4],
}

/// A strip of `ID_CODE_BITS` square cells encoding the side's `code`
/// (see [`id_code_bits`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdCodeSpec {
    pub x_mm: f64,
    pub y_mm: f64,
    pub cell_mm: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Minimum per-field confidence for a handwritten digit field to pass.
    pub digit_confidence: f32,
    /// Minimum confidence for a checkbox question to pass.
    pub checkbox_confidence: f32,
    /// Share of dark pixels inside a box at or below which it is empty.
    pub checkbox_empty_ink: f32,
    /// Share of dark pixels inside a box at or above which it is marked.
    /// Between the two the box is uncertain and yields low confidence.
    pub checkbox_marked_ink: f32,
    /// When set, cells below their field's threshold may still pass if
    /// every one is at least this sure and outside evidence vouches for the
    /// value: the register for atena_no + birth_date (`matching::vouch`),
    /// the check digit for a field that has one
    /// (`validate::check_digit_rivals`). Unset: the threshold alone decides.
    #[serde(default)]
    pub vouch_cell_floor: Option<f32>,
    /// The summed odds of rival values (other register rows, other numbers
    /// with a valid check digit) that vouching allows.
    #[serde(default = "default_vouch_max_rivals")]
    pub vouch_max_rivals: f64,
    /// The same for dates and quantities, whose own rules and relations
    /// vouch (a real date, the range, a due date 40 weeks on). Unset:
    /// `vouch_max_rivals`, as in the shipped templates, since the limit is
    /// about the chance each vouched field is wrong and 0.005 let wrong
    /// dates through (forms/README.md).
    #[serde(default)]
    pub rules_max_rivals: Option<f64>,
}

fn default_vouch_max_rivals() -> f64 {
    1e-3
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            // The reader's own threshold, picked on the validation fold.
            digit_confidence: crate::digits::cnn::SHIPPED_THRESHOLD,
            checkbox_confidence: 0.8,
            checkbox_empty_ink: 0.04,
            checkbox_marked_ink: 0.10,
            vouch_cell_floor: None,
            vouch_max_rivals: default_vouch_max_rivals(),
            rules_max_rivals: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Side {
    /// Side id, e.g. `infant-checkup-back`.
    pub id: String,
    /// The number printed in the side's id code; unique across all templates.
    pub code: u16,
    /// Sides that are scanned but not read (the doctor's front page) are
    /// recognised and skipped.
    pub read: bool,
    /// Printed text that is not part of a field: headings, instructions.
    #[serde(default)]
    pub texts: Vec<TextItem>,
    #[serde(default)]
    pub fields: Vec<Field>,
    /// How dates on the side must agree with each other.
    #[serde(default)]
    pub relations: Vec<Relation>,
}

/// Two dates of one side that lie a known span apart:
/// `later − earlier + 7 × weeks` (weeks from `plus_weeks_of`, else 0) is
/// within `days`, both ends included. A reading that breaks it is sent to
/// staff; a doubtful one that only its own reading satisfies is vouched
/// for (`validate`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    pub earlier: String,
    pub later: String,
    /// A digits field holding weeks already gone at `earlier` (妊娠週数).
    #[serde(default)]
    pub plus_weeks_of: Option<String>,
    pub days: [i64; 2],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextItem {
    pub text: String,
    pub x_mm: f64,
    /// Baseline-free: the top of the text line.
    pub y_mm: f64,
    pub size_mm: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A row of one-digit boxes.
    Digits,
    /// Six boxes YY MM DD in a Japanese era, fixed or chosen by checkbox.
    Date,
    /// Exactly one checkbox.
    Single,
    /// Any number of checkboxes.
    Multi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    Showa,
    Heisei,
    Reiwa,
}

impl Era {
    pub fn label(self) -> &'static str {
        match self {
            Era::Showa => "昭和",
            Era::Heisei => "平成",
            Era::Reiwa => "令和",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigitSource {
    /// Handwritten digits: the trained classifier.
    #[default]
    Handwriting,
    /// Machine-printed digits: Tesseract.
    Printed,
}

/// Check-digit schemes a digits field may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckScheme {
    /// 個人番号: weights 6,5,4,3,2,7,6,5,4,3,2 mod 11.
    MyNumber,
    /// Luhn-style modulus 10 (weights 2,1 from the right).
    Mod10,
    /// Modulus 11 with weights 2..=7 repeating from the right.
    Mod11,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub id: String,
    /// Label printed beside the field.
    pub label: String,
    pub kind: FieldKind,
    /// Where the label is printed (top-left of its text).
    pub label_at_mm: [f64; 2],
    #[serde(default = "yes")]
    pub required: bool,
    /// Overrides the template default threshold for this field.
    #[serde(default)]
    pub min_confidence: Option<f32>,
    /// Digit boxes (digits and date fields).
    #[serde(default)]
    pub boxes: Option<BoxRow>,
    /// Era printed on the form for a date field with no era choice.
    #[serde(default)]
    pub era: Option<Era>,
    /// Checkboxes: answers of a choice, or era choices of a date.
    #[serde(default)]
    pub options: Vec<Choice>,
    #[serde(default)]
    pub source: DigitSource,
    #[serde(default)]
    pub check: Option<CheckScheme>,
    /// Inclusive plausible range of the number read (e.g. gestation weeks).
    #[serde(default)]
    pub range: Option<[u32; 2]>,
    /// Personal data that reports must mask (My Number).
    #[serde(default)]
    pub sensitive: bool,
    /// A date written on or before the day it is handed in (届出日, 受診日,
    /// a birthdate): one later than the day todoke reads the scan is a
    /// misread or a slip of the pen. Not for a date that looks ahead
    /// (出産予定日).
    #[serde(default)]
    pub not_after_receipt: bool,
}

fn yes() -> bool {
    true
}

/// A row of equal digit boxes, split into groups (YY | MM | DD).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxRow {
    pub x_mm: f64,
    pub y_mm: f64,
    pub w_mm: f64,
    pub h_mm: f64,
    pub gap_mm: f64,
    /// Box counts per group; a single group for plain digit fields.
    pub groups: Vec<usize>,
    #[serde(default)]
    pub group_gap_mm: f64,
    /// Printed after each group, e.g. 年 月 日.
    #[serde(default)]
    pub group_suffixes: Vec<String>,
}

/// One checkbox and its printed label.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub label: String,
    /// Answer code written to the output CSV (or the era for date fields).
    pub code: String,
    /// Top-left of the box.
    pub x_mm: f64,
    pub y_mm: f64,
    pub size_mm: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    #[serde(default = "default_encoding")]
    pub encoding: OutputEncoding,
    #[serde(default = "default_line_ending")]
    pub line_ending: LineEnding,
    /// chrono format for dates, e.g. `%Y%m%d`.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// Separator between codes of a multiple-choice answer.
    #[serde(default = "default_multi_separator")]
    pub multi_separator: String,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputEncoding {
    Cp932,
    Utf8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEnding {
    Crlf,
    Lf,
}

fn default_encoding() -> OutputEncoding {
    OutputEncoding::Cp932
}
fn default_line_ending() -> LineEnding {
    LineEnding::Crlf
}
fn default_date_format() -> String {
    "%Y%m%d".into()
}
fn default_multi_separator() -> String {
    ";".into()
}

/// One CSV column: its header and where its value comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub header: String,
    /// A field id, or one of `@source`, `@page`, `@branch`, `@sha256`,
    /// `@corrected`, `@reviewer`, `@batch`.
    pub value: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("template {form}: {problem}")]
    Invalid { form: String, problem: String },
    #[error("template {path} line {line}: {problem}")]
    Indicator {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// The top of a one-sided A4 test template (id `t`), for tests that only
/// care about its sides.
#[cfg(test)]
pub const TEST_TEMPLATE_HEAD: &str = r#"id = "t"
title = "テスト"
version = "1"
[page]
width_mm = 210.0
height_mm = 297.0
[marks]
size_mm = 6.0
centres_mm = [[12.0, 12.0], [198.0, 12.0], [12.0, 285.0], [198.0, 285.0]]
[id_code]
x_mm = 81.0
y_mm = 9.0
cell_mm = 3.0
"#;

/// Number of cells in an id code strip.
pub const ID_CODE_BITS: usize = 16;

/// Encodes a side code (1..=1023) as the cells of the id code strip:
/// a start cell that is always dark, ten data bits (most significant first),
/// a four-bit check and a final light cell. The dark start cell next to a
/// light end cell lets a 180°-turned reading fail instead of decoding.
pub fn id_code_bits(code: u16) -> [bool; ID_CODE_BITS] {
    let mut bits = [false; ID_CODE_BITS];
    bits[0] = true;
    for i in 0..10 {
        bits[1 + i] = (code >> (9 - i)) & 1 == 1;
    }
    let check = id_code_check(code);
    for i in 0..4 {
        bits[11 + i] = (check >> (3 - i)) & 1 == 1;
    }
    bits
}

/// The inverse of [`id_code_bits`]; `None` when the strip is not a valid code.
pub fn decode_id_code(bits: &[bool; ID_CODE_BITS]) -> Option<u16> {
    if !bits[0] || bits[ID_CODE_BITS - 1] {
        return None;
    }
    let code = (0..10).fold(0u16, |acc, i| (acc << 1) | bits[1 + i] as u16);
    let check = (0..4).fold(0u16, |acc, i| (acc << 1) | bits[11 + i] as u16);
    (code != 0 && check == id_code_check(code)).then_some(code)
}

fn id_code_check(code: u16) -> u16 {
    // Weighted sum mod 13, folded into 4 bits: catches any single flipped cell
    // and the bit reversal a mirrored reading would produce for most codes.
    let s: u32 = (0..10)
        .map(|i| ((code >> i) & 1) as u32 * (i as u32 + 3))
        .sum();
    ((s % 13) as u16) ^ 0b1010
}

/// A rectangle in template millimetres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RectMm {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl RectMm {
    /// The rectangle widened by `by` millimetres on every side.
    pub fn grow(self, by: f64) -> RectMm {
        RectMm {
            x: self.x - by,
            y: self.y - by,
            w: self.w + 2.0 * by,
            h: self.h + 2.0 * by,
        }
    }
}

impl BoxRow {
    pub fn count(&self) -> usize {
        self.groups.iter().sum()
    }

    /// Every digit box, left to right.
    pub fn rects(&self) -> Vec<RectMm> {
        let mut out = Vec::with_capacity(self.count());
        let mut x = self.x_mm;
        for (g, &n) in self.groups.iter().enumerate() {
            if g > 0 {
                x += self.group_gap_mm;
            }
            for _ in 0..n {
                out.push(RectMm {
                    x,
                    y: self.y_mm,
                    w: self.w_mm,
                    h: self.h_mm,
                });
                x += self.w_mm + self.gap_mm;
            }
        }
        out
    }
}

impl Choice {
    pub fn rect(&self) -> RectMm {
        RectMm {
            x: self.x_mm,
            y: self.y_mm,
            w: self.size_mm,
            h: self.size_mm,
        }
    }
}

impl Field {
    pub fn threshold(&self, defaults: &Defaults) -> f32 {
        self.min_confidence.unwrap_or(match self.kind {
            FieldKind::Digits | FieldKind::Date => defaults.digit_confidence,
            FieldKind::Single | FieldKind::Multi => defaults.checkbox_confidence,
        })
    }
}

impl Template {
    pub fn load(path: &Path) -> Result<Template, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let t: Template = toml::from_str(&text).map_err(|source| TemplateError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some((at, problem)) = t.indicator_problem() {
            let line = 1 + text[..at.min(text.len())].matches('\n').count();
            return Err(TemplateError::Indicator {
                path: path.to_path_buf(),
                line,
                problem,
            });
        }
        t.check()?;
        Ok(t)
    }

    /// The choice field `id` on a read side.
    pub fn choice_field(&self, id: &str) -> Option<&Field> {
        self.sides
            .iter()
            .filter(|s| s.read)
            .flat_map(|s| &s.fields)
            .find(|f| f.id == id && matches!(f.kind, FieldKind::Single | FieldKind::Multi))
    }

    /// The first indicator definition that names a field or option the
    /// template does not have, with its byte offset in the file.
    pub fn indicator_problem(&self) -> Option<(usize, String)> {
        if let Some(d) = &self.tally_date {
            let is_date = self
                .sides
                .iter()
                .flat_map(|s| &s.fields)
                .any(|f| &f.id == d.get_ref() && f.kind == FieldKind::Date);
            if !is_date {
                return Some((
                    d.span().start,
                    format!("tally_date {} is not a date field", d.get_ref()),
                ));
            }
        }
        for ind in &self.indicators {
            let mut checks = vec![(&ind.field, &ind.numerator, &ind.denominator)];
            let cond_options = ind.condition.as_ref().map(|c| c.options.clone());
            if let Some(c) = &ind.condition {
                checks.push((&c.field, &c.options, &cond_options));
            }
            for (field, options, more) in checks {
                let Some(f) = self.choice_field(field.get_ref()) else {
                    return Some((
                        field.span().start,
                        format!(
                            "indicator {}: {} is not a choice question of this form",
                            ind.name,
                            field.get_ref()
                        ),
                    ));
                };
                for o in options.iter().chain(more.iter().flatten()) {
                    if !f.options.iter().any(|c| &c.code == o.get_ref()) {
                        let known: Vec<&str> = f.options.iter().map(|c| c.code.as_str()).collect();
                        return Some((
                            o.span().start,
                            format!(
                                "indicator {}: {} has no option {:?} (its options: {})",
                                ind.name,
                                f.id,
                                o.get_ref(),
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
            if ind.numerator.is_empty() {
                return Some((
                    ind.field.span().start,
                    format!("indicator {} has no numerator options", ind.name),
                ));
            }
        }
        None
    }

    pub fn side(&self, id: &str) -> Option<&Side> {
        self.sides.iter().find(|s| s.id == id)
    }

    /// Structural checks a template author gets told about at load time,
    /// rather than as odd readings later.
    pub fn check(&self) -> Result<(), TemplateError> {
        let bad = |problem: String| TemplateError::Invalid {
            form: self.id.clone(),
            problem,
        };
        for side in &self.sides {
            if side.code == 0 || side.code > 1023 {
                return Err(bad(format!(
                    "side {} code {} not in 1..=1023",
                    side.id, side.code
                )));
            }
            for f in &side.fields {
                if f.not_after_receipt && f.kind != FieldKind::Date {
                    return Err(bad(format!(
                        "field {} is not a date but has not_after_receipt",
                        f.id
                    )));
                }
                match f.kind {
                    FieldKind::Digits if f.boxes.is_none() => {
                        return Err(bad(format!("field {} has no boxes", f.id)))
                    }
                    FieldKind::Date => {
                        let n = f.boxes.as_ref().map(|b| b.count()).unwrap_or(0);
                        if n != 6 {
                            return Err(bad(format!("date field {} needs 6 boxes, has {n}", f.id)));
                        }
                        if f.era.is_none() && f.options.is_empty() {
                            return Err(bad(format!(
                                "date field {} has neither era nor era choices",
                                f.id
                            )));
                        }
                        for o in &f.options {
                            if era_from_code(&o.code).is_none() {
                                return Err(bad(format!(
                                    "date field {} era code {:?} unknown",
                                    f.id, o.code
                                )));
                            }
                        }
                    }
                    FieldKind::Single | FieldKind::Multi if f.options.len() < 2 => {
                        return Err(bad(format!("choice field {} needs 2+ options", f.id)))
                    }
                    _ => {}
                }
            }
            for r in &side.relations {
                let kind_of = |id: &str| side.fields.iter().find(|f| f.id == id).map(|f| f.kind);
                for (id, want) in [(&r.earlier, FieldKind::Date), (&r.later, FieldKind::Date)]
                    .into_iter()
                    .chain(r.plus_weeks_of.iter().map(|w| (w, FieldKind::Digits)))
                {
                    if kind_of(id) != Some(want) {
                        return Err(bad(format!(
                            "relation on side {} names {id}, which is not a {want:?} field there",
                            side.id
                        )));
                    }
                }
                if r.days[0] > r.days[1] {
                    return Err(bad(format!(
                        "relation {} → {} has days {:?}, low above high",
                        r.earlier, r.later, r.days
                    )));
                }
            }
        }
        if let Some((_, problem)) = self.indicator_problem() {
            return Err(bad(problem));
        }
        for c in &self.output.columns {
            if !c.value.starts_with('@')
                && !self
                    .sides
                    .iter()
                    .any(|s| s.fields.iter().any(|f| f.id == c.value))
            {
                return Err(bad(format!(
                    "output column {} names unknown field {}",
                    c.header, c.value
                )));
            }
        }
        Ok(())
    }
}

/// Parses the era code used in templates (`showa`, `heisei`, `reiwa`).
pub fn era_from_code(code: &str) -> Option<Era> {
    match code {
        "showa" => Some(Era::Showa),
        "heisei" => Some(Era::Heisei),
        "reiwa" => Some(Era::Reiwa),
        _ => None,
    }
}

/// The `*.toml` files of a template folder, sorted by name.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// All templates in a folder (`*.toml`), sorted by id.
pub fn load_dir(dir: &Path) -> Result<Vec<Template>, TemplateError> {
    let paths = toml_files(dir)?;
    let mut out = Vec::new();
    for p in paths {
        out.push(Template::load(&p)?);
    }
    let mut codes = std::collections::HashMap::new();
    for t in &out {
        for s in &t.sides {
            if let Some(prev) = codes.insert(s.code, s.id.clone()) {
                return Err(TemplateError::Invalid {
                    form: t.id.clone(),
                    problem: format!("side code {} used by both {prev} and {}", s.code, s.id),
                });
            }
        }
    }
    Ok(out)
}

/// A template's id and version, read without checking the rest: enough to
/// tell a city's copy from the one a newer todoke ships, even when the
/// city's no longer loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateHead {
    pub id: String,
    pub version: String,
    pub path: PathBuf,
}

/// Every `*.toml` head in `dir`, by file name; files whose head does not
/// parse are left out (`load_dir` reports them).
pub fn heads(dir: &Path) -> Result<Vec<TemplateHead>, TemplateError> {
    #[derive(Deserialize)]
    struct Head {
        id: String,
        version: String,
    }
    let paths = toml_files(dir)?;
    Ok(paths
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            let h: Head = toml::from_str(&text).ok()?;
            Some(TemplateHead {
                id: h.id,
                version: h.version,
                path,
            })
        })
        .collect())
}

/// Whether version `a` is later than `b`: dot-separated numbers compared
/// as numbers (`"10" > "9"`, `"1.2" > "1"`); anything else by text.
pub fn version_later(a: &str, b: &str) -> bool {
    let nums =
        |v: &str| -> Option<Vec<u64>> { v.trim().split('.').map(|p| p.parse().ok()).collect() };
    match (nums(a), nums(b)) {
        (Some(x), Some(y)) => x > y,
        _ => a.trim() > b.trim(),
    }
}

/// Shipped templates later than the city's copy of the same form, each with
/// that copy: an upgrade says so instead of overwriting a city's forms.
pub fn newer_shipped(
    shipped: &[TemplateHead],
    yours: &[TemplateHead],
) -> Vec<(TemplateHead, TemplateHead)> {
    shipped
        .iter()
        .filter_map(|s| {
            let y = yours.iter().find(|y| y.id == s.id)?;
            version_later(&s.version, &y.version).then(|| (s.clone(), y.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_code_round_trips_and_rejects_turned_strips() {
        for code in 1..1024u16 {
            let bits = id_code_bits(code);
            assert_eq!(decode_id_code(&bits), Some(code));
            let mut turned = bits;
            turned.reverse();
            assert_eq!(decode_id_code(&turned), None, "code {code} reversed");
        }
    }

    #[test]
    fn a_single_flipped_cell_is_rejected() {
        for code in [1u16, 2, 3, 17, 512, 1023] {
            for i in 0..ID_CODE_BITS {
                let mut bits = id_code_bits(code);
                bits[i] = !bits[i];
                assert_eq!(decode_id_code(&bits), None, "code {code} cell {i}");
            }
        }
    }

    #[test]
    fn box_rows_lay_out_groups() {
        let row = BoxRow {
            x_mm: 10.0,
            y_mm: 20.0,
            w_mm: 5.0,
            h_mm: 7.0,
            gap_mm: 1.0,
            groups: vec![2, 2],
            group_gap_mm: 4.0,
            group_suffixes: vec![],
        };
        let xs: Vec<f64> = row.rects().iter().map(|r| r.x).collect();
        assert_eq!(xs, vec![10.0, 16.0, 26.0, 32.0]);
    }

    #[test]
    fn later_versions_are_compared_as_numbers() {
        assert!(version_later("2", "1"));
        assert!(version_later("10", "9"));
        assert!(version_later("1.1", "1"));
        assert!(!version_later("1", "1"));
        assert!(!version_later("1", "2"));
        assert!(!version_later("1.0", "1.0"));
    }

    #[test]
    fn a_newer_shipped_template_is_found_beside_the_citys_copy() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("forms");
        let shipped = heads(&repo).unwrap();
        let ids: Vec<_> = shipped.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["infant-checkup", "pregnancy-notification"]);
        let dir = tempfile::tempdir().unwrap();
        for h in &shipped {
            std::fs::copy(&h.path, dir.path().join(h.path.file_name().unwrap())).unwrap();
        }
        assert!(newer_shipped(&shipped, &heads(dir.path()).unwrap()).is_empty());
        // The city's copy of one form is older than what ships.
        let theirs = dir.path().join("pregnancy-notification.toml");
        let text = std::fs::read_to_string(&theirs).unwrap();
        let shipped_version = format!("version = \"{}\"", shipped[1].version);
        assert!(text.contains(&shipped_version));
        std::fs::write(&theirs, text.replace(&shipped_version, "version = \"0\"")).unwrap();
        let newer = newer_shipped(&shipped, &heads(dir.path()).unwrap());
        assert_eq!(newer.len(), 1);
        assert_eq!(newer[0].0.id, "pregnancy-notification");
        assert_eq!(newer[0].1.version, "0");
        assert_eq!(newer[0].1.path, theirs);
        // The whole template still loads: only the version differs.
        Template::load(&theirs).unwrap();
    }
}
