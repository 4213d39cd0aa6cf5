//! Review: staff decide the mismatches. A decision is new input, never an
//! edit of a published batch: a corrected record goes through the same gate
//! as a scan (every field passes its rule, and atena_no with birthdate name
//! exactly one register row) and enters the next batch marked as corrected.
//!
//! This module is the pure part (what a correction makes of a record);
//! `serve.rs` is the web page, `ledger.rs` keeps decisions and the audit log.

use crate::emit::{mask, PageRecord, PageStatus};
use crate::ledger::{Decision, FieldChange};
use crate::matching::{self, Register};
use crate::template::{Field, FieldKind, Template};
use crate::validate::{self, FieldResult, FieldStatus};
use std::collections::BTreeMap;

/// What a reviewer typed or confirmed, by field id.
pub type Edits = BTreeMap<String, String>;

/// The fields staff must look at on this page: every field that did not
/// pass, and the two keys of the match.
pub fn doubtful_fields(record: &PageRecord) -> Vec<String> {
    let mut ids: Vec<String> = vec!["atena_no".into(), "birth_date".into()];
    for (id, f) in &record.fields {
        if f.status != FieldStatus::Ok && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// How a field's value is shown in an input box (and in the audit log).
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// Reads a typed value by the field's kind and checks its rules.
/// Errors are reason codes, as in mismatches.csv.
pub fn parse_typed(field: &Field, text: &str) -> Result<serde_json::Value, String> {
    let text = text.trim();
    let invalid = || format!("invalid:{}", field.id);
    match field.kind {
        FieldKind::Digits => {
            if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid());
            }
            if let Some(b) = &field.boxes {
                if text.len() > b.count() {
                    return Err(invalid());
                }
            }
            if let Some(scheme) = field.check {
                if !validate::check_digit_ok(scheme, text) {
                    return Err(format!("check_digit:{}", field.id));
                }
            }
            if let Some([lo, hi]) = field.range {
                let n: u32 = text.parse().map_err(|_| invalid())?;
                if n < lo || n > hi {
                    return Err(invalid());
                }
            }
            Ok(serde_json::json!(text))
        }
        FieldKind::Date => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|d| serde_json::json!(d.format("%Y-%m-%d").to_string()))
            .map_err(|_| invalid()),
        FieldKind::Single => {
            if text.is_empty() {
                return if field.required {
                    Err(format!("missing:{}", field.id))
                } else {
                    Ok(serde_json::Value::Null)
                };
            }
            match text.parse::<usize>() {
                Ok(i) if (1..=field.options.len()).contains(&i) => Ok(serde_json::json!(i)),
                _ => Err(invalid()),
            }
        }
        FieldKind::Multi => {
            let mut picked = Vec::new();
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part.parse::<usize>() {
                    Ok(i) if (1..=field.options.len()).contains(&i) => picked.push(i),
                    _ => return Err(invalid()),
                }
            }
            picked.sort_unstable();
            picked.dedup();
            if picked.is_empty() && field.required {
                return Err(format!("missing:{}", field.id));
            }
            Ok(serde_json::json!(picked))
        }
    }
}

/// A date the paper cannot hold yet, typed from a paper that says so, is
/// still wrong: the person is asked, the record is not taken.
fn not_after(
    field: &Field,
    value: serde_json::Value,
    today: chrono::NaiveDate,
) -> Result<serde_json::Value, String> {
    let later = value
        .as_str()
        .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .is_some_and(|d| d > today);
    if field.not_after_receipt && later {
        return Err(format!("after_receipt:{}", field.id));
    }
    Ok(value)
}

/// Applies a reviewer's edits to a mismatch and runs the gate. `today` is
/// the day of the review: a date that may not be later than the scan's
/// intake cannot be later than today either, whoever typed it.
pub fn correct(
    record: &PageRecord,
    template: &Template,
    edits: &Edits,
    register: &Register,
    reviewer: &str,
    today: chrono::NaiveDate,
) -> Decision {
    let side = template
        .sides
        .iter()
        .find(|s| Some(&s.id) == record.side.as_ref());
    let Some(side) = side else {
        return Decision::StillOpen {
            changes: Vec::new(),
            reasons: vec!["unknown_form".into()],
        };
    };
    let sensitive = |f: &Field, v: String| if f.sensitive { mask(&v) } else { v };
    let mut fields = record.fields.clone();
    let mut changes = Vec::new();
    let mut reasons = Vec::new();
    for (id, text) in edits {
        let Some(field) = side.fields.iter().find(|f| &f.id == id) else {
            reasons.push(format!("invalid:{id}"));
            continue;
        };
        match parse_typed(field, text).and_then(|v| not_after(field, v, today)) {
            Ok(value) => {
                let before = fields
                    .get(id)
                    .map(|f| value_text(&f.value))
                    .unwrap_or_default();
                let after = value_text(&value);
                if before != after {
                    changes.push(FieldChange {
                        field: id.clone(),
                        before: sensitive(field, before),
                        after: sensitive(field, after),
                    });
                }
                // Confirmed by a person looking at the image.
                fields.insert(
                    id.clone(),
                    FieldResult {
                        value,
                        confidence: 1.0,
                        status: FieldStatus::Ok,
                    },
                );
            }
            Err(reason) => reasons.push(reason),
        }
    }
    for field in &side.fields {
        match fields.get(&field.id) {
            Some(f) if !edits.contains_key(&field.id) => {
                reasons.extend(f.status.reason(&field.id));
            }
            None if field.required => reasons.push(format!("missing:{}", field.id)),
            _ => {}
        }
    }
    let text = |id: &str| {
        fields
            .get(id)
            .and_then(|f| f.value.as_str().map(String::from))
    };
    let atena = text("atena_no");
    let birth =
        text("birth_date").and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let matched = matching::match_person(register, atena.as_deref(), birth, &[]);
    if reasons.is_empty() {
        if let Some(r) = matched.reason() {
            reasons.push(r.to_string());
        } else if !matched.is_match() {
            reasons.push("register_not_found".into());
        }
    }
    if !reasons.is_empty() {
        return Decision::StillOpen { changes, reasons };
    }
    let mut out = record.clone();
    out.fields = fields;
    out.status = PageStatus::Validated;
    out.reasons.clear();
    out.candidates.clear();
    out.images.clear();
    out.detail = None;
    out.corrected = true;
    out.reviewer = Some(reviewer.to_string());
    Decision::Corrected {
        record: Box::new(out),
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::RegisterMapping;

    fn template() -> Template {
        crate::template::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("forms"))
            .unwrap()
            .into_iter()
            .find(|t| t.id == "infant-checkup")
            .unwrap()
    }

    fn register(dir: &std::path::Path) -> Register {
        let p = dir.join("r.csv");
        std::fs::write(
            &p,
            "atena_no,birth_date,name\n0000123457,2025-08-25,佐藤 花子\n0000123451,2025-08-25,鈴木 一郎\n",
        )
        .unwrap();
        Register::load(&p, &RegisterMapping::default()).unwrap()
    }

    /// A back side read with one atena digit in doubt.
    fn mismatch(t: &Template) -> PageRecord {
        let side = t.sides.iter().find(|s| s.read).unwrap();
        let mut r = PageRecord::new("honcho/a.png", 1, "honcho", "ab");
        r.form = Some(t.id.clone());
        r.side = Some(side.id.clone());
        r.status = PageStatus::Mismatch;
        for f in &side.fields {
            let value = match f.kind {
                FieldKind::Digits => serde_json::json!("0000123487"),
                FieldKind::Date if f.id == "birth_date" => serde_json::json!("2025-08-25"),
                FieldKind::Date => serde_json::json!("2026-04-11"),
                FieldKind::Single => serde_json::json!(1),
                FieldKind::Multi => serde_json::json!([6]),
            };
            let status = if f.id == "atena_no" {
                FieldStatus::LowConfidence
            } else {
                FieldStatus::Ok
            };
            r.fields.insert(
                f.id.clone(),
                FieldResult {
                    value,
                    confidence: 0.9,
                    status,
                },
            );
        }
        r.reasons = vec!["low_confidence:atena_no".into()];
        r
    }

    /// The review day of the tests; the records' dates are before it.
    fn day() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
    }

    fn edits(pairs: &[(&str, &str)]) -> Edits {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_correction_matching_one_person_is_a_validated_corrected_record() {
        let dir = tempfile::tempdir().unwrap();
        let (t, reg) = (template(), register(dir.path()));
        let r = mismatch(&t);
        let e = edits(&[("atena_no", "0000123457"), ("birth_date", "2025-08-25")]);
        match correct(&r, &t, &e, &reg, "山田", day()) {
            Decision::Corrected { record, changes } => {
                assert_eq!(record.status, PageStatus::Validated);
                assert!(record.corrected);
                assert_eq!(record.reviewer.as_deref(), Some("山田"));
                assert_eq!(record.fields["atena_no"].value, "0000123457");
                assert_eq!(
                    changes,
                    vec![FieldChange {
                        field: "atena_no".into(),
                        before: "0000123487".into(),
                        after: "0000123457".into()
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_correction_that_matches_nobody_or_breaks_a_rule_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        let (t, reg) = (template(), register(dir.path()));
        let r = mismatch(&t);
        let open = |e: Edits| match correct(&r, &t, &e, &reg, "山田", day()) {
            Decision::StillOpen { reasons, .. } => reasons,
            other => panic!("{other:?}"),
        };
        // Right atena, wrong birthdate: the register says no.
        assert_eq!(
            open(edits(&[
                ("atena_no", "0000123457"),
                ("birth_date", "2025-08-26")
            ])),
            vec!["birthdate_mismatch"]
        );
        assert_eq!(
            open(edits(&[
                ("atena_no", "0000999999"),
                ("birth_date", "2025-08-25")
            ])),
            vec!["register_not_found"]
        );
        // Not confirmed: the doubtful field keeps its reason.
        assert_eq!(
            open(edits(&[("birth_date", "2025-08-25")])),
            vec!["low_confidence:atena_no"]
        );
        assert_eq!(
            open(edits(&[("atena_no", "12a"), ("birth_date", "2025-02-30")])),
            vec!["invalid:atena_no", "invalid:birth_date"]
        );
        // A check-up typed as tomorrow is refused; today is possible.
        assert_eq!(
            open(edits(&[
                ("atena_no", "0000123457"),
                ("checkup_date", "2026-12-08")
            ])),
            vec!["after_receipt:checkup_date"]
        );
        assert!(matches!(
            correct(
                &r,
                &t,
                &edits(&[("atena_no", "0000123457"), ("checkup_date", "2026-12-07")]),
                &reg,
                "山田",
                day()
            ),
            Decision::Corrected { .. }
        ));
    }

    #[test]
    fn typed_values_follow_the_field_rules() {
        let t = crate::template::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("forms"),
        )
        .unwrap();
        let field = |id: &str| {
            t.iter()
                .flat_map(|t| t.sides.iter().flat_map(|s| s.fields.iter()))
                .find(|f| f.id == id)
                .unwrap()
                .clone()
        };
        assert_eq!(
            parse_typed(&field("my_number"), "123456789018").unwrap(),
            "123456789018"
        );
        assert_eq!(
            parse_typed(&field("my_number"), "123456789012").unwrap_err(),
            "check_digit:my_number"
        );
        assert_eq!(
            parse_typed(&field("gestation_weeks"), "43").unwrap_err(),
            "invalid:gestation_weeks"
        );
        assert_eq!(
            parse_typed(&field("q_worries"), "3, 1").unwrap(),
            serde_json::json!([1, 3])
        );
        assert_eq!(
            parse_typed(&field("q_worries"), "").unwrap(),
            serde_json::json!([])
        );
        assert_eq!(
            parse_typed(&field("q_household_events"), "").unwrap_err(),
            "missing:q_household_events"
        );
        assert_eq!(
            parse_typed(&field("q_smoking"), "4").unwrap_err(),
            "invalid:q_smoking"
        );
    }
}
