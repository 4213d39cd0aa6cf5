//! Tally: the questionnaire answers counted the way the national survey of
//! maternal and child health services asks for them (母子保健事業の実施状況等
//! の調査, 乳幼児健康診査問診回答状況): per question the count of each option,
//! no answer and invalid, and each template indicator's numerator,
//! denominator and share, in total and per branch or month.
//!
//! Counted are the validated pages of published batches and the pages staff
//! corrected on the review page, each page once: a corrected page replaces
//! its mismatch, and the same form page read twice (same side, atena_no and
//! birthdate) counts once. Pages still open as mismatches are shown apart as
//! not yet counted, so a reader knows the tally's coverage.
//!
//! [`tally`] is pure; reading batch folders and the ledger and writing
//! tally.csv / tally.json / tally.html are the edges.

use crate::emit::{esc, PageRecord, PageStatus};
use crate::template::{FieldKind, Template};
use crate::validate::FieldStatus;
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A page as found in a batch folder or the ledger.
#[derive(Debug, Clone)]
pub struct Input {
    pub record: PageRecord,
    /// The batch it was published in; empty for a correction not yet published.
    pub batch: String,
    /// When it was published or corrected: the page's date when its form's
    /// `tally_date` field is unread.
    pub batch_date: Option<NaiveDate>,
}

/// Both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    #[serde(serialize_with = "iso_date")]
    pub from: NaiveDate,
    #[serde(serialize_with = "iso_date")]
    pub to: NaiveDate,
}

fn iso_date<S: serde::Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&d.format("%Y-%m-%d"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Branch,
    Month,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    pub period: Period,
    pub by: Option<GroupBy>,
    pub forms: Vec<FormTally>,
    /// Open pages whose form could not be told (unreadable): not yet counted
    /// under any form.
    pub unknown_form_open: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FormTally {
    pub form: String,
    pub title: String,
    pub questions: Vec<Question>,
    pub indicators: Vec<IndicatorDef>,
    /// The whole period first (`合計`), then one column per branch or month.
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Question {
    pub field: String,
    pub label: String,
    pub multi: bool,
    /// (code, label) in printed order.
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndicatorDef {
    pub name: String,
    pub field: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    /// Pages counted.
    pub pages: usize,
    /// Pages still open as mismatches (or unreadable) in the period.
    pub not_yet_counted: usize,
    /// Pages left out because the same form page is already counted.
    pub duplicates: usize,
    /// In the order of `FormTally::questions`.
    pub questions: Vec<Answers>,
    /// In the order of `FormTally::indicators`.
    pub indicators: Vec<Ratio>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Answers {
    /// Pages that ticked each option (a multiple-choice page adds to each it ticked).
    pub options: Vec<usize>,
    pub no_answer: usize,
    /// Two or more ticks on a single-choice question.
    pub invalid: usize,
    /// Pages with a valid answer: the denominator of each option's share.
    pub respondents: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Ratio {
    pub numerator: usize,
    pub denominator: usize,
    /// `None` when nobody is in the denominator.
    pub percent: Option<f64>,
}

impl Ratio {
    pub fn new(numerator: usize, denominator: usize) -> Ratio {
        Ratio {
            numerator,
            denominator,
            percent: (denominator > 0).then(|| numerator as f64 * 100.0 / denominator as f64),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TallyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line} is not a page record: {source}")]
    Record {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("date {0:?} is not YYYY-MM-DD")]
    BadDate(String),
    #[error("period from {from} to {to} ends before it begins")]
    BadPeriod { from: NaiveDate, to: NaiveDate },
    #[error("{what} cannot be encoded in CP932 ({character:?})")]
    Unencodable { what: String, character: char },
    #[error(transparent)]
    Emit(#[from] crate::emit::EmitError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

/// The fiscal year (April to March) `today` falls in.
pub fn fiscal_year(today: NaiveDate) -> Period {
    let y = if today.month() >= 4 {
        today.year()
    } else {
        today.year() - 1
    };
    Period {
        from: NaiveDate::from_ymd_opt(y, 4, 1).expect("1 April exists"),
        to: NaiveDate::from_ymd_opt(y + 1, 3, 31).expect("31 March exists"),
    }
}

pub fn parse_date(s: &str) -> Result<NaiveDate, TallyError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| TallyError::BadDate(s.into()))
}

/// How one page is answered to one question.
enum Answer {
    Blank,
    Invalid,
    /// 0-based option indices ticked (one for a single choice).
    Ticked(Vec<usize>),
}

fn answer(r: &PageRecord, field: &str, multi: bool, n_options: usize) -> Answer {
    let Some(f) = r.fields.get(field) else {
        return Answer::Blank;
    };
    if matches!(f.status, FieldStatus::MultipleMarks | FieldStatus::Invalid) {
        return Answer::Invalid;
    }
    let index = |v: &serde_json::Value| {
        v.as_u64()
            .map(|i| i as usize)
            .filter(|i| (1..=n_options).contains(i))
            .map(|i| i - 1)
    };
    match (&f.value, multi) {
        (serde_json::Value::Null, _) => Answer::Blank,
        (serde_json::Value::Array(items), true) => {
            let ticked: Option<Vec<usize>> = items.iter().map(index).collect();
            match ticked {
                Some(t) if t.is_empty() => Answer::Blank,
                Some(t) => Answer::Ticked(t),
                None => Answer::Invalid,
            }
        }
        (v, false) => match index(v) {
            Some(i) => Answer::Ticked(vec![i]),
            None => Answer::Invalid,
        },
        _ => Answer::Invalid,
    }
}

/// An indicator resolved against its template: option indices, not codes.
struct Resolved {
    field: String,
    multi: bool,
    n_options: usize,
    numerator: Vec<usize>,
    denominator: Option<Vec<usize>>,
    condition: Option<(String, bool, usize, Vec<usize>)>,
}

fn resolve(t: &Template) -> Vec<Resolved> {
    let indices = |field: &str, codes: &[toml::Spanned<String>]| -> (bool, usize, Vec<usize>) {
        let f = t.choice_field(field).expect("checked at template load");
        let idx = codes
            .iter()
            .filter_map(|c| f.options.iter().position(|o| &o.code == c.get_ref()))
            .collect();
        (f.kind == FieldKind::Multi, f.options.len(), idx)
    };
    t.indicators
        .iter()
        .map(|ind| {
            let field = ind.field.get_ref().clone();
            let (multi, n_options, numerator) = indices(&field, &ind.numerator);
            Resolved {
                denominator: ind.denominator.as_ref().map(|d| indices(&field, d).2),
                condition: ind.condition.as_ref().map(|c| {
                    let (m, n, o) = indices(c.field.get_ref(), &c.options);
                    (c.field.get_ref().clone(), m, n, o)
                }),
                field,
                multi,
                n_options,
                numerator,
            }
        })
        .collect()
}

fn questions(t: &Template) -> Vec<Question> {
    t.sides
        .iter()
        .filter(|s| s.read)
        .flat_map(|s| &s.fields)
        .filter(|f| matches!(f.kind, FieldKind::Single | FieldKind::Multi))
        .map(|f| Question {
            field: f.id.clone(),
            label: f.label.clone(),
            multi: f.kind == FieldKind::Multi,
            options: f
                .options
                .iter()
                .map(|o| (o.code.clone(), o.label.clone()))
                .collect(),
        })
        .collect()
}

fn new_column(name: &str, qs: &[Question], n_indicators: usize) -> Column {
    Column {
        name: name.into(),
        pages: 0,
        not_yet_counted: 0,
        duplicates: 0,
        questions: qs
            .iter()
            .map(|q| Answers {
                options: vec![0; q.options.len()],
                ..Default::default()
            })
            .collect(),
        indicators: vec![Ratio::default(); n_indicators],
    }
}

fn count_page(col: &mut Column, r: &PageRecord, qs: &[Question], inds: &[Resolved]) {
    col.pages += 1;
    for (q, a) in qs.iter().zip(col.questions.iter_mut()) {
        match answer(r, &q.field, q.multi, q.options.len()) {
            Answer::Blank => a.no_answer += 1,
            Answer::Invalid => a.invalid += 1,
            Answer::Ticked(t) => {
                a.respondents += 1;
                for i in t {
                    a.options[i] += 1;
                }
            }
        }
    }
    for (ind, ratio) in inds.iter().zip(col.indicators.iter_mut()) {
        if let Some((field, multi, n, options)) = &ind.condition {
            match answer(r, field, *multi, *n) {
                Answer::Ticked(t) if t.iter().any(|i| options.contains(i)) => {}
                _ => continue,
            }
        }
        let ticked = match answer(r, &ind.field, ind.multi, ind.n_options) {
            Answer::Ticked(t) => Some(t),
            _ => None,
        };
        let among = |set: &[usize]| {
            ticked
                .as_ref()
                .is_some_and(|t| t.iter().any(|i| set.contains(i)))
        };
        let in_denominator = match &ind.denominator {
            Some(d) => among(d),
            None if ind.condition.is_some() => true,
            None => ticked.is_some(),
        };
        if in_denominator {
            ratio.denominator += 1;
            if among(&ind.numerator) {
                ratio.numerator += 1;
            }
        }
    }
}

/// The date that places a page in the period: its form's `tally_date` when
/// read with confidence, else the batch's (an open page's doubtful date
/// could place it in the wrong year).
fn page_date(t: Option<&Template>, input: &Input) -> Option<NaiveDate> {
    t.and_then(|t| t.tally_date.as_ref())
        .map(|d| d.get_ref().as_str())
        .and_then(|id| input.record.fields.get(id))
        .filter(|f| f.status == FieldStatus::Ok)
        .and_then(|f| f.value.as_str())
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .or(input.batch_date)
}

/// The same form page read twice has the same side and keys.
fn content_key(r: &PageRecord) -> Option<(String, String, String)> {
    let v = |id: &str| {
        r.fields
            .get(id)
            .and_then(|f| f.value.as_str())
            .map(String::from)
    };
    Some((r.side.clone()?, v("atena_no")?, v("birth_date")?))
}

/// Counts `inputs` (in publication order) into a tally. `rejected` holds
/// the pages (sha256, page) staff rejected on review: decided, so neither
/// counted nor open.
pub fn tally(
    templates: &[Template],
    inputs: &[Input],
    rejected: &HashSet<(String, usize)>,
    period: Period,
    by: Option<GroupBy>,
) -> Tally {
    // The last word on each page: a validated record (a correction comes
    // after its mismatch), else its latest open record.
    let mut order: Vec<(String, usize)> = Vec::new();
    let mut last: HashMap<(String, usize), &Input> = HashMap::new();
    for input in inputs {
        let r = &input.record;
        if r.status == PageStatus::Skipped {
            continue;
        }
        let key = (r.sha256.clone(), r.page);
        match last.get(&key) {
            None => {
                order.push(key.clone());
                last.insert(key, input);
            }
            Some(prev) => {
                if r.status == PageStatus::Validated || prev.record.status != PageStatus::Validated
                {
                    last.insert(key, input);
                }
            }
        }
    }
    let mut forms: Vec<FormTally> = templates
        .iter()
        .map(|t| {
            let qs = questions(t);
            let columns = vec![new_column("合計", &qs, t.indicators.len())];
            FormTally {
                form: t.id.clone(),
                title: t.title.clone(),
                indicators: t
                    .indicators
                    .iter()
                    .map(|i| IndicatorDef {
                        name: i.name.clone(),
                        field: i.field.get_ref().clone(),
                    })
                    .collect(),
                questions: qs,
                columns,
            }
        })
        .collect();
    let resolved: Vec<Vec<Resolved>> = templates.iter().map(resolve).collect();
    let mut unknown_form_open = 0;
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    for key in &order {
        let input = last[key];
        let r = &input.record;
        let validated = r.status == PageStatus::Validated;
        if !validated && rejected.contains(key) {
            continue;
        }
        let ti = r
            .form
            .as_deref()
            .and_then(|f| templates.iter().position(|t| t.id == f));
        let Some(date) = page_date(ti.map(|i| &templates[i]), input) else {
            continue;
        };
        if date < period.from || date > period.to {
            continue;
        }
        let Some(ti) = ti else {
            unknown_form_open += usize::from(!validated);
            continue;
        };
        let group = match by {
            Some(GroupBy::Branch) => Some(r.branch.clone()),
            Some(GroupBy::Month) => Some(date.format("%Y-%m").to_string()),
            None => None,
        };
        let form = &mut forms[ti];
        let mut cols = vec![0];
        if let Some(g) = group {
            let at = match form.columns.iter().position(|c| c.name == g) {
                Some(at) => at,
                None => {
                    form.columns
                        .push(new_column(&g, &form.questions, form.indicators.len()));
                    form.columns.len() - 1
                }
            };
            cols.push(at);
        }
        let duplicate = if validated {
            content_key(r).is_some_and(|k| !seen.insert(k))
        } else {
            r.reasons.iter().any(|x| x == "duplicate_page")
        };
        for c in cols {
            let col = &mut form.columns[c];
            if duplicate {
                col.duplicates += 1;
            } else if validated {
                count_page(col, r, &form.questions, &resolved[ti]);
            } else {
                col.not_yet_counted += 1;
            }
        }
    }
    for f in &mut forms {
        // Ratios were counted as pairs; the share is set once at the end.
        for c in &mut f.columns {
            for r in &mut c.indicators {
                *r = Ratio::new(r.numerator, r.denominator);
            }
        }
        f.columns[1..].sort_by(|a, b| a.name.cmp(&b.name));
    }
    Tally {
        period,
        by,
        forms,
        unknown_form_open,
    }
}

impl Tally {
    /// Pages counted, over every form.
    pub fn pages(&self) -> usize {
        self.forms.iter().map(|f| f.columns[0].pages).sum()
    }

    pub fn not_yet_counted(&self) -> usize {
        self.forms
            .iter()
            .map(|f| f.columns[0].not_yet_counted)
            .sum::<usize>()
            + self.unknown_form_open
    }
}

fn pct(r: &Ratio) -> String {
    r.percent.map(|p| format!("{p:.1}")).unwrap_or_default()
}

/// One row per option, no answer, invalid and indicator, per column, with
/// the period: CP932 + CRLF, as the core systems and Excel read it.
pub fn csv_bytes(t: &Tally) -> Result<Vec<u8>, TallyError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut row = |cells: [&str; 11]| w.write_record(cells).expect("in-memory csv");
    row([
        "期間開始",
        "期間終了",
        "集計単位",
        "様式",
        "設問",
        "設問名",
        "区分",
        "項目",
        "件数",
        "分母",
        "割合(%)",
    ]);
    let (from, to) = (t.period.from.to_string(), t.period.to.to_string());
    for f in &t.forms {
        for c in &f.columns {
            let head = |kind: &str, item: &str, n: usize, d: String, p: String| {
                [kind.to_string(), item.to_string(), n.to_string(), d, p]
            };
            let mut lines: Vec<(String, String, [String; 5])> = vec![
                (
                    String::new(),
                    String::new(),
                    head("頁数", "集計対象", c.pages, String::new(), String::new()),
                ),
                (
                    String::new(),
                    String::new(),
                    head(
                        "頁数",
                        "未集計（確認待ち）",
                        c.not_yet_counted,
                        String::new(),
                        String::new(),
                    ),
                ),
                (
                    String::new(),
                    String::new(),
                    head(
                        "頁数",
                        "重複（集計済み）",
                        c.duplicates,
                        String::new(),
                        String::new(),
                    ),
                ),
            ];
            for (q, a) in f.questions.iter().zip(&c.questions) {
                for ((_, label), n) in q.options.iter().zip(&a.options) {
                    let r = Ratio::new(*n, a.respondents);
                    lines.push((
                        q.field.clone(),
                        q.label.clone(),
                        head("選択肢", label, *n, a.respondents.to_string(), pct(&r)),
                    ));
                }
                for (kind, n) in [
                    ("無回答", a.no_answer),
                    ("無効回答", a.invalid),
                    ("回答者数", a.respondents),
                ] {
                    lines.push((
                        q.field.clone(),
                        q.label.clone(),
                        head(kind, kind, n, String::new(), String::new()),
                    ));
                }
            }
            for (d, r) in f.indicators.iter().zip(&c.indicators) {
                lines.push((
                    d.field.clone(),
                    String::new(),
                    head(
                        "指標",
                        &d.name,
                        r.numerator,
                        r.denominator.to_string(),
                        pct(r),
                    ),
                ));
            }
            for (field, label, [kind, item, n, d, p]) in &lines {
                row([
                    &from, &to, &c.name, &f.form, field, label, kind, item, n, d, p,
                ]);
            }
        }
    }
    if t.unknown_form_open > 0 {
        let n = t.unknown_form_open.to_string();
        row([
            &from,
            &to,
            "合計",
            "",
            "",
            "",
            "頁数",
            "未集計（様式不明）",
            &n,
            "",
            "",
        ]);
    }
    let text = String::from_utf8(w.into_inner().expect("in-memory csv")).expect("UTF-8");
    crate::emit::check_cp932(&text).map_err(|character| TallyError::Unencodable {
        what: "tally.csv (a template label or branch name)".into(),
        character,
    })?;
    Ok(encoding_rs::SHIFT_JIS.encode(&text).0.into_owned())
}

/// Self-contained: inline style and SVG, nothing fetched.
pub fn html(t: &Tally) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>問診回答集計 {from}〜{to}</title><style>\
body{{font-family:sans-serif;margin:1.5em;background:#f6f6f4;color:#222}}\
table{{border-collapse:collapse;margin:.4em 0}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}\
th{{background:#eee}}td.l,th.l{{text-align:left}}\
.q{{background:#fff;border:1px solid #ccc;border-radius:6px;margin:1em 0;padding:.6em 1em}}\
.q h3{{font-size:1em;margin:.2em 0}}.note{{color:#555}}.open{{color:#a00;font-weight:bold}}\
svg text{{font-size:12px}}</style></head><body>\
<h1>問診回答集計</h1><p>期間: {from} 〜 {to}（{by}）</p>",
        from = t.period.from,
        to = t.period.to,
        by = match t.by {
            Some(GroupBy::Branch) => "支所別",
            Some(GroupBy::Month) => "月別",
            None => "合計のみ",
        }
    );
    let _ = write!(
        h,
        "<p>集計した頁: <b>{}</b>　<span class=\"open\">未集計（確認待ちの頁）: {}</span></p>",
        t.pages(),
        t.not_yet_counted()
    );
    if t.pages() == 0 {
        h.push_str("<p class=\"open\">この期間に集計できる記録はありません。</p>");
    }
    for f in &t.forms {
        let total = &f.columns[0];
        if total.pages + total.not_yet_counted + total.duplicates == 0 {
            continue;
        }
        let _ = write!(h, "<h2>{}（{}）</h2>", esc(&f.title), esc(&f.form));
        h.push_str("<table><tr><th class=\"l\"></th>");
        for c in &f.columns {
            let _ = write!(h, "<th>{}</th>", esc(&c.name));
        }
        h.push_str("</tr>");
        for (label, get) in [
            ("集計した頁", (|c: &Column| c.pages) as fn(&Column) -> usize),
            ("未集計（確認待ち）", |c: &Column| {
                c.not_yet_counted
            }),
            ("重複（集計済み）", |c: &Column| c.duplicates),
        ] {
            let _ = write!(h, "<tr><th class=\"l\">{label}</th>");
            for c in &f.columns {
                let _ = write!(h, "<td>{}</td>", get(c));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        if !f.indicators.is_empty() {
            h.push_str("<div class=\"q\"><h3>指標（健やか親子21・乳幼児健康診査問診回答状況の定義）</h3><table><tr><th class=\"l\">指標</th>");
            for c in &f.columns {
                let _ = write!(h, "<th>{}</th>", esc(&c.name));
            }
            h.push_str("</tr>");
            for (i, d) in f.indicators.iter().enumerate() {
                let _ = write!(h, "<tr><td class=\"l\">{}</td>", esc(&d.name));
                for c in &f.columns {
                    let r = &c.indicators[i];
                    let _ = write!(
                        h,
                        "<td>{}%<br><span class=\"note\">{} / {}</span></td>",
                        if r.percent.is_some() {
                            pct(r)
                        } else {
                            "—".into()
                        },
                        r.numerator,
                        r.denominator
                    );
                }
                h.push_str("</tr>");
            }
            h.push_str("</table>");
            h.push_str(&bars(
                &f.indicators
                    .iter()
                    .zip(&total.indicators)
                    .map(|(d, r)| (d.name.clone(), *r))
                    .collect::<Vec<_>>(),
            ));
            h.push_str("</div>");
        }
        for (qi, q) in f.questions.iter().enumerate() {
            let a = &total.questions[qi];
            let _ = write!(
                h,
                "<div class=\"q\"><h3>{}{}</h3><table><tr><th class=\"l\">回答</th>",
                esc(&q.label),
                if q.multi { "（複数回答）" } else { "" }
            );
            for c in &f.columns {
                let _ = write!(h, "<th>{}</th>", esc(&c.name));
            }
            h.push_str("</tr>");
            for (oi, (_, label)) in q.options.iter().enumerate() {
                let _ = write!(h, "<tr><td class=\"l\">{}</td>", esc(label));
                for c in &f.columns {
                    let ca = &c.questions[qi];
                    let r = Ratio::new(ca.options[oi], ca.respondents);
                    let _ = write!(
                        h,
                        "<td>{} <span class=\"note\">({}%)</span></td>",
                        r.numerator,
                        pct(&r)
                    );
                }
                h.push_str("</tr>");
            }
            for (label, get) in [
                (
                    "無回答",
                    (|a: &Answers| a.no_answer) as fn(&Answers) -> usize,
                ),
                ("無効回答", |a: &Answers| a.invalid),
                ("回答者数", |a: &Answers| a.respondents),
            ] {
                let _ = write!(h, "<tr><td class=\"l\">{label}</td>");
                for c in &f.columns {
                    let _ = write!(h, "<td>{}</td>", get(&c.questions[qi]));
                }
                h.push_str("</tr>");
            }
            h.push_str("</table>");
            h.push_str(&bars(
                &q.options
                    .iter()
                    .zip(&a.options)
                    .map(|((_, l), n)| (l.clone(), Ratio::new(*n, a.respondents)))
                    .collect::<Vec<_>>(),
            ));
            h.push_str("</div>");
        }
    }
    if t.unknown_form_open > 0 {
        let _ = write!(
            h,
            "<p class=\"open\">様式を判別できず未集計の頁: {}</p>",
            t.unknown_form_open
        );
    }
    h.push_str("<p class=\"note\">割合の分母は、無回答と無効回答を除いた回答者数（条件付きの指標は条件に当てはまる頁数）です。</p></body></html>\n");
    h
}

/// A horizontal bar per item, its share of 100 %, with the counts behind it.
fn bars(items: &[(String, Ratio)]) -> String {
    // Labels are mostly full-width characters at 12 px.
    let widest = items
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let (label_w, bar_w, row_h) = (widest as f64 * 12.5 + 10.0, 360.0, 22.0);
    let height = row_h * items.len() as f64 + 6.0;
    let mut s = format!(
        "<svg width=\"{w}\" height=\"{height}\" role=\"img\">",
        w = label_w + bar_w + 140.0
    );
    for (i, (label, r)) in items.iter().enumerate() {
        let y = 3.0 + row_h * i as f64;
        let share = r.percent.unwrap_or(0.0);
        let _ = write!(
            s,
            "<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
<rect x=\"{label_w}\" y=\"{y}\" width=\"{bar_w}\" height=\"{bh}\" fill=\"#e4e4e0\"/>\
<rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\" fill=\"#2f6f9f\"/>\
<text x=\"{vx}\" y=\"{ty}\">{p}% ({n}/{d})</text>",
            tx = label_w - 6.0,
            ty = y + 14.0,
            label = esc(label),
            bh = row_h - 6.0,
            w = bar_w * share / 100.0,
            vx = label_w + bar_w + 6.0,
            p = if r.percent.is_some() {
                pct(r)
            } else {
                "—".into()
            },
            n = r.numerator,
            d = r.denominator,
        );
    }
    s.push_str("</svg>");
    s
}

/// Reads every published batch (a folder with READY) under `dir`, oldest first.
pub fn read_batches(dir: &Path) -> Result<Vec<Input>, TallyError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TallyError::Read { path, source }
    };
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .map_err(read_err(dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(crate::emit::READY).is_file())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        let path = dir.join(&id).join("records.jsonl");
        let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
        let batch_date = NaiveDate::parse_from_str(id.get(..8).unwrap_or(""), "%Y%m%d")
            .ok()
            .or_else(|| manifest_date(&dir.join(&id)));
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let record: PageRecord =
                serde_json::from_str(line).map_err(|source| TallyError::Record {
                    path: path.clone(),
                    line: i + 1,
                    source,
                })?;
            out.push(Input {
                record,
                batch: id.clone(),
                batch_date,
            });
        }
    }
    Ok(out)
}

/// A batch whose id is not a date: its manifest's start time.
fn manifest_date(dir: &Path) -> Option<NaiveDate> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let started = v["started"].as_str()?;
    NaiveDate::parse_from_str(started.get(..10)?, "%Y-%m-%d").ok()
}

/// Writes tally.csv, tally.json and tally.html into `out` (owner-only).
pub fn write(t: &Tally, out: &Path) -> Result<(), TallyError> {
    crate::emit::private_dir(out)?;
    crate::emit::private_file(&out.join("tally.csv"), &csv_bytes(t)?)?;
    let json = serde_json::to_vec_pretty(t).expect("tally serialises");
    crate::emit::private_file(&out.join("tally.json"), &json)?;
    crate::emit::private_file(&out.join("tally.html"), html(t).as_bytes())?;
    Ok(())
}

/// The week's tally.csv in a batch folder: the batch's own pages by branch,
/// over the dates they carry.
pub fn week_csv(
    templates: &[Template],
    records: &[PageRecord],
    batch_id: &str,
) -> Result<Vec<u8>, crate::emit::EmitError> {
    let batch_date = NaiveDate::parse_from_str(batch_id.get(..8).unwrap_or(""), "%Y%m%d").ok();
    let inputs: Vec<Input> = records
        .iter()
        .map(|r| Input {
            record: r.clone(),
            batch: batch_id.into(),
            batch_date: batch_date.or_else(|| Some(chrono::Local::now().date_naive())),
        })
        .collect();
    let dates: Vec<NaiveDate> = inputs
        .iter()
        .filter_map(|i| {
            let t = i
                .record
                .form
                .as_deref()
                .and_then(|f| templates.iter().find(|t| t.id == f));
            page_date(t, i)
        })
        .collect();
    let today = chrono::Local::now().date_naive();
    let period = Period {
        from: dates.iter().min().copied().unwrap_or(today),
        to: dates.iter().max().copied().unwrap_or(today),
    };
    let t = tally(
        templates,
        &inputs,
        &HashSet::new(),
        period,
        Some(GroupBy::Branch),
    );
    csv_bytes(&t).map_err(|e| match e {
        TallyError::Unencodable { character, .. } => crate::emit::EmitError::Unencodable {
            source_file: format!("batch {batch_id}"),
            page: 0,
            column: "tally.csv".into(),
            character,
        },
        other => unreachable!("csv_bytes only fails on encoding: {other}"),
    })
}

/// What `todoke tally` reads and where it writes.
#[derive(Debug, Clone)]
pub struct TallyOptions {
    pub forms_dir: PathBuf,
    pub batches: PathBuf,
    /// The daemon's ledger: corrections not yet published, rejected pages.
    pub ledger: Option<PathBuf>,
    pub period: Period,
    pub by: Option<GroupBy>,
    pub out: PathBuf,
}

/// `todoke tally`: reads, counts, writes.
pub fn run(o: &TallyOptions) -> Result<Tally, anyhow::Error> {
    if o.period.to < o.period.from {
        return Err(TallyError::BadPeriod {
            from: o.period.from,
            to: o.period.to,
        }
        .into());
    }
    let templates = crate::template::load_dir(&o.forms_dir)?;
    let mut inputs = if o.batches.exists() {
        read_batches(&o.batches)?
    } else {
        Vec::new()
    };
    let mut rejected = HashSet::new();
    if let Some(path) = o.ledger.as_deref().filter(|p| p.exists()) {
        let ledger = crate::ledger::Ledger::open(path).map_err(TallyError::from)?;
        for (record, at) in ledger.unpublished_corrections().map_err(TallyError::from)? {
            inputs.push(Input {
                record,
                batch: String::new(),
                batch_date: at.get(..10).and_then(|d| parse_date(d).ok()),
            });
        }
        rejected = ledger.rejected_pages().map_err(TallyError::from)?;
    }
    let t = tally(&templates, &inputs, &rejected, o.period, o.by);
    write(&t, &o.out)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::FieldResult;
    use serde_json::{json, Value};

    fn templates() -> Vec<Template> {
        crate::template::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("forms")).unwrap()
    }

    fn ok(v: Value) -> FieldResult {
        FieldResult {
            value: v,
            confidence: 1.0,
            status: FieldStatus::Ok,
        }
    }

    /// A validated check-up back side: every single question answered with
    /// its first option, "none of these" on the multiple one, then `set`.
    fn page(
        sha: &str,
        branch: &str,
        atena: &str,
        checkup: &str,
        set: &[(&str, FieldResult)],
    ) -> PageRecord {
        let t = templates();
        let side = t[0].side("infant-checkup-back").unwrap();
        let mut r = PageRecord::new(&format!("{branch}/{sha}.png"), 1, branch, sha);
        r.form = Some("infant-checkup".into());
        r.side = Some(side.id.clone());
        r.status = PageStatus::Validated;
        for f in &side.fields {
            let v = match f.kind {
                FieldKind::Single => json!(1),
                FieldKind::Multi => json!([f.options.len()]),
                _ => continue,
            };
            r.fields.insert(f.id.clone(), ok(v));
        }
        r.fields.insert("atena_no".into(), ok(json!(atena)));
        r.fields
            .insert("birth_date".into(), ok(json!("2026-02-01")));
        r.fields.insert("checkup_date".into(), ok(json!(checkup)));
        for (id, f) in set {
            r.fields.insert((*id).into(), f.clone());
        }
        r
    }

    fn input(r: PageRecord, batch: &str) -> Input {
        Input {
            record: r,
            batch: batch.into(),
            batch_date: NaiveDate::parse_from_str(&batch[..8], "%Y%m%d").ok(),
        }
    }

    fn none() -> FieldResult {
        ok(Value::Null)
    }

    fn double_tick() -> FieldResult {
        FieldResult {
            value: Value::Null,
            confidence: 1.0,
            status: FieldStatus::MultipleMarks,
        }
    }

    fn fy2026() -> Period {
        fiscal_year(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap())
    }

    /// Known answers: a skip pattern kept and one broken, a double tick, a
    /// duplicate page, a page corrected on review, an open, a rejected and a
    /// duplicate-page mismatch, a page outside the period, a skipped side.
    fn scenario() -> (Vec<Input>, HashSet<(String, usize)>) {
        let d = "q_difficulty";
        let k = "q_know_solution";
        let c = "q_continue_raising";
        let a = page(
            "a",
            "honcho",
            "0000000001",
            "2026-05-10",
            &[
                (d, ok(json!(1))),
                (k, ok(json!(1))),
                ("q_household_events", ok(json!([2, 5]))),
            ],
        );
        let b = page(
            "b",
            "honcho",
            "0000000002",
            "2026-06-01",
            &[
                (d, ok(json!(2))),
                (k, ok(json!(2))),
                (c, ok(json!(2))),
                ("q_relaxed_time", ok(json!(3))),
            ],
        );
        // Feels difficulty but skipped the follow-up: in its denominator.
        let c_page = page(
            "c",
            "sakura",
            "0000000003",
            "2026-07-01",
            &[(d, ok(json!(2))), (k, none()), (c, ok(json!(4)))],
        );
        // Feels none and rightly skipped; two ticks on a single question.
        let d_page = page(
            "d",
            "sakura",
            "0000000004",
            "2027-03-31",
            &[
                (d, ok(json!(3))),
                (k, none()),
                (c, ok(json!(3))),
                ("q_relaxed_time", double_tick()),
            ],
        );
        // The same form page as `a`, scanned again.
        let dup = page(
            "f",
            "honcho",
            "0000000001",
            "2026-05-10",
            &[(d, ok(json!(3)))],
        );
        // Read as a mismatch, then corrected on review and published next week.
        let mut g_open = page(
            "g",
            "honcho",
            "0000000007",
            "2026-08-01",
            &[(d, ok(json!(3)))],
        );
        g_open.status = PageStatus::Mismatch;
        g_open.reasons = vec!["low_confidence:atena_no".into()];
        let mut g = page(
            "g",
            "honcho",
            "0000000007",
            "2026-08-01",
            &[(d, ok(json!(1))), (k, ok(json!(1)))],
        );
        g.corrected = true;
        let mut h = page("h", "sakura", "0000000008", "2026-09-01", &[]);
        h.status = PageStatus::Mismatch;
        let mut i = page("i", "sakura", "0000000009", "2026-09-01", &[]);
        i.status = PageStatus::Mismatch;
        let mut k_dup = page("k", "sakura", "0000000003", "2026-07-01", &[]);
        k_dup.status = PageStatus::Mismatch;
        k_dup.reasons = vec!["duplicate_page".into()];
        let before = page("j", "honcho", "0000000010", "2026-03-31", &[]);
        let mut front = PageRecord::new("honcho/x.png", 2, "honcho", "x");
        front.form = Some("infant-checkup".into());
        front.status = PageStatus::Skipped;
        let inputs = vec![
            input(a, "20260601-090000"),
            input(b, "20260601-090000"),
            input(g_open, "20260601-090000"),
            input(h, "20260601-090000"),
            input(i, "20260601-090000"),
            input(front, "20260601-090000"),
            input(c_page, "20260608-090000"),
            input(dup, "20260608-090000"),
            input(k_dup, "20260608-090000"),
            input(before, "20260608-090000"),
            input(g, "20260608-090000"),
            input(d_page, "20270405-090000"),
        ];
        let rejected = HashSet::from([("i".to_string(), 1)]);
        (inputs, rejected)
    }

    fn question<'a>(f: &FormTally, col: &'a Column, id: &str) -> &'a Answers {
        let i = f.questions.iter().position(|q| q.field == id).unwrap();
        &col.questions[i]
    }

    fn indicator(f: &FormTally, col: &Column, name: &str) -> Ratio {
        let i = f.indicators.iter().position(|d| d.name == name).unwrap();
        col.indicators[i]
    }

    #[test]
    fn every_count_and_share_of_known_answers() {
        let t = templates();
        let (inputs, rejected) = scenario();
        let tally = tally(&t, &inputs, &rejected, fy2026(), Some(GroupBy::Branch));
        let f = tally
            .forms
            .iter()
            .find(|f| f.form == "infant-checkup")
            .unwrap();
        let names: Vec<&str> = f.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["合計", "honcho", "sakura"]);
        let [total, honcho, sakura] = [&f.columns[0], &f.columns[1], &f.columns[2]];
        // a, b, c, d and the corrected g; f and k are duplicates; h is open;
        // i was rejected; j is before the period; the front side is skipped.
        assert_eq!(
            (total.pages, total.duplicates, total.not_yet_counted),
            (5, 2, 1)
        );
        assert_eq!(
            (honcho.pages, honcho.duplicates, honcho.not_yet_counted),
            (3, 1, 0)
        );
        assert_eq!(
            (sakura.pages, sakura.duplicates, sakura.not_yet_counted),
            (2, 1, 1)
        );
        assert_eq!((tally.pages(), tally.not_yet_counted()), (5, 1));

        let diff = question(f, total, "q_difficulty");
        assert_eq!(
            (
                diff.options.clone(),
                diff.no_answer,
                diff.invalid,
                diff.respondents
            ),
            (vec![2, 2, 1], 0, 0, 5)
        );
        let know = question(f, total, "q_know_solution");
        assert_eq!(
            (
                know.options.clone(),
                know.no_answer,
                know.invalid,
                know.respondents
            ),
            (vec![2, 1], 2, 0, 3)
        );
        let relaxed = question(f, total, "q_relaxed_time");
        assert_eq!(
            (
                relaxed.options.clone(),
                relaxed.no_answer,
                relaxed.invalid,
                relaxed.respondents
            ),
            (vec![3, 0, 1], 0, 1, 4)
        );
        let cont = question(f, total, "q_continue_raising");
        assert_eq!(
            (cont.options.clone(), cont.respondents),
            (vec![2, 1, 1, 1], 5)
        );
        let events = question(f, total, "q_household_events");
        assert_eq!(
            (events.options.clone(), events.respondents),
            (vec![0, 1, 0, 0, 1, 4], 5)
        );
        assert_eq!(question(f, sakura, "q_know_solution").no_answer, 2);
        assert_eq!(question(f, honcho, "q_difficulty").options, vec![2, 1, 0]);

        let r = |col: &Column, name: &str| {
            let r = indicator(f, col, name);
            (
                r.numerator,
                r.denominator,
                r.percent.map(|p| format!("{p:.4}")),
            )
        };
        let s = |p: &str| Some(p.to_string());
        assert_eq!(r(total, "育てにくさを感じる親の割合"), (4, 5, s("80.0000")));
        // Among the four who feel difficulty, c's missing answer included.
        assert_eq!(
            r(total, "育てにくさを感じたときに対処できる親の割合"),
            (2, 4, s("50.0000"))
        );
        assert_eq!(
            r(honcho, "育てにくさを感じたときに対処できる親の割合"),
            (2, 3, s("66.6667"))
        );
        assert_eq!(
            r(sakura, "育てにくさを感じたときに対処できる親の割合"),
            (0, 1, s("0.0000"))
        );
        // The two agreeing options, of everyone who answered.
        assert_eq!(
            r(total, "この地域で子育てをしたいと思う親の割合"),
            (3, 5, s("60.0000"))
        );
        // The double tick is left out of the denominator.
        assert_eq!(
            r(
                total,
                "ゆったりとした気分で子どもと過ごせる時間がある母親の割合"
            ),
            (3, 4, s("75.0000"))
        );
        assert_eq!(r(total, "妊娠中の妊婦の喫煙率"), (0, 5, s("0.0000")));

        let pregnancy = tally
            .forms
            .iter()
            .find(|f| f.form == "pregnancy-notification")
            .unwrap();
        assert_eq!(pregnancy.columns.len(), 1);
        assert_eq!(pregnancy.columns[0].pages, 0);
    }

    #[test]
    fn by_month_and_a_period_cut() {
        let t = templates();
        let (inputs, rejected) = scenario();
        let period = Period {
            from: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        };
        let tally = tally(&t, &inputs, &rejected, period, Some(GroupBy::Month));
        let f = &tally.forms[0];
        let cols: Vec<(&str, usize, usize)> = f
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.pages, c.duplicates))
            .collect();
        assert_eq!(cols, [("合計", 2, 1), ("2026-05", 1, 1), ("2026-06", 1, 0)]);
    }

    #[test]
    fn csv_is_cp932_crlf_with_the_period_on_every_row() {
        let t = templates();
        let (inputs, rejected) = scenario();
        let tally = tally(&t, &inputs, &rejected, fy2026(), Some(GroupBy::Branch));
        let bytes = csv_bytes(&tally).unwrap();
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
        assert!(text.starts_with(
            "期間開始,期間終了,集計単位,様式,設問,設問名,区分,項目,件数,分母,割合(%)\r\n"
        ));
        assert!(text.lines().all(|l| l.is_empty()
            || l.starts_with("期間開始")
            || l.starts_with("2026-04-01,2027-03-31,")));
        assert!(text.contains("2026-04-01,2027-03-31,合計,infant-checkup,q_know_solution,,指標,育てにくさを感じたときに対処できる親の割合,2,4,50.0\r\n"), "{text}");
        assert!(text.contains(",sakura,infant-checkup,,,頁数,未集計（確認待ち）,1,,\r\n"));
        assert!(text.contains(",合計,infant-checkup,q_relaxed_time,ゆったりとした気分でお子さんと過ごせる時間がありますか,無効回答,無効回答,1,,\r\n"));
        assert!(text.contains(",honcho,infant-checkup,q_difficulty,育てにくさを感じていますか,選択肢,いつも感じる,2,3,66.7\r\n"));
    }

    #[test]
    fn a_period_with_no_records_says_so() {
        let t = templates();
        let (inputs, rejected) = scenario();
        let period = Period {
            from: NaiveDate::from_ymd_opt(2030, 4, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2031, 3, 31).unwrap(),
        };
        let tally = tally(&t, &inputs, &rejected, period, None);
        assert_eq!((tally.pages(), tally.not_yet_counted()), (0, 0));
        let html = html(&tally);
        assert!(html.contains("この期間に集計できる記録はありません"));
        assert!(!html.contains("<svg"));
        let dir = tempfile::tempdir().unwrap();
        write(&tally, dir.path()).unwrap();
        let json: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("tally.json")).unwrap()).unwrap();
        assert_eq!(json["forms"][0]["columns"][0]["pages"], 0);
        assert_eq!(json["period"]["from"], "2030-04-01");
    }

    #[test]
    fn html_is_self_contained_with_a_bar_per_option() {
        let t = templates();
        let (inputs, rejected) = scenario();
        let tally = tally(&t, &inputs, &rejected, fy2026(), Some(GroupBy::Branch));
        let html = html(&tally);
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains("<script")
        );
        assert!(html.contains("default-src 'none'"));
        let f = &tally.forms[0];
        let bars: usize =
            f.questions.iter().map(|q| q.options.len()).sum::<usize>() + f.indicators.len();
        // Two rects (track and bar) per item.
        assert_eq!(html.matches("<rect").count(), 2 * bars);
        assert!(html.contains("50.0% (2/4)"));
        assert!(html.contains("未集計（確認待ちの頁）: 1"));
    }

    #[test]
    fn an_unknown_option_names_the_template_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("forms/infant-checkup.toml"),
        )
        .unwrap();
        let text = format!("{shipped}\n[[indicators]]\nname = \"x\"\nfield = \"q_sbs_known\"\nnumerator = [\"1\",\n  \"9\"]\n");
        let line = text.lines().count();
        let path = dir.path().join("city.toml");
        std::fs::write(&path, &text).unwrap();
        let e = Template::load(&path).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{} line {line}:", path.display())),
            "{e}"
        );
        assert!(e.contains("q_sbs_known has no option \"9\""), "{e}");
        let not_a_date = shipped.replace(
            "tally_date = \"checkup_date\"",
            "tally_date = \"q_economy\"",
        );
        std::fs::write(&path, &not_a_date).unwrap();
        let e = Template::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 3: tally_date q_economy is not a date field"),
            "{e}"
        );
        let bad_field = format!(
            "{shipped}\n[[indicators]]\nname = \"x\"\nfield = \"atena_no\"\nnumerator = [\"1\"]\n"
        );
        std::fs::write(&path, &bad_field).unwrap();
        let e = Template::load(&path).unwrap_err().to_string();
        assert!(
            e.contains(&format!("line {}:", bad_field.lines().count() - 1))
                && e.contains("atena_no is not a choice question"),
            "{e}"
        );
    }

    #[test]
    fn a_batch_folder_carries_its_weeks_tally() {
        let t = templates();
        let (inputs, _) = scenario();
        let records: Vec<PageRecord> = inputs.into_iter().map(|i| i.record).collect();
        let dir = tempfile::tempdir().unwrap();
        let info = crate::emit::BatchInfo {
            reader: crate::digits::ReaderInfo {
                name: "test".into(),
                version: "0".into(),
            },
            encoding: None,
            started: "now".into(),
            lang: crate::i18n::Lang::Ja,
        };
        crate::emit::write_batch(dir.path(), "20260608-090000", &t, &records, &[], &info).unwrap();
        let b = dir.path().join("batches/20260608-090000");
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(b.join("tally.csv")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let bytes = std::fs::read(b.join("tally.csv")).unwrap();
        let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
        // Every validated page of the week but the repeat of `a`, over the
        // dates the pages carry (j's 2026-03-31 to d's 2027-03-31).
        assert!(
            text.contains("2026-03-31,2027-03-31,合計,infant-checkup,,,頁数,集計対象,6,,\r\n"),
            "{text}"
        );
        // h and i are open in this batch (no ledger decides them here); g's
        // mismatch is replaced by its correction.
        assert!(
            text.contains(
                "2026-03-31,2027-03-31,合計,infant-checkup,,,頁数,未集計（確認待ち）,2,,\r\n"
            ),
            "{text}"
        );
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(b.join("manifest.json")).unwrap()).unwrap();
        assert!(manifest["files"]["tally.csv"].is_string());
        // A tally read back from the folder counts the same.
        let back = read_batches(&dir.path().join("batches")).unwrap();
        let again = tally(
            &t,
            &back,
            &HashSet::new(),
            Period {
                from: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
                to: NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
            },
            None,
        );
        assert_eq!((again.pages(), again.not_yet_counted()), (6, 2));
    }

    #[test]
    fn the_daemons_corrections_count_before_their_batch_and_rejections_close_a_page() {
        use crate::ledger::{Decision, Ledger, Received};
        let t = templates();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("todoke.db");
        let mut l = Ledger::open(&db).unwrap();
        let mut ids = Vec::new();
        for (sha, status) in [
            ("a", PageStatus::Validated),
            ("b", PageStatus::Mismatch),
            ("c", PageStatus::Mismatch),
        ] {
            let Received::New(id) = l
                .receive(
                    sha,
                    "honcho",
                    &format!("honcho/{sha}.png"),
                    &format!("honcho/{sha}.png"),
                )
                .unwrap()
            else {
                panic!("new scan")
            };
            let mut r = page(
                sha,
                "honcho",
                &format!("000000000{}", ids.len()),
                "2026-06-01",
                &[],
            );
            r.status = status;
            l.store_read(id, &[r]).unwrap();
            ids.push(id);
        }
        let batch = "20260601-090000";
        l.open_batch(batch).unwrap();
        let (records, _) = l.batch_contents(batch).unwrap();
        let info = crate::emit::BatchInfo {
            reader: crate::digits::ReaderInfo {
                name: "test".into(),
                version: "0".into(),
            },
            encoding: None,
            started: "now".into(),
            lang: crate::i18n::Lang::Ja,
        };
        crate::emit::write_batch(dir.path(), batch, &t, &records, &[], &info).unwrap();
        l.publish(batch).unwrap();
        let opts = TallyOptions {
            forms_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("forms"),
            batches: dir.path().join("batches"),
            ledger: Some(db.clone()),
            period: fy2026(),
            by: None,
            out: dir.path().join("tally"),
        };
        let before = run(&opts).unwrap();
        assert_eq!((before.pages(), before.not_yet_counted()), (1, 2));
        // Staff correct b (its batch is not closed yet) and reject c.
        let mut fixed = page(
            "b",
            "honcho",
            "0000000001",
            "2026-06-01",
            &[("q_difficulty", ok(json!(2)))],
        );
        fixed.corrected = true;
        l.decide(
            ids[1],
            1,
            "山田",
            &Decision::Corrected {
                record: Box::new(fixed),
                changes: vec![],
            },
        )
        .unwrap();
        l.decide(
            ids[2],
            1,
            "山田",
            &Decision::Rejected {
                reason: "別人".into(),
            },
        )
        .unwrap();
        let after = run(&opts).unwrap();
        assert_eq!((after.pages(), after.not_yet_counted()), (2, 0));
        let f = after
            .forms
            .iter()
            .find(|f| f.form == "infant-checkup")
            .unwrap();
        assert_eq!(
            question(f, &f.columns[0], "q_difficulty").options,
            vec![1, 1, 0]
        );
        assert!(dir.path().join("tally/tally.html").is_file());
    }
}
