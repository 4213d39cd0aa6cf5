//! Validate stage: raw readings in, typed values with a status each out.
//!
//! Nothing here guesses. A field passes only when every cell or box behind
//! it is confidently read and every rule of its kind holds; otherwise it
//! carries a reason code that sends the page to staff.

use crate::read::{FieldReading, MarkState, PageReading};
use crate::template::{
    era_from_code, CheckScheme, Defaults, Era, Field, FieldKind, Relation, Side, Template,
};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;

/// A side's fields, interpreted and checked.
#[derive(Debug, Clone, Serialize)]
pub struct ValidatedPage {
    pub fields: BTreeMap<String, FieldResult>,
    /// Reason codes, e.g. `low_confidence:atena_no`, in template field order.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FieldResult {
    /// records.jsonl form: digits as a string, dates `YYYY-MM-DD`, a single
    /// choice its 1-based index or null, a multiple choice a list.
    pub value: serde_json::Value,
    pub confidence: f32,
    pub status: FieldStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldStatus {
    Ok,
    LowConfidence,
    Invalid,
    CheckDigit,
    MultipleMarks,
    Missing,
    /// Dates that break a relation between them (template `relations`).
    Inconsistent,
    /// A date later than the day its scan is read (template
    /// `not_after_receipt`): nobody writes down a day still to come.
    AfterReceipt,
}

impl FieldStatus {
    /// The name records.jsonl and reports use (its serde name).
    pub fn code(self) -> &'static str {
        match self {
            FieldStatus::Ok => "ok",
            FieldStatus::LowConfidence => "low_confidence",
            FieldStatus::Invalid => "invalid",
            FieldStatus::CheckDigit => "check_digit",
            FieldStatus::MultipleMarks => "multiple_marks",
            FieldStatus::Missing => "missing",
            FieldStatus::Inconsistent => "inconsistent",
            FieldStatus::AfterReceipt => "after_receipt",
        }
    }

    /// The reason code (`low_confidence:atena_no`) of a field that did not pass.
    pub fn reason(self, field: &str) -> Option<String> {
        (self != FieldStatus::Ok).then(|| format!("{}:{field}", self.code()))
    }
}

impl ValidatedPage {
    /// The addressee number, only when it passed every check.
    pub fn atena_no(&self) -> Option<&str> {
        self.ok_value("atena_no").and_then(|v| v.as_str())
    }

    /// The birthdate, only when it passed every check.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        self.ok_value("birth_date")
            .and_then(|v| v.as_str())
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    }

    /// A field's value when its rules hold, however sure its cells are
    /// (status ok or low confidence): what the register may vouch for.
    pub fn doubtful_str(&self, id: &str) -> Option<&str> {
        self.fields
            .get(id)
            .filter(|f| matches!(f.status, FieldStatus::Ok | FieldStatus::LowConfidence))
            .and_then(|f| f.value.as_str())
    }

    /// Passes fields whose only fault was low confidence, on evidence from
    /// outside the reading (the register vouched for them).
    pub fn vouched_for(&mut self, ids: &[&str]) {
        for id in ids {
            if let Some(f) = self.fields.get_mut(*id) {
                if f.status == FieldStatus::LowConfidence {
                    f.status = FieldStatus::Ok;
                    let reason = FieldStatus::LowConfidence.reason(id);
                    self.reasons.retain(|r| Some(r) != reason.as_ref());
                }
            }
        }
    }

    fn ok_value(&self, id: &str) -> Option<&serde_json::Value> {
        self.fields
            .get(id)
            .filter(|f| f.status == FieldStatus::Ok)
            .map(|f| &f.value)
    }
}

/// The rule checks behind a side's statuses, filled only when a caller
/// asks (`validate_traced`, used by `todoke explain`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ValidateTrace {
    /// The day the scan was read, when the dates were held to it.
    pub received_on: Option<NaiveDate>,
    /// Relations that did not hold: their fields became `inconsistent`.
    pub broken_relations: Vec<BrokenRelation>,
    /// Every field the rival search weighed: a doubtful field the rules may
    /// vouch for, or a sure field with a check digit held to the same test.
    pub vouching: Vec<RuleVouch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BrokenRelation {
    pub earlier: String,
    pub later: String,
    pub plus_weeks_of: Option<String>,
    /// Days allowed between them.
    pub days: [i64; 2],
}

/// One field's rival search: the fields whose rules were weighed
/// together, the summed odds of every other reading under which they
/// still hold (counting stops once past `limit`; infinite when the reading
/// itself breaks them) and what it decided.
#[derive(Debug, Clone, Serialize)]
pub struct RuleVouch {
    pub field: String,
    /// `doubtful`: low confidence, every cell above the floor; `checked`: a
    /// sure field with a check digit.
    pub kind: &'static str,
    pub fields: Vec<String>,
    pub limit: f64,
    /// `None` when there was no search: see `not_searched`.
    pub rivals: Option<f64>,
    /// `no_rules`: nothing in these fields can catch a misread (no check
    /// digit, range, date or relation); `not_searchable`: a date's era is
    /// not known for certain, or a field is missing.
    pub not_searched: Option<&'static str>,
    /// `passed`: the rules vouched and the field is ok; `held`: the field
    /// stays (or becomes) low confidence.
    pub decision: &'static str,
}

/// A cell the reader calls blank with less than this confidence had ink it
/// could not classify: an unreadable cell, not an empty box.
pub const UNREADABLE_BELOW: f32 = 0.5;

/// `received_on` is the day the scan is read, when known: no date marked
/// `not_after_receipt` may be later.
pub fn validate(
    template: &Template,
    side: &Side,
    reading: &PageReading,
    received_on: Option<NaiveDate>,
) -> ValidatedPage {
    validate_traced(template, side, reading, received_on, None)
}

/// `validate`, recording in `trace` (when given) the relations that broke
/// and every rival search with its odds.
pub fn validate_traced(
    template: &Template,
    side: &Side,
    reading: &PageReading,
    received_on: Option<NaiveDate>,
    mut trace: Option<&mut ValidateTrace>,
) -> ValidatedPage {
    let bounds = Bounds { received_on };
    let mut fields: BTreeMap<String, FieldResult> = side
        .fields
        .iter()
        .map(|field| {
            let result = match reading.fields.iter().find(|r| r.id == field.id) {
                Some(r) => after_receipt(
                    field,
                    validate_field(field, r, field.threshold(&template.defaults)),
                    &bounds,
                ),
                // The read stage reads every field; a hole here is a reading
                // that cannot be trusted, never a blank answer.
                None => FieldResult {
                    value: serde_json::Value::Null,
                    confidence: 0.0,
                    status: FieldStatus::Invalid,
                },
            };
            (field.id.clone(), result)
        })
        .collect();
    if let Some(t) = trace.as_deref_mut() {
        t.received_on = received_on;
    }
    mark_inconsistent(side, reading, &bounds, &mut fields, trace.as_deref_mut());
    vouch_by_rules(template, side, reading, &bounds, &mut fields, trace);
    let reasons = side
        .fields
        .iter()
        .filter_map(|f| fields.get(&f.id).and_then(|r| r.status.reason(&f.id)))
        .collect();
    ValidatedPage { fields, reasons }
}

/// What a page's dates are held to besides their own rules and relations.
#[derive(Debug, Clone, Copy, Default)]
struct Bounds {
    received_on: Option<NaiveDate>,
}

impl Bounds {
    /// The latest date `field` may hold, if any.
    fn latest(&self, field: &Field) -> Option<NaiveDate> {
        self.received_on.filter(|_| field.not_after_receipt)
    }
}

/// A date read as later than the day its scan is read is refused whatever
/// its confidence: a rule failure wins, as everywhere else.
fn after_receipt(field: &Field, mut result: FieldResult, bounds: &Bounds) -> FieldResult {
    let latest = bounds.latest(field);
    let read = result
        .value
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
    if let (Some(latest), Some(read), FieldStatus::Ok | FieldStatus::LowConfidence) =
        (latest, read, result.status)
    {
        if read > latest {
            result.status = FieldStatus::AfterReceipt;
        }
    }
    result
}

/// Whether a field's checkboxes (a date's era ticks) are as sure as the
/// field demands. Vouching weighs digit cells only, so a field with a
/// doubtful tick is never vouched for, here or by the register.
pub fn ticks_sure(field: &Field, r: &FieldReading, defaults: &Defaults) -> bool {
    let threshold = field.threshold(defaults);
    r.marks
        .iter()
        .all(|m| m.state != MarkState::Uncertain && m.confidence >= threshold)
}

/// A value that follows its own rules, sure or not: what relations and
/// vouching may weigh.
fn usable(fields: &BTreeMap<String, FieldResult>, id: &str) -> bool {
    fields
        .get(id)
        .is_some_and(|f| matches!(f.status, FieldStatus::Ok | FieldStatus::LowConfidence))
}

/// Dates that contradict each other send every one of them to staff,
/// however sure each cell was: one of them is misread or miswritten.
fn mark_inconsistent(
    side: &Side,
    reading: &PageReading,
    bounds: &Bounds,
    fields: &mut BTreeMap<String, FieldResult>,
    mut trace: Option<&mut ValidateTrace>,
) {
    for rel in &side.relations {
        let ids = relation_fields(rel);
        if !ids.iter().all(|id| usable(fields, id)) {
            continue;
        }
        let Some(group) = Group::new(side, reading, bounds, &ids, &[rel]) else {
            continue;
        };
        if !group.holds(&group.read) {
            if let Some(t) = trace.as_deref_mut() {
                t.broken_relations.push(BrokenRelation {
                    earlier: rel.earlier.clone(),
                    later: rel.later.clone(),
                    plus_weeks_of: rel.plus_weeks_of.clone(),
                    days: rel.days,
                });
            }
            for id in &ids {
                if let Some(f) = fields.get_mut(*id) {
                    f.status = FieldStatus::Inconsistent;
                }
            }
        }
    }
}

/// Passes doubtful fields whose rules would catch nearly every misread,
/// and holds fields with a check digit to the same test however sure their
/// cells are: the check digit is what lets an identifier pass at the lower
/// digit threshold, yet it misses some single misreads (My Number gives 0
/// for both remainders 0 and 1).
fn vouch_by_rules(
    template: &Template,
    side: &Side,
    reading: &PageReading,
    bounds: &Bounds,
    fields: &mut BTreeMap<String, FieldResult>,
    mut trace: Option<&mut ValidateTrace>,
) {
    let defaults = &template.defaults;
    // Fields tied by one relation share one search; it is done once.
    let mut searched: Vec<(Vec<&str>, u64, Result<f64, &'static str>)> = Vec::new();
    for field in &side.fields {
        let (Some(result), Some(r)) = (
            fields.get(&field.id),
            reading.fields.iter().find(|r| r.id == field.id),
        ) else {
            continue;
        };
        let doubtful = result.status == FieldStatus::LowConfidence
            && ticks_sure(field, r, defaults)
            && defaults
                .vouch_cell_floor
                .is_some_and(|floor| result.confidence >= floor);
        let checked = result.status == FieldStatus::Ok && field.check.is_some();
        if !doubtful && !checked {
            continue;
        }
        // The field's own rules, and every relation whose other fields were
        // read, decide together how many misreads would still look valid.
        let relations: Vec<&Relation> = side
            .relations
            .iter()
            .filter(|r| {
                let ids = relation_fields(r);
                ids.contains(&field.id.as_str()) && ids.iter().all(|id| usable(fields, id))
            })
            .collect();
        let mut ids = vec![field.id.as_str()];
        for r in &relations {
            for id in relation_fields(r) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        // Identifiers keep the register's limit; dates and quantities take
        // theirs (see `Defaults::rules_max_rivals`).
        let limit = if field.check.is_some() {
            defaults.vouch_max_rivals
        } else {
            defaults
                .rules_max_rivals
                .unwrap_or(defaults.vouch_max_rivals)
        };
        let mut key = ids.clone();
        key.sort_unstable();
        let rivals = match searched
            .iter()
            .find(|(k, l, _)| *k == key && *l == limit.to_bits())
        {
            Some(&(_, _, r)) => r,
            None => {
                let r = match Group::new(side, reading, bounds, &ids, &relations) {
                    None => Err("not_searchable"),
                    Some(g) if !g.constrains() => Err("no_rules"),
                    Some(g) => Ok(g.rivals(limit)),
                };
                searched.push((key, limit.to_bits(), r));
                r
            }
        };
        let vouched = rivals.is_ok_and(|r| r <= limit);
        if let Some(t) = trace.as_deref_mut() {
            t.vouching.push(RuleVouch {
                field: field.id.clone(),
                kind: if doubtful { "doubtful" } else { "checked" },
                fields: ids.iter().map(|s| s.to_string()).collect(),
                limit,
                rivals: rivals.ok(),
                not_searched: rivals.err(),
                decision: if vouched { "passed" } else { "held" },
            });
        }
        if let Some(f) = fields.get_mut(&field.id) {
            if doubtful && vouched {
                f.status = FieldStatus::Ok;
            } else if checked && !vouched {
                f.status = FieldStatus::LowConfidence;
            }
        }
    }
}

fn relation_fields(r: &Relation) -> Vec<&str> {
    let mut ids = vec![r.earlier.as_str(), r.later.as_str()];
    ids.extend(r.plus_weeks_of.as_deref());
    ids
}

/// One field.
///
/// The confidence is the minimum over its cells and boxes, not the product.
/// The per-field thresholds in the templates (0.99 for digits) are set as
/// "every cell at least this sure", matching the reader's shipped per-cell
/// threshold; a product would make the same threshold far stricter for a
/// 12-box My Number than for 2-box gestation weeks, and the cells of one
/// writer on one scan are not independent enough for a product to be the
/// probability it pretends to be. One doubtful cell still fails the field.
pub fn validate_field(field: &Field, r: &FieldReading, threshold: f32) -> FieldResult {
    let confidence = r
        .cells
        .iter()
        .map(|c| c.confidence)
        .chain(r.marks.iter().map(|m| m.confidence))
        .fold(1.0f32, f32::min);
    let (value, mut status) = match field.kind {
        FieldKind::Digits => digits_value(field, r),
        FieldKind::Date => date_value(field, r),
        FieldKind::Single => single_value(r),
        FieldKind::Multi => multi_value(r),
    };
    if status == FieldStatus::Missing && !field.required {
        status = FieldStatus::Ok;
    }
    // A box that is neither clearly empty nor clearly marked may be an
    // answer left out or one that is not there: whatever else was read, the
    // field cannot be taken as it stands, whatever its threshold.
    if status == FieldStatus::Ok && r.marks.iter().any(|m| m.state == MarkState::Uncertain) {
        status = FieldStatus::LowConfidence;
    }
    // A confident wrong answer is still wrong, so rule failures win; a rule
    // that passes on doubtful readings is not trusted.
    if status == FieldStatus::Ok && confidence < threshold {
        status = FieldStatus::LowConfidence;
    }
    FieldResult {
        value,
        confidence,
        status,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Digit(u8),
    Blank,
    Unreadable,
}

fn cells_of(r: &FieldReading) -> Vec<Cell> {
    r.cells
        .iter()
        .map(|c| match c.digit {
            Some(d) => Cell::Digit(d),
            None if c.confidence < UNREADABLE_BELOW => Cell::Unreadable,
            None => Cell::Blank,
        })
        .collect()
}

/// What was read, for staff: `_` for a blank box, `?` for an unreadable one.
fn shown(cells: &[Cell]) -> String {
    cells
        .iter()
        .map(|c| match c {
            Cell::Digit(d) => char::from(b'0' + d),
            Cell::Blank => '_',
            Cell::Unreadable => '?',
        })
        .collect()
}

fn box_count(field: &Field) -> usize {
    field.boxes.as_ref().map_or(0, |b| b.count())
}

fn digits_value(field: &Field, r: &FieldReading) -> (serde_json::Value, FieldStatus) {
    let cells = cells_of(r);
    let body = match digits_body(field, &cells) {
        Ok(body) => body,
        Err(FieldStatus::Missing) => return (serde_json::Value::Null, FieldStatus::Missing),
        Err(status) => return (serde_json::Value::String(shown(&cells)), status),
    };
    let value = serde_json::Value::String(shown(body));
    match number_rules(field, body) {
        Ok(_) => (value, FieldStatus::Ok),
        Err(status) => (value, status),
    }
}

/// The boxes a digit field's number is written in, or why there is none.
/// Identifiers must fill every box. A quantity (a field with a range, like
/// gestation weeks) may leave one end box empty: "9" is written in either
/// box of two, and the blank cell's own confidence still counts.
fn digits_body<'c>(field: &Field, cells: &'c [Cell]) -> Result<&'c [Cell], FieldStatus> {
    if cells.iter().all(|c| *c == Cell::Blank) {
        return Err(FieldStatus::Missing);
    }
    if cells.len() != box_count(field) || cells.contains(&Cell::Unreadable) {
        return Err(FieldStatus::Invalid);
    }
    let mut body = cells;
    if field.range.is_some() && cells.len() >= 2 {
        if body[0] == Cell::Blank {
            body = &body[1..];
        } else if body[body.len() - 1] == Cell::Blank {
            body = &body[..body.len() - 1];
        }
    }
    if body.contains(&Cell::Blank) {
        return Err(FieldStatus::Invalid);
    }
    Ok(body)
}

/// A number's range and check digit; its value when it has a range.
fn number_rules(field: &Field, body: &[Cell]) -> Result<Option<u32>, FieldStatus> {
    let mut digits = [0u32; 32];
    if body.len() > digits.len() {
        return Err(FieldStatus::Invalid);
    }
    for (d, c) in digits.iter_mut().zip(body) {
        if let Cell::Digit(x) = c {
            *d = u32::from(*x);
        }
    }
    let digits = &digits[..body.len()];
    let mut number = None;
    if let Some([lo, hi]) = field.range {
        let n = digits.iter().fold(0u64, |n, &d| {
            (n * 10 + u64::from(d)).min(u64::from(u32::MAX))
        });
        if n < u64::from(lo) || n > u64::from(hi) {
            return Err(FieldStatus::Invalid);
        }
        number = Some(n as u32);
    }
    if let Some(scheme) = field.check {
        if !check_digits_ok(scheme, digits) {
            return Err(FieldStatus::CheckDigit);
        }
    }
    Ok(number)
}

/// Which era a date is in: the printed one, else exactly one ticked box. An
/// era is never guessed from the year, because 平成2 and 令和2 are both
/// plausible.
fn era_of(field: &Field, r: &FieldReading) -> Result<Era, FieldStatus> {
    if let Some(e) = field.era {
        return Ok(e);
    }
    match marked_indices(r).as_slice() {
        [i] => field
            .options
            .get(*i)
            .and_then(|o| era_from_code(&o.code))
            .ok_or(FieldStatus::Invalid),
        [] if r.marks.iter().any(|m| m.state == MarkState::Uncertain) => {
            Err(FieldStatus::LowConfidence)
        }
        [] => Err(FieldStatus::Invalid),
        _ => Err(FieldStatus::MultipleMarks),
    }
}

/// Six boxes YY MM DD as a date of `era`, when they make one.
fn date_of(era: Era, cells: &[Cell]) -> Option<NaiveDate> {
    let mut d = [0u32; 6];
    if cells.len() != d.len() {
        return None;
    }
    for (d, c) in d.iter_mut().zip(cells) {
        match c {
            Cell::Digit(x) => *d = u32::from(*x),
            _ => return None,
        }
    }
    era_date(era, d[0] * 10 + d[1], d[2] * 10 + d[3], d[4] * 10 + d[5])
}

fn date_value(field: &Field, r: &FieldReading) -> (serde_json::Value, FieldStatus) {
    let cells = cells_of(r);
    let digits_blank = cells.iter().all(|c| *c == Cell::Blank);
    let uncertain = r.marks.iter().any(|m| m.state == MarkState::Uncertain);
    if digits_blank && marked_indices(r).is_empty() && !uncertain {
        return (serde_json::Value::Null, FieldStatus::Missing);
    }
    let era = era_of(field, r);
    let era_label = era.map(Era::label).unwrap_or("?");
    let s = shown(&cells);
    let raw = if cells.len() == 6 {
        format!("{era_label}{}-{}-{}", &s[0..2], &s[2..4], &s[4..6])
    } else {
        format!("{era_label}{s}")
    };
    let raw = serde_json::Value::String(raw);
    let era = match era {
        Ok(e) => e,
        Err(status) => return (raw, status),
    };
    match date_of(era, &cells) {
        Some(d) => (
            serde_json::Value::String(d.format("%Y-%m-%d").to_string()),
            FieldStatus::Ok,
        ),
        None => (raw, FieldStatus::Invalid),
    }
}

fn marked_indices(r: &FieldReading) -> Vec<usize> {
    r.marks
        .iter()
        .enumerate()
        .filter(|(_, m)| m.state == MarkState::Marked)
        .map(|(i, _)| i)
        .collect()
}

fn single_value(r: &FieldReading) -> (serde_json::Value, FieldStatus) {
    let marked = marked_indices(r);
    match marked.as_slice() {
        [] if r.marks.iter().any(|m| m.state == MarkState::Uncertain) => {
            (serde_json::Value::Null, FieldStatus::LowConfidence)
        }
        [] => (serde_json::Value::Null, FieldStatus::Missing),
        [i] => (serde_json::json!(i + 1), FieldStatus::Ok),
        // The records.jsonl type of a single answer is an index or null;
        // which boxes were ticked is in the field image staff look at.
        _ => (serde_json::Value::Null, FieldStatus::MultipleMarks),
    }
}

fn multi_value(r: &FieldReading) -> (serde_json::Value, FieldStatus) {
    let marked: Vec<usize> = marked_indices(r).into_iter().map(|i| i + 1).collect();
    let uncertain = r.marks.iter().any(|m| m.state == MarkState::Uncertain);
    // Nothing ticked is "missing" for a required question; a question where
    // no tick is itself an answer ("all that apply" without a "none" box)
    // is declared `required = false` in its template. Uncertain boxes make
    // the field doubtful in `validate_field`.
    let status = if marked.is_empty() && !uncertain {
        FieldStatus::Missing
    } else {
        FieldStatus::Ok
    };
    (serde_json::json!(marked), status)
}

/// The calendar date of era year `yy`, month, day; `None` when it does not
/// exist or falls outside its era.
pub fn era_date(era: Era, yy: u32, month: u32, day: u32) -> Option<NaiveDate> {
    if yy == 0 {
        return None;
    }
    let (offset, first, last) = match era {
        Era::Showa => (1925, (1926, 12, 25), Some((1989, 1, 7))),
        Era::Heisei => (1988, (1989, 1, 8), Some((2019, 4, 30))),
        Era::Reiwa => (2018, (2019, 5, 1), None),
    };
    let date = NaiveDate::from_ymd_opt((yy + offset) as i32, month, day)?;
    let ymd = |(y, m, d): (i32, u32, u32)| NaiveDate::from_ymd_opt(y, m, d);
    if date < ymd(first)? {
        return None;
    }
    if let Some(last) = last {
        if date > ymd(last)? {
            return None;
        }
    }
    Some(date)
}

pub fn check_digit_ok(scheme: CheckScheme, digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    d.len() == digits.len() && check_digits_ok(scheme, &d)
}

/// [`check_digit_ok`] over digit values, for callers that already hold
/// them (the rival search tries a hundred thousand numbers per field).
fn check_digits_ok(scheme: CheckScheme, d: &[u32]) -> bool {
    if d.len() < 2 {
        return false;
    }
    let (body, check) = d.split_at(d.len() - 1);
    let expected = match scheme {
        CheckScheme::MyNumber => {
            if d.len() != 12 {
                return false;
            }
            my_number_check_digit(body)
        }
        CheckScheme::Mod10 => {
            // Luhn: double every second digit from the right of the body.
            let s: u32 = body
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &x)| {
                    if i % 2 == 0 {
                        let y = x * 2;
                        y / 10 + y % 10
                    } else {
                        x
                    }
                })
                .sum();
            (10 - s % 10) % 10
        }
        CheckScheme::Mod11 => {
            let s: u32 = body
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &x)| x * (2 + (i as u32 % 6)))
                .sum();
            let r = s % 11;
            if r <= 1 {
                0
            } else {
                11 - r
            }
        }
    };
    check[0] == expected
}

/// Fields whose cells are searched together for rival readings: every
/// reading within three misread cells of what was read under which each
/// field's own rules (a real date, the range, the check digit) and the
/// relations between them still hold. Their summed odds against the reading
/// say how likely the rules are to pass a misread: any single misread of a
/// check digit is caught but not every double one, a month's tens digit can
/// only be 0 or 1, and a due date must sit 40 weeks from the notification
/// less the weeks already gone. Odds per cell: `CellReading::odds_of`.
struct Group<'a> {
    members: Vec<Member<'a>>,
    /// Indices into `members`: earlier, later, weeks; the allowed days.
    relations: Vec<(usize, usize, Option<usize>, [i64; 2])>,
    /// Every member's cells, end to end, as read.
    read: Vec<Cell>,
    /// odds[i][d]: cell i shows d rather than what it was read as.
    odds: Vec<[f64; 10]>,
}

struct Member<'a> {
    field: &'a Field,
    era: Option<Era>,
    /// No rival date after this one counts (`Bounds::latest`).
    latest: Option<NaiveDate>,
    cells: std::ops::Range<usize>,
}

#[derive(Clone, Copy)]
enum Parsed {
    Date(NaiveDate),
    Number(Option<u32>),
}

/// Enough for any side's related fields; a larger group is not searched.
const MAX_GROUP: usize = 8;

impl<'a> Group<'a> {
    /// `None` when a field is missing from the side or the reading, or a
    /// date's era is not known for certain (the search only changes digits).
    fn new(
        side: &'a Side,
        reading: &PageReading,
        bounds: &Bounds,
        ids: &[&str],
        relations: &[&Relation],
    ) -> Option<Group<'a>> {
        if ids.len() > MAX_GROUP {
            return None;
        }
        let mut members = Vec::with_capacity(ids.len());
        let mut read = Vec::new();
        let mut odds = Vec::new();
        for id in ids {
            let field = side.fields.iter().find(|f| f.id == *id)?;
            let r = reading.fields.iter().find(|r| r.id == *id)?;
            let era = match field.kind {
                FieldKind::Date => Some(era_of(field, r).ok()?),
                FieldKind::Digits => None,
                FieldKind::Single | FieldKind::Multi => return None,
            };
            let start = read.len();
            read.extend(cells_of(r));
            odds.extend(
                r.cells
                    .iter()
                    .map(|c| std::array::from_fn(|d| c.odds_of(d as u8))),
            );
            members.push(Member {
                field,
                era,
                latest: bounds.latest(field),
                cells: start..read.len(),
            });
        }
        let index = |id: &str| members.iter().position(|m| m.field.id == id);
        let relations = relations
            .iter()
            .map(|r| {
                let weeks = match &r.plus_weeks_of {
                    Some(w) => Some(index(w)?),
                    None => None,
                };
                Some((index(&r.earlier)?, index(&r.later)?, weeks, r.days))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Group {
            members,
            relations,
            read,
            odds,
        })
    }

    /// Whether anything here can catch a misread at all.
    fn constrains(&self) -> bool {
        !self.relations.is_empty()
            || self.members.iter().any(|m| {
                m.field.kind == FieldKind::Date
                    || m.field.range.is_some()
                    || m.field.check.is_some()
            })
    }

    fn holds(&self, cells: &[Cell]) -> bool {
        let mut parsed = [Parsed::Number(None); MAX_GROUP];
        for (p, m) in parsed.iter_mut().zip(&self.members) {
            let cells = &cells[m.cells.clone()];
            *p = match m.era {
                Some(era) => match date_of(era, cells) {
                    Some(d) if m.latest.is_none_or(|l| d <= l) => Parsed::Date(d),
                    _ => return false,
                },
                None => match digits_body(m.field, cells).and_then(|b| number_rules(m.field, b)) {
                    Ok(n) => Parsed::Number(n),
                    Err(_) => return false,
                },
            };
        }
        self.relations.iter().all(|&(e, l, w, [lo, hi])| {
            let (Parsed::Date(earlier), Parsed::Date(later)) = (parsed[e], parsed[l]) else {
                return false;
            };
            let weeks = match w.map(|w| parsed[w]) {
                None => 0,
                Some(Parsed::Number(Some(n))) => i64::from(n),
                Some(_) => return false,
            };
            (lo..=hi).contains(&((later - earlier).num_days() + 7 * weeks))
        })
    }

    /// The rivals' summed odds, counted until they pass `limit`; infinite
    /// when the reading itself breaks the rules.
    fn rivals(&self, limit: f64) -> f64 {
        if !self.holds(&self.read) {
            return f64::INFINITY;
        }
        let mut cells = self.read.clone();
        let mut total = 0.0;
        self.search(&mut cells, 0, 3, 1.0, &mut total, limit);
        total
    }

    fn search(
        &self,
        cells: &mut [Cell],
        start: usize,
        changes_left: usize,
        so_far: f64,
        total: &mut f64,
        limit: f64,
    ) {
        if changes_left == 0 {
            return;
        }
        for i in start..cells.len() {
            // Blank and unreadable boxes stay as read: their own confidence
            // is already held to the floor.
            let Cell::Digit(original) = cells[i] else {
                continue;
            };
            for d in 0..10u8 {
                if *total > limit {
                    return;
                }
                let o = so_far * self.odds[i][usize::from(d)];
                if d == original || o < 1e-12 {
                    continue;
                }
                cells[i] = Cell::Digit(d);
                if self.holds(cells) {
                    *total += o;
                }
                self.search(cells, i + 1, changes_left - 1, o, total, limit);
            }
            cells[i] = Cell::Digit(original);
        }
    }
}

/// 個人番号 check digit over the first 11 digits.
pub fn my_number_check_digit(first11: &[u32]) -> u32 {
    const WEIGHTS: [u32; 11] = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    let s: u32 = first11.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    let r = s % 11;
    if r <= 1 {
        0
    } else {
        11 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digits::CellReading;
    use crate::read::MarkReading;
    use crate::template::{BoxRow, Choice, DigitSource, TEST_TEMPLATE_HEAD};

    fn d(y: i32, m: u32, dd: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, dd)
    }

    #[test]
    fn era_boundaries() {
        assert_eq!(era_date(Era::Showa, 64, 1, 7), d(1989, 1, 7));
        assert_eq!(era_date(Era::Showa, 64, 1, 8), None);
        assert_eq!(era_date(Era::Showa, 1, 12, 24), None);
        assert_eq!(era_date(Era::Showa, 1, 12, 25), d(1926, 12, 25));
        assert_eq!(era_date(Era::Heisei, 1, 1, 8), d(1989, 1, 8));
        assert_eq!(era_date(Era::Heisei, 1, 1, 7), None);
        assert_eq!(era_date(Era::Heisei, 31, 4, 30), d(2019, 4, 30));
        assert_eq!(era_date(Era::Heisei, 31, 5, 1), None);
        assert_eq!(era_date(Era::Reiwa, 1, 5, 1), d(2019, 5, 1));
        assert_eq!(era_date(Era::Reiwa, 1, 4, 30), None);
        assert_eq!(era_date(Era::Reiwa, 0, 6, 1), None);
        assert_eq!(era_date(Era::Reiwa, 6, 2, 29), d(2024, 2, 29));
        assert_eq!(era_date(Era::Reiwa, 7, 2, 29), None);
        assert_eq!(era_date(Era::Reiwa, 8, 13, 1), None);
    }

    #[test]
    fn my_number_check_digit_follows_the_spec() {
        assert_eq!(my_number_check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]), 8);
        assert!(check_digit_ok(CheckScheme::MyNumber, "123456789018"));
        assert!(!check_digit_ok(CheckScheme::MyNumber, "123456789017"));
        assert!(!check_digit_ok(CheckScheme::MyNumber, "12345678901"));
    }

    #[test]
    fn luhn_and_mod11() {
        assert!(check_digit_ok(CheckScheme::Mod10, "79927398713"));
        assert!(!check_digit_ok(CheckScheme::Mod10, "79927398710"));
        // 030640615 with weights 2..7 repeating from the right: sum 112, r 2, check 9.
        assert!(check_digit_ok(CheckScheme::Mod11, "0306406159"));
        assert!(!check_digit_ok(CheckScheme::Mod11, "0306406152"));
    }

    fn mark(state: MarkState) -> MarkReading {
        MarkReading {
            ink: 0.0,
            state,
            confidence: if state == MarkState::Uncertain {
                0.2
            } else {
                0.99
            },
        }
    }

    fn field(kind: FieldKind, n_boxes: usize, options: usize) -> Field {
        Field {
            id: "f".into(),
            label: "f".into(),
            kind,
            label_at_mm: [0.0, 0.0],
            required: true,
            min_confidence: Some(0.9),
            boxes: (n_boxes > 0).then(|| BoxRow {
                x_mm: 0.0,
                y_mm: 0.0,
                w_mm: 5.0,
                h_mm: 7.0,
                gap_mm: 1.0,
                groups: vec![n_boxes],
                group_gap_mm: 0.0,
                group_suffixes: vec![],
            }),
            era: None,
            options: (0..options)
                .map(|i| Choice {
                    label: format!("o{i}"),
                    code: ["showa", "heisei", "reiwa"][i % 3].into(),
                    x_mm: 0.0,
                    y_mm: 0.0,
                    size_mm: 4.0,
                })
                .collect(),
            source: DigitSource::Handwriting,
            check: None,
            range: None,
            sensitive: false,
            not_after_receipt: false,
        }
    }

    fn reading(kind: FieldKind, cells: Vec<CellReading>, marks: Vec<MarkReading>) -> FieldReading {
        FieldReading {
            id: "f".into(),
            kind,
            cells,
            marks,
            image: image::GrayImage::new(1, 1),
        }
    }

    fn digits(s: &str, c: f32) -> Vec<CellReading> {
        s.chars()
            .map(|ch| CellReading::only(ch.to_digit(10).map(|d| d as u8), c))
            .collect()
    }

    #[test]
    fn two_marks_on_a_single_choice_are_multiple_marks() {
        let f = field(FieldKind::Single, 0, 3);
        let r = reading(
            FieldKind::Single,
            vec![],
            vec![
                mark(MarkState::Marked),
                mark(MarkState::Empty),
                mark(MarkState::Marked),
            ],
        );
        assert_eq!(
            validate_field(&f, &r, 0.8).status,
            FieldStatus::MultipleMarks
        );
        let r = reading(
            FieldKind::Single,
            vec![],
            vec![
                mark(MarkState::Empty),
                mark(MarkState::Marked),
                mark(MarkState::Empty),
            ],
        );
        let got = validate_field(&f, &r, 0.8);
        assert_eq!(
            (got.value, got.status),
            (serde_json::json!(2), FieldStatus::Ok)
        );
    }

    /// The rival odds a lone digits field with a check digit leaves.
    fn check_digit_rivals(scheme: CheckScheme, cells: &[CellReading]) -> f64 {
        let mut f = field(FieldKind::Digits, cells.len(), 0);
        f.check = Some(scheme);
        let side = Side {
            id: "s".into(),
            code: 1,
            read: true,
            texts: vec![],
            fields: vec![f],
            relations: vec![],
        };
        let page = PageReading {
            form: "t".into(),
            side: "s".into(),
            fields: vec![reading(FieldKind::Digits, cells.to_vec(), vec![])],
        };
        Group::new(&side, &page, &Bounds::default(), &["f"], &[])
            .expect("the field is on the side and read")
            .rivals(f64::INFINITY)
    }

    #[test]
    fn a_check_digit_vouches_only_for_numbers_few_misreads_could_fake() {
        let cells = |digits: &str, c: f32| -> Vec<CellReading> {
            digits
                .bytes()
                .map(|b| CellReading::only(Some(b - b'0'), c))
                .collect()
        };
        // 123456789018: check digit 8 over 12345678901 (the spec's example).
        let sure = check_digit_rivals(CheckScheme::MyNumber, &cells("123456789018", 0.9999));
        let unsure = check_digit_rivals(CheckScheme::MyNumber, &cells("123456789018", 0.95));
        assert!(sure < 1e-4, "{sure}");
        assert!(unsure > 1e-2, "{unsure}");
        // A doubtful check-digit cell alone is no risk: its runner-up 9
        // fails the check, and faking 9 also takes a misread elsewhere.
        let mut c = cells("123456789018", 0.9999);
        c[11].confidence = 0.6;
        c[11].second = Some(9);
        c[11].second_confidence = 0.3999;
        let r = check_digit_rivals(CheckScheme::MyNumber, &c);
        assert!(r < 1e-3, "{r}");
        // An unread cell leaves nothing to vouch for.
        let mut c = cells("123456789018", 0.9999);
        c[3].digit = None;
        assert!(check_digit_rivals(CheckScheme::MyNumber, &c).is_infinite());
    }

    #[test]
    fn an_uncertain_box_is_low_confidence_not_a_guess() {
        let f = field(FieldKind::Single, 0, 2);
        let r = reading(
            FieldKind::Single,
            vec![],
            vec![mark(MarkState::Marked), mark(MarkState::Uncertain)],
        );
        assert_eq!(
            validate_field(&f, &r, 0.8).status,
            FieldStatus::LowConfidence
        );
    }

    #[test]
    fn one_doubtful_digit_makes_the_field_low_confidence() {
        let f = field(FieldKind::Digits, 4, 0);
        let mut cells = digits("1234", 0.999);
        cells[2].confidence = 0.6;
        let got = validate_field(&f, &reading(FieldKind::Digits, cells, vec![]), 0.9);
        assert_eq!(got.status, FieldStatus::LowConfidence);
        assert_eq!(got.value, serde_json::json!("1234"));
    }

    #[test]
    fn gaps_and_ranges() {
        let f = field(FieldKind::Digits, 4, 0);
        let got = validate_field(
            &f,
            &reading(FieldKind::Digits, digits("12_4", 0.99), vec![]),
            0.9,
        );
        assert_eq!(got.status, FieldStatus::Invalid);
        let mut weeks = field(FieldKind::Digits, 2, 0);
        weeks.range = Some([4, 42]);
        let ok = validate_field(
            &weeks,
            &reading(FieldKind::Digits, digits("_9", 0.99), vec![]),
            0.9,
        );
        assert_eq!(
            (ok.value, ok.status),
            (serde_json::json!("9"), FieldStatus::Ok)
        );
        let high = validate_field(
            &weeks,
            &reading(FieldKind::Digits, digits("43", 0.99), vec![]),
            0.9,
        );
        assert_eq!(high.status, FieldStatus::Invalid);
        let blank = validate_field(
            &weeks,
            &reading(FieldKind::Digits, digits("__", 0.99), vec![]),
            0.9,
        );
        assert_eq!(blank.status, FieldStatus::Missing);
    }

    #[test]
    fn dates_take_their_era_from_the_marked_box() {
        let f = field(FieldKind::Date, 6, 3);
        let heisei = vec![
            mark(MarkState::Empty),
            mark(MarkState::Marked),
            mark(MarkState::Empty),
        ];
        let got = validate_field(
            &f,
            &reading(FieldKind::Date, digits("020401", 0.99), heisei.clone()),
            0.9,
        );
        assert_eq!(
            (got.value, got.status),
            (serde_json::json!("1990-04-01"), FieldStatus::Ok)
        );
        let bad = validate_field(
            &f,
            &reading(FieldKind::Date, digits("310501", 0.99), heisei),
            0.9,
        );
        assert_eq!(bad.status, FieldStatus::Invalid);
        let two = vec![
            mark(MarkState::Marked),
            mark(MarkState::Marked),
            mark(MarkState::Empty),
        ];
        let got = validate_field(
            &f,
            &reading(FieldKind::Date, digits("020401", 0.99), two),
            0.9,
        );
        assert_eq!(got.status, FieldStatus::MultipleMarks);
    }
    fn page_template() -> Template {
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
id = "birth_date"
label = "生年月日"
kind = "date"
label_at_mm = [10.0, 60.0]
boxes = { x_mm = 50.0, y_mm = 60.0, w_mm = 5.5, h_mm = 7.5, gap_mm = 1.5, groups = [2, 2, 2] }
options = [{ label = "昭和", code = "showa", x_mm = 100.0, y_mm = 60.0, size_mm = 4.0 }, { label = "平成", code = "heisei", x_mm = 110.0, y_mm = 60.0, size_mm = 4.0 }, { label = "令和", code = "reiwa", x_mm = 120.0, y_mm = 60.0, size_mm = 4.0 }]
[[sides.fields]]
id = "my_number"
label = "個人番号"
kind = "digits"
label_at_mm = [10.0, 70.0]
sensitive = true
check = "my_number"
boxes = { x_mm = 50.0, y_mm = 70.0, w_mm = 5.5, h_mm = 7.5, gap_mm = 1.5, groups = [12] }
[output]
columns = [{ header = "宛名番号", value = "atena_no" }]
"#;
        toml::from_str(&text).unwrap()
    }

    fn page(atena: &str, birth: &str, era: [MarkState; 3], my_number: &str) -> PageReading {
        let f = |id: &str, kind, cells, marks| FieldReading {
            id: id.into(),
            kind,
            cells,
            marks,
            image: image::GrayImage::new(1, 1),
        };
        PageReading {
            form: "t".into(),
            side: "t".into(),
            fields: vec![
                f("atena_no", FieldKind::Digits, digits(atena, 0.999), vec![]),
                f(
                    "birth_date",
                    FieldKind::Date,
                    digits(birth, 0.999),
                    era.into_iter().map(mark).collect(),
                ),
                f(
                    "my_number",
                    FieldKind::Digits,
                    digits(my_number, 0.999),
                    vec![],
                ),
            ],
        }
    }

    #[test]
    fn a_sure_my_number_the_check_digit_cannot_tell_from_a_rival_goes_to_staff() {
        use MarkState::{Empty, Marked};
        let t = page_template();
        let side = &t.sides[0];
        let sure = |d: u8, p: f32, alt: u8| {
            let mut all = [0.0f32; 10];
            all[usize::from(d)] = p;
            all[usize::from(alt)] = 1.0 - p;
            CellReading {
                digit: Some(d),
                confidence: p,
                second: Some(alt),
                second_confidence: 1.0 - p,
                digit_probabilities: Some(all),
            }
        };
        // Written 957144436230, the third cell read as 4 at 0.9897: both
        // numbers have check digit 0 (remainders 1 and 0), so the check
        // digit cannot catch it although every cell clears the threshold.
        assert!(check_digit_ok(CheckScheme::MyNumber, "957144436230"));
        assert!(check_digit_ok(CheckScheme::MyNumber, "954144436230"));
        let cells = |number: &str, third: f32| -> Vec<CellReading> {
            number
                .bytes()
                .enumerate()
                .map(|(i, b)| {
                    let d = b - b'0';
                    if i == 2 {
                        sure(d, third, 7)
                    } else {
                        sure(d, 0.99999, (d + 5) % 10)
                    }
                })
                .collect()
        };
        let status = |number: &str, third: f32| {
            let mut p = page("0012", "640107", [Marked, Empty, Empty], number);
            p.fields[2].cells = cells(number, third);
            validate(&t, side, &p, None).fields["my_number"].status
        };
        assert_eq!(status("954144436230", 0.9897), FieldStatus::LowConfidence);
        // Check digit 8: no single misread passes it, and sure cells do.
        assert_eq!(status("123456789018", 0.99999), FieldStatus::Ok);
        // Check digit 0: most of the eleven other cells have a digit that
        // keeps it valid, and the least odds a cell is given (1e-4) summed
        // over them already exceed the limit, so such a number goes to
        // staff however sure its cells are.
        assert_eq!(status("954144436230", 0.99999), FieldStatus::LowConfidence);
    }

    #[test]
    fn digits_vouch_for_a_date_but_never_for_a_doubtful_era_tick() {
        use MarkState::{Empty, Marked};
        let mut t = page_template();
        t.defaults.vouch_cell_floor = Some(0.5);
        t.defaults.vouch_max_rivals = 0.1;
        let side = t.sides[0].clone();
        let status = |era_confidence: f32| {
            let mut p = page("0012", "630107", [Marked, Empty, Empty], "123456789018");
            let birth = &mut p.fields[1];
            // The month's tens digit at 0.9, its runner-up 6 (month 61).
            let c = &mut birth.cells[2];
            c.confidence = 0.9;
            c.second = Some(6);
            c.second_confidence = 0.1;
            birth.marks[0].confidence = era_confidence;
            validate(&t, &side, &p, None).fields["birth_date"].status
        };
        assert_eq!(status(0.99), FieldStatus::Ok);
        assert_eq!(status(0.6), FieldStatus::LowConfidence);
    }

    #[test]
    fn a_clean_page_passes_and_exposes_its_keys() {
        use MarkState::{Empty, Marked};
        let t = page_template();
        let side = &t.sides[0];
        let v = validate(
            &t,
            side,
            &page("0012", "640107", [Marked, Empty, Empty], "123456789018"),
            None,
        );
        assert!(v.reasons.is_empty(), "{:?}", v.reasons);
        assert_eq!(v.atena_no(), Some("0012"));
        assert_eq!(v.birth_date(), d(1989, 1, 7));
        assert_eq!(
            v.fields["my_number"].value,
            serde_json::json!("123456789018")
        );

        // 昭和64年1月8日 did not exist; a wrong check digit is its own reason.
        let v = validate(
            &t,
            side,
            &page("0012", "640108", [Marked, Empty, Empty], "123456789017"),
            None,
        );
        assert_eq!(v.reasons, ["invalid:birth_date", "check_digit:my_number"]);
        assert_eq!(v.birth_date(), None);
        assert_eq!(v.atena_no(), Some("0012"));

        let v = validate(
            &t,
            side,
            &page("0_12", "040229", [Empty, Marked, Marked], "____________"),
            None,
        );
        assert_eq!(
            v.reasons,
            [
                "invalid:atena_no",
                "multiple_marks:birth_date",
                "missing:my_number"
            ]
        );
        assert_eq!((v.atena_no(), v.birth_date()), (None, None));

        // 平成4年2月29日 (1992, a leap year) with the era box faint.
        let mut p = page("0012", "040229", [Empty, Marked, Empty], "123456789018");
        p.fields[1].marks[1] = mark(MarkState::Uncertain);
        let v = validate(&t, side, &p, None);
        assert_eq!(v.reasons, ["low_confidence:birth_date"]);
        p.fields[1].marks[1] = mark(Marked);
        p.fields[0].cells[3].confidence = 0.5;
        let v = validate(&t, side, &p, None);
        assert_eq!(v.reasons, ["low_confidence:atena_no"]);
        assert_eq!(v.birth_date(), d(1992, 2, 29));
        assert_eq!(v.atena_no(), None);
    }

    #[test]
    fn only_one_leading_box_of_a_short_number_may_be_blank() {
        let mut weeks = field(FieldKind::Digits, 3, 0);
        weeks.range = Some([4, 42]);
        let got = validate_field(
            &weeks,
            &reading(FieldKind::Digits, digits("__9", 0.99), vec![]),
            0.9,
        );
        assert_eq!(got.status, FieldStatus::Invalid);
        let atena = field(FieldKind::Digits, 3, 0);
        let got = validate_field(
            &atena,
            &reading(FieldKind::Digits, digits("_12", 0.99), vec![]),
            0.9,
        );
        assert_eq!(got.status, FieldStatus::Invalid);
    }

    fn marks(states: &[MarkState]) -> Vec<MarkReading> {
        states.iter().map(|&s| mark(s)).collect()
    }

    fn heisei() -> Vec<MarkReading> {
        marks(&[MarkState::Empty, MarkState::Marked, MarkState::Empty])
    }

    #[test]
    fn era_boundaries_read_from_boxes() {
        let f = field(FieldKind::Date, 6, 3);
        let showa = marks(&[MarkState::Marked, MarkState::Empty, MarkState::Empty]);
        let reiwa = marks(&[MarkState::Empty, MarkState::Empty, MarkState::Marked]);
        let cases = [
            (showa.clone(), "640107", Some("1989-01-07")),
            (showa, "640108", None),
            (heisei(), "310430", Some("2019-04-30")),
            (heisei(), "310501", None),
            (reiwa.clone(), "010501", Some("2019-05-01")),
            (reiwa.clone(), "010430", None),
            (reiwa.clone(), "000601", None),
            (reiwa.clone(), "060229", Some("2024-02-29")),
            (reiwa, "070229", None),
            (heisei(), "040229", Some("1992-02-29")),
        ];
        for (m, digits_read, want) in cases {
            let got = validate_field(
                &f,
                &reading(FieldKind::Date, digits(digits_read, 0.999), m),
                0.9,
            );
            match want {
                Some(date) => assert_eq!(
                    (got.value, got.status),
                    (serde_json::json!(date), FieldStatus::Ok),
                    "{digits_read}"
                ),
                None => assert_eq!(got.status, FieldStatus::Invalid, "{digits_read}"),
            }
        }
    }

    #[test]
    fn a_printed_era_needs_no_box() {
        let mut f = field(FieldKind::Date, 6, 0);
        f.era = Some(Era::Reiwa);
        let got = validate_field(
            &f,
            &reading(FieldKind::Date, digits("080315", 0.999), vec![]),
            0.9,
        );
        assert_eq!(got.value, serde_json::json!("2026-03-15"));
        let blank = validate_field(
            &f,
            &reading(FieldKind::Date, digits("______", 0.999), vec![]),
            0.9,
        );
        assert_eq!(blank.status, FieldStatus::Missing);
        let partial = validate_field(
            &f,
            &reading(FieldKind::Date, digits("08_315", 0.999), vec![]),
            0.9,
        );
        assert_eq!(
            (partial.value, partial.status),
            (serde_json::json!("令和08-_3-15"), FieldStatus::Invalid)
        );
    }

    #[test]
    fn a_date_without_a_ticked_era_is_not_guessed() {
        let f = field(FieldKind::Date, 6, 3);
        let none = marks(&[MarkState::Empty; 3]);
        let got = validate_field(
            &f,
            &reading(FieldKind::Date, digits("020401", 0.999), none),
            0.9,
        );
        assert_eq!(got.status, FieldStatus::Invalid);
        let faint = marks(&[MarkState::Empty, MarkState::Uncertain, MarkState::Empty]);
        let got = validate_field(
            &f,
            &reading(FieldKind::Date, digits("020401", 0.999), faint),
            0.9,
        );
        assert_eq!(got.status, FieldStatus::LowConfidence);
        // A ticked era with a doubtful second box is read but not trusted.
        let doubt = marks(&[MarkState::Empty, MarkState::Marked, MarkState::Uncertain]);
        let got = validate_field(
            &f,
            &reading(FieldKind::Date, digits("020401", 0.999), doubt),
            0.9,
        );
        assert_eq!(
            (got.value, got.status),
            (serde_json::json!("1990-04-01"), FieldStatus::LowConfidence)
        );
    }

    #[test]
    fn identifiers_fill_every_box_and_unreadable_cells_are_invalid() {
        let f = field(FieldKind::Digits, 4, 0);
        for read in ["_234", "123_"] {
            let got = validate_field(
                &f,
                &reading(FieldKind::Digits, digits(read, 0.999), vec![]),
                0.9,
            );
            assert_eq!(
                (got.value, got.status),
                (serde_json::json!(read), FieldStatus::Invalid)
            );
        }
        let mut cells = digits("1234", 0.999);
        cells[1] = CellReading::only(None, 0.0);
        let got = validate_field(&f, &reading(FieldKind::Digits, cells, vec![]), 0.9);
        assert_eq!(
            (got.value, got.status),
            (serde_json::json!("1?34"), FieldStatus::Invalid)
        );
        // Nothing but an unreadable cell is not a blank field.
        let mut cells = digits("____", 0.999);
        cells[0] = CellReading::only(None, 0.1);
        let got = validate_field(&f, &reading(FieldKind::Digits, cells, vec![]), 0.9);
        assert_eq!(got.status, FieldStatus::Invalid);
        // A box missing from the reading is not a shorter number.
        let got = validate_field(
            &f,
            &reading(FieldKind::Digits, digits("123", 0.999), vec![]),
            0.9,
        );
        assert_eq!(got.status, FieldStatus::Invalid);
    }

    #[test]
    fn gestation_weeks_may_leave_one_box_blank() {
        let mut f = field(FieldKind::Digits, 2, 0);
        f.range = Some([4, 42]);
        for read in ["_9", "9_"] {
            let got = validate_field(
                &f,
                &reading(FieldKind::Digits, digits(read, 0.999), vec![]),
                0.9,
            );
            assert_eq!(
                (got.value, got.status),
                (serde_json::json!("9"), FieldStatus::Ok),
                "{read}"
            );
        }
        for (read, want) in [
            ("_3", FieldStatus::Invalid),
            ("04", FieldStatus::Ok),
            ("42", FieldStatus::Ok),
        ] {
            let got = validate_field(
                &f,
                &reading(FieldKind::Digits, digits(read, 0.999), vec![]),
                0.9,
            );
            assert_eq!(got.status, want, "{read}");
        }
        // A blank box the reader doubts is not trusted as blank.
        let mut cells = digits("_9", 0.999);
        cells[0].confidence = 0.7;
        let got = validate_field(&f, &reading(FieldKind::Digits, cells, vec![]), 0.9);
        assert_eq!(got.status, FieldStatus::LowConfidence);
    }

    #[test]
    fn my_number_check_digit_is_enforced_on_the_field() {
        let mut f = field(FieldKind::Digits, 12, 0);
        f.check = Some(CheckScheme::MyNumber);
        let ok = validate_field(
            &f,
            &reading(FieldKind::Digits, digits("123456789018", 0.999), vec![]),
            0.9,
        );
        assert_eq!(ok.status, FieldStatus::Ok);
        let bad = validate_field(
            &f,
            &reading(FieldKind::Digits, digits("123456789013", 0.999), vec![]),
            0.9,
        );
        assert_eq!(bad.status, FieldStatus::CheckDigit);
        // r <= 1 gives check digit 0: 00000000006 sums to 12, r = 1.
        assert_eq!(my_number_check_digit(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6]), 0);
    }

    #[test]
    fn multiple_choice_is_a_sorted_list_and_blank_is_missing_when_required() {
        let mut f = field(FieldKind::Multi, 0, 4);
        let got = validate_field(
            &f,
            &reading(
                FieldKind::Multi,
                vec![],
                marks(&[
                    MarkState::Marked,
                    MarkState::Empty,
                    MarkState::Empty,
                    MarkState::Marked,
                ]),
            ),
            0.8,
        );
        assert_eq!(
            (got.value, got.status),
            (serde_json::json!([1, 4]), FieldStatus::Ok)
        );
        let none = reading(FieldKind::Multi, vec![], marks(&[MarkState::Empty; 4]));
        assert_eq!(validate_field(&f, &none, 0.8).status, FieldStatus::Missing);
        f.required = false;
        let got = validate_field(&f, &none, 0.8);
        assert_eq!(
            (got.value, got.status),
            (serde_json::json!([]), FieldStatus::Ok)
        );
    }

    #[test]
    fn a_page_lists_reasons_in_template_order() {
        let mut weeks = field(FieldKind::Digits, 2, 0);
        weeks.id = "gestation_weeks".into();
        weeks.range = Some([4, 42]);
        let mut answer = field(FieldKind::Single, 0, 2);
        answer.id = "q".into();
        let mut optional = field(FieldKind::Single, 0, 2);
        optional.id = "q_optional".into();
        optional.required = false;
        let mut atena = field(FieldKind::Digits, 4, 0);
        atena.id = "atena_no".into();
        atena.min_confidence = None;
        let side = Side {
            id: "s".into(),
            code: 1,
            read: true,
            texts: vec![],
            fields: vec![weeks, answer, optional, atena],
            relations: vec![],
        };
        let template = Template {
            id: "t".into(),
            title: "t".into(),
            version: "1".into(),
            page: crate::template::PageSpec {
                width_mm: 210.0,
                height_mm: 297.0,
            },
            marks: crate::template::MarkSpec {
                size_mm: 6.0,
                centres_mm: [[0.0; 2]; 4],
            },
            id_code: crate::template::IdCodeSpec {
                x_mm: 0.0,
                y_mm: 0.0,
                cell_mm: 3.0,
            },
            defaults: crate::template::Defaults::default(),
            tally_date: None,
            indicators: vec![],
            sides: vec![side.clone()],
            output: crate::template::OutputSpec {
                encoding: crate::template::OutputEncoding::Cp932,
                line_ending: crate::template::LineEnding::Crlf,
                date_format: "%Y%m%d".into(),
                multi_separator: ";".into(),
                columns: vec![],
            },
        };
        let with_id = |mut r: FieldReading, id: &str| {
            r.id = id.into();
            r
        };
        let page = PageReading {
            form: "t".into(),
            side: "s".into(),
            fields: vec![
                with_id(
                    reading(FieldKind::Digits, digits("50", 0.999), vec![]),
                    "gestation_weeks",
                ),
                with_id(
                    reading(
                        FieldKind::Single,
                        vec![],
                        marks(&[MarkState::Empty, MarkState::Empty]),
                    ),
                    "q",
                ),
                with_id(
                    reading(
                        FieldKind::Single,
                        vec![],
                        marks(&[MarkState::Empty, MarkState::Empty]),
                    ),
                    "q_optional",
                ),
                // Defaults: digit threshold 0.9.
                with_id(
                    reading(FieldKind::Digits, digits("1234", 0.85), vec![]),
                    "atena_no",
                ),
            ],
        };
        let v = validate(&template, &side, &page, None);
        assert_eq!(
            v.reasons,
            [
                "invalid:gestation_weeks",
                "missing:q",
                "low_confidence:atena_no"
            ]
        );
        assert_eq!(v.fields["q_optional"].status, FieldStatus::Ok);
        assert_eq!(v.fields["q_optional"].value, serde_json::Value::Null);
        assert_eq!(v.atena_no(), None, "a doubtful atena_no is not a key");
        assert_eq!(v.fields["atena_no"].value, serde_json::json!("1234"));
        let json = serde_json::to_value(&v.fields["gestation_weeks"]).unwrap();
        assert_eq!(json["status"], "invalid");
    }

    /// 届出日, 妊娠週数 and 出産予定日 tied as on the pregnancy form:
    /// due − notified + 7 × weeks within 280 ± 7 days.
    fn pregnancy_side() -> Template {
        let boxes = |y: f64, n: &str| {
            format!(
                "boxes = {{ x_mm = 50.0, y_mm = {y}, w_mm = 5.5, h_mm = 7.5, gap_mm = 1.5, groups = [{n}] }}"
            )
        };
        let text = TEST_TEMPLATE_HEAD.to_owned()
            + &format!(
                r#"
[defaults]
digit_confidence = 0.98
checkbox_confidence = 0.8
checkbox_empty_ink = 0.04
checkbox_marked_ink = 0.10
vouch_cell_floor = 0.8
vouch_max_rivals = 0.001
rules_max_rivals = 0.005
[[sides]]
id = "t"
code = 9
read = true
[[sides.fields]]
id = "notified_on"
label = "届出日"
kind = "date"
label_at_mm = [10.0, 10.0]
era = "reiwa"
min_confidence = 0.998
{}
[[sides.fields]]
id = "gestation_weeks"
label = "妊娠週数"
kind = "digits"
label_at_mm = [10.0, 20.0]
range = [4, 42]
min_confidence = 0.998
{}
[[sides.fields]]
id = "due_date"
label = "出産予定日"
kind = "date"
label_at_mm = [10.0, 30.0]
era = "reiwa"
min_confidence = 0.998
{}
[[sides.relations]]
earlier = "notified_on"
later = "due_date"
plus_weeks_of = "gestation_weeks"
days = [273, 287]
[output]
columns = [{{ header = "届出日", value = "notified_on" }}]
"#,
                boxes(10.0, "2, 2, 2"),
                boxes(20.0, "2"),
                boxes(30.0, "2, 2, 2")
            );
        let t: Template = toml::from_str(&text).unwrap();
        t.check().unwrap();
        t
    }

    /// Sure cells, except `doubt`: (field, cell, probability of the digit
    /// read, the digit it might be instead).
    fn pregnancy_page(values: [&str; 3], doubt: Option<(&str, usize, f32, u8)>) -> PageReading {
        let ids = ["notified_on", "gestation_weeks", "due_date"];
        let fields = ids
            .iter()
            .zip(values)
            .map(|(id, v)| {
                let cells = v
                    .bytes()
                    .enumerate()
                    .map(|(i, b)| {
                        let read = b - b'0';
                        let (p, alt) = match doubt {
                            Some((f, cell, p, alt)) if f == *id && cell == i => (p, alt),
                            _ => (0.9999, (read + 1) % 10),
                        };
                        let mut all = [0.0f32; 10];
                        all[usize::from(read)] = p;
                        all[usize::from(alt)] = 1.0 - p;
                        CellReading {
                            digit: Some(read),
                            confidence: p,
                            second: Some(alt),
                            second_confidence: 1.0 - p,
                            digit_probabilities: Some(all),
                        }
                    })
                    .collect();
                FieldReading {
                    id: (*id).into(),
                    kind: if *id == "gestation_weeks" {
                        FieldKind::Digits
                    } else {
                        FieldKind::Date
                    },
                    cells,
                    marks: vec![],
                    image: image::GrayImage::new(1, 1),
                }
            })
            .collect();
        PageReading {
            form: "t".into(),
            side: "t".into(),
            fields,
        }
    }

    #[test]
    fn related_dates_vouch_only_for_misreads_they_would_catch() {
        let t = pregnancy_side();
        let side = &t.sides[0];
        // 令和8年6月7日, 11 weeks, due 令和8年12月25日: 201 + 77 = 278 days.
        let values = ["080607", "11", "081225"];
        let status = |doubt| {
            let v = validate(&t, side, &pregnancy_page(values, doubt), None);
            ["notified_on", "gestation_weeks", "due_date"].map(|id| v.fields[id].status)
        };
        use FieldStatus::{Inconsistent, LowConfidence, Ok};
        assert_eq!(status(None), [Ok, Ok, Ok]);
        // A month's tens digit is 0 or 1; 6 would make month 66.
        assert_eq!(status(Some(("notified_on", 2, 0.9, 6))), [Ok, Ok, Ok]);
        // 11 → 41 weeks is in range but would put the due date 30 weeks
        // too early.
        assert_eq!(status(Some(("gestation_weeks", 0, 0.9, 4))), [Ok, Ok, Ok]);
        // The day's units digit: 7 → 1 moves the notification six days,
        // which the week's slack absorbs, so the rules cannot tell.
        assert_eq!(
            status(Some(("notified_on", 5, 0.9, 1))),
            [LowConfidence, Ok, Ok]
        );
        // Rival odds under and over the limit decide: 0.002 and 0.01 from
        // the doubtful cell, on top of what the sure cells leave.
        assert_eq!(status(Some(("notified_on", 5, 0.998, 1))), [Ok, Ok, Ok]);
        assert_eq!(
            status(Some(("notified_on", 5, 0.99, 1))),
            [LowConfidence, Ok, Ok]
        );
        // Below the cell floor nothing is vouched for.
        assert_eq!(
            status(Some(("notified_on", 2, 0.7, 6))),
            [LowConfidence, Ok, Ok]
        );
        // Sure readings that break the relation all go to staff.
        let v = validate(
            &t,
            side,
            &pregnancy_page(["080607", "21", "081225"], None),
            None,
        );
        assert_eq!(
            ["notified_on", "gestation_weeks", "due_date"].map(|id| v.fields[id].status),
            [Inconsistent, Inconsistent, Inconsistent]
        );
        assert_eq!(
            v.reasons,
            [
                "inconsistent:notified_on",
                "inconsistent:gestation_weeks",
                "inconsistent:due_date"
            ]
        );
    }

    #[test]
    fn no_date_is_later_than_the_day_its_scan_was_taken_in() {
        let mut t = pregnancy_side();
        t.sides[0].fields[0].not_after_receipt = true;
        t.check().unwrap();
        let side = &t.sides[0];
        // 令和8年11月20日, 11 weeks, due 令和9年6月11日: 203 + 77 = 280 days.
        let values = ["081120", "11", "090611"];
        let on = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        let status = |doubt, received| {
            let v = validate(&t, side, &pregnancy_page(values, doubt), received);
            (
                ["notified_on", "gestation_weeks", "due_date"].map(|id| v.fields[id].status),
                v.reasons,
            )
        };
        use FieldStatus::{AfterReceipt, LowConfidence, Ok};
        assert_eq!(status(None, on(2026, 11, 20)).0, [Ok, Ok, Ok]);
        // Read sure, yet a day after the scan came in: to staff, and the
        // relation is not blamed on the other two.
        assert_eq!(
            status(None, on(2026, 11, 19)),
            (
                [AfterReceipt, Ok, Ok],
                vec!["after_receipt:notified_on".to_string()]
            )
        );
        // 20 → 27 is a week's move the relation absorbs: only a bound
        // before the 27th rules that rival out (odds 0.01, limit 0.005).
        let doubt = Some(("notified_on", 5, 0.99, 7));
        assert_eq!(status(doubt, None).0, [LowConfidence, Ok, Ok]);
        assert_eq!(status(doubt, on(2026, 11, 27)).0, [LowConfidence, Ok, Ok]);
        assert_eq!(status(doubt, on(2026, 11, 26)).0, [Ok, Ok, Ok]);
        // Only a date can carry the bound.
        let mut t = t.clone();
        t.sides[0].fields[1].not_after_receipt = true;
        assert!(t.check().is_err(), "only dates take the bound");
    }

    #[test]
    fn a_relation_must_name_fields_of_the_right_kind() {
        let mut t = pregnancy_side();
        t.sides[0].relations[0].plus_weeks_of = Some("due_date".into());
        assert!(t.check().is_err());
        let mut t = pregnancy_side();
        t.sides[0].relations[0].earlier = "nowhere".into();
        assert!(t.check().is_err());
        let mut t = pregnancy_side();
        t.sides[0].relations[0].days = [287, 273];
        assert!(t.check().is_err());
    }

    #[test]
    fn status_codes_are_the_serialised_names() {
        for s in [
            FieldStatus::Ok,
            FieldStatus::LowConfidence,
            FieldStatus::Invalid,
            FieldStatus::CheckDigit,
            FieldStatus::MultipleMarks,
            FieldStatus::Missing,
            FieldStatus::Inconsistent,
            FieldStatus::AfterReceipt,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.code());
        }
    }
}
