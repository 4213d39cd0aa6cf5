//! Validate stage: raw readings in, typed values with a status each out.
//!
//! Nothing here guesses. A field passes only when every cell or box behind
//! it is confidently read and every rule of its kind holds; otherwise it
//! carries a reason code that sends the page to staff.

use crate::read::{FieldReading, MarkState, PageReading};
use crate::template::{era_from_code, CheckScheme, Era, Field, FieldKind, Side, Template};
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldResult {
    /// records.jsonl form: digits as a string, dates `YYYY-MM-DD`, a single
    /// choice its 1-based index or null, a multiple choice a list.
    pub value: serde_json::Value,
    pub confidence: f32,
    pub status: FieldStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldStatus {
    Ok,
    LowConfidence,
    Invalid,
    CheckDigit,
    MultipleMarks,
    Missing,
}

impl FieldStatus {
    fn reason(self, field: &str) -> Option<String> {
        let code = match self {
            FieldStatus::Ok => return None,
            FieldStatus::LowConfidence => "low_confidence",
            FieldStatus::Invalid => "invalid",
            FieldStatus::CheckDigit => "check_digit",
            FieldStatus::MultipleMarks => "multiple_marks",
            FieldStatus::Missing => "missing",
        };
        Some(format!("{code}:{field}"))
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

    fn ok_value(&self, id: &str) -> Option<&serde_json::Value> {
        self.fields
            .get(id)
            .filter(|f| f.status == FieldStatus::Ok)
            .map(|f| &f.value)
    }
}

pub fn validate(template: &Template, side: &Side, reading: &PageReading) -> ValidatedPage {
    let mut fields = BTreeMap::new();
    let mut reasons = Vec::new();
    for field in &side.fields {
        let result = match reading.fields.iter().find(|r| r.id == field.id) {
            Some(r) => validate_field(field, r, field.threshold(&template.defaults)),
            None => FieldResult {
                value: serde_json::Value::Null,
                confidence: 0.0,
                status: FieldStatus::Missing,
            },
        };
        let optional_blank = !field.required && result.status == FieldStatus::Missing;
        if !optional_blank {
            reasons.extend(result.status.reason(&field.id));
        }
        fields.insert(field.id.clone(), result);
    }
    ValidatedPage { fields, reasons }
}

/// One field. The confidence is the minimum over its cells and boxes: a
/// value is only as trustworthy as its least certain part, and one doubtful
/// digit is enough to put the wrong person's record in the core system.
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

fn digit_string(r: &FieldReading) -> Vec<Option<u8>> {
    r.cells.iter().map(|c| c.digit).collect()
}

fn digits_value(field: &Field, r: &FieldReading) -> (serde_json::Value, FieldStatus) {
    let cells = digit_string(r);
    if cells.iter().all(|d| d.is_none()) {
        return (serde_json::Value::Null, FieldStatus::Missing);
    }
    // Short numbers (gestation weeks) may leave leading boxes empty; a gap
    // inside the number or at its end is not a number.
    let first = cells.iter().position(|d| d.is_some()).unwrap_or(0);
    let leading_blanks_ok = field.range.is_some();
    let shown: String = cells
        .iter()
        .map(|d| d.map(|d| char::from(b'0' + d)).unwrap_or('_'))
        .collect();
    if (first > 0 && !leading_blanks_ok) || cells[first..].iter().any(|d| d.is_none()) {
        return (serde_json::Value::String(shown), FieldStatus::Invalid);
    }
    let digits: String = cells[first..]
        .iter()
        .map(|d| char::from(b'0' + d.unwrap_or(0)))
        .collect();
    let value = serde_json::Value::String(digits.clone());
    if let Some([lo, hi]) = field.range {
        let n: u32 = digits.parse().unwrap_or(u32::MAX);
        if n < lo || n > hi {
            return (value, FieldStatus::Invalid);
        }
    }
    if let Some(scheme) = field.check {
        if !check_digit_ok(scheme, &digits) {
            return (value, FieldStatus::CheckDigit);
        }
    }
    (value, FieldStatus::Ok)
}

fn date_value(field: &Field, r: &FieldReading) -> (serde_json::Value, FieldStatus) {
    let era = match field.era {
        Some(e) => Some(e),
        None => {
            let marked: Vec<usize> = marked_indices(r);
            if marked.len() > 1 {
                return (serde_json::Value::Null, FieldStatus::MultipleMarks);
            }
            marked
                .first()
                .and_then(|&i| field.options.get(i))
                .and_then(|o| era_from_code(&o.code))
        }
    };
    let cells = digit_string(r);
    if cells.iter().all(|d| d.is_none()) {
        return (serde_json::Value::Null, FieldStatus::Missing);
    }
    let Some(era) = era else {
        return (serde_json::Value::Null, FieldStatus::Missing);
    };
    if cells.len() != 6 || cells.iter().any(|d| d.is_none()) {
        return (serde_json::Value::Null, FieldStatus::Invalid);
    }
    let n = |i: usize| cells[i].unwrap_or(0) as u32 * 10 + cells[i + 1].unwrap_or(0) as u32;
    match era_date(era, n(0), n(2), n(4)) {
        Some(d) => (
            serde_json::Value::String(d.format("%Y-%m-%d").to_string()),
            FieldStatus::Ok,
        ),
        None => (
            serde_json::Value::String(format!(
                "{}{:02}-{:02}-{:02}",
                era.label(),
                n(0),
                n(2),
                n(4)
            )),
            FieldStatus::Invalid,
        ),
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
        many => (
            serde_json::json!(many.iter().map(|i| i + 1).collect::<Vec<_>>()),
            FieldStatus::MultipleMarks,
        ),
    }
}

fn multi_value(r: &FieldReading) -> (serde_json::Value, FieldStatus) {
    let marked: Vec<usize> = marked_indices(r).into_iter().map(|i| i + 1).collect();
    // "None of these" is a real answer, so an empty multiple choice is fine;
    // the confidence (from uncertain boxes) still decides.
    (serde_json::json!(marked), FieldStatus::Ok)
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
    if d.len() != digits.len() || d.len() < 2 {
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
    use crate::template::{BoxRow, Choice, DigitSource};

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

    fn cell(d: Option<u8>, c: f32) -> CellReading {
        CellReading {
            digit: d,
            confidence: c,
            second: None,
            second_confidence: 0.0,
        }
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
            .map(|ch| cell(ch.to_digit(10).map(|d| d as u8), c))
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
}
