//! What staff read, in their language: one Fluent catalogue per language
//! (`i18n/ja.ftl`, `i18n/en.ftl`), compiled into the binary.
//!
//! Fluent (`fluent-bundle`) rather than `rust-i18n`: a bundle is a value,
//! not a global locale, so the review page, a batch and a test can each use
//! their own language in one process; a missing message is an error we can
//! see rather than the key printed silently; and its messages take named
//! arguments and CLDR plural selection without code. Codes (reason codes,
//! statuses) stay the machine interface; this module only turns them into
//! sentences for people.

use crate::template::Template;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The language of every staff-facing surface (`[ui] lang`, `--lang`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ja,
    En,
}

/// Printed labels of a set of templates: (form id, field id) → label, form
/// id → title. The same id can be printed differently on two forms
/// (宛名番号 on the notification, 宛名番号（お子さん） on the check-up).
#[derive(Debug, Clone, Default)]
pub struct Labels {
    fields: BTreeMap<(String, String), String>,
    forms: BTreeMap<String, String>,
}

pub const JA_FTL: &str = include_str!("../i18n/ja.ftl");
pub const EN_FTL: &str = include_str!("../i18n/en.ftl");

/// Reason kinds that name a field after a colon (`low_confidence:atena_no`).
pub const FIELD_REASONS: [&str; 7] = [
    "low_confidence",
    "invalid",
    "check_digit",
    "multiple_marks",
    "missing",
    "inconsistent",
    "after_receipt",
];

/// Reason codes of a whole page or file. Quarantine reasons come as
/// `code: detail`, the detail being technical text for IT.
pub const PAGE_REASONS: [&str; 17] = [
    "register_not_found",
    "birthdate_mismatch",
    "duplicate_page",
    "read_error",
    "blank_page",
    "marks_not_found",
    "invalid_scale",
    "unknown_form",
    "unreadable_file",
    "empty",
    "unknown_format",
    "too_large",
    "corrupt",
    "too_many_pages",
    "no_pages",
    "pdf_unavailable",
    "duplicate_file",
];

/// Why a register row is offered (`Candidate::why`, `Vouch::Doubtful`),
/// before the numbers after their colons.
pub const WHY_CODES: [&str; 12] = [
    "as_read",
    "as_read_but_outside_eras",
    "as_read_but_cells_misfit",
    "as_read_but_weak_cell",
    "as_read_but_rival",
    "atena_match_birth_differs",
    "atena_match_era_off",
    "cell_second_choice",
    "cell_would_be",
    "cells_swapped",
    "birth_same_atena_same",
    "birth_same_atena_off",
];

/// Page statuses as records.jsonl writes them, plus `quarantined`.
pub const PAGE_STATUSES: [&str; 5] = [
    "validated",
    "mismatch",
    "skipped",
    "unreadable",
    "quarantined",
];

/// Field statuses (`FieldStatus::code`).
pub const FIELD_STATUSES: [&str; 8] = [
    "ok",
    "low_confidence",
    "invalid",
    "check_digit",
    "multiple_marks",
    "missing",
    "inconsistent",
    "after_receipt",
];

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ja" => Ok(Lang::Ja),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown language {other:?} (ja or en)")),
        }
    }
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Ja => JA_FTL,
            Lang::En => EN_FTL,
        }
    }
}

fn bundle(lang: Lang) -> &'static FluentBundle<FluentResource> {
    static JA: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    static EN: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    let cell = match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    };
    cell.get_or_init(|| {
        // The catalogues are part of the program: a syntax error in one is
        // a build defect, caught by the tests below before it ships.
        let resource = FluentResource::try_new(lang.source().to_string())
            .unwrap_or_else(|(_, e)| panic!("i18n/{}.ftl does not parse: {e:?}", lang.code()));
        let id: unic_langid::LanguageIdentifier = lang.code().parse().expect("language id");
        let mut b = FluentBundle::new_concurrent(vec![id]);
        // Isolation marks would end up inside HTML, CSV and terminals.
        b.set_use_isolating(false);
        b.add_resource(resource)
            .unwrap_or_else(|e| panic!("i18n/{}.ftl: {e:?}", lang.code()));
        b
    })
}

/// Whether the catalogue has `id` (`message` or `message.attribute`).
pub fn has(lang: Lang, id: &str) -> bool {
    let (msg, attr) = id.split_once('.').map_or((id, None), |(m, a)| (m, Some(a)));
    bundle(lang).get_message(msg).is_some_and(|m| match attr {
        Some(a) => m.get_attribute(a).is_some(),
        None => m.value().is_some(),
    })
}

/// The message `id` with named arguments. A missing id returns the id
/// itself (the parity tests make that a failing build, not a blank).
pub fn ta(lang: Lang, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    let b = bundle(lang);
    let (msg, attr) = id.split_once('.').map_or((id, None), |(m, a)| (m, Some(a)));
    let pattern = b.get_message(msg).and_then(|m| match attr {
        Some(a) => m.get_attribute(a).map(|a| a.value()),
        None => m.value(),
    });
    let Some(pattern) = pattern else {
        return id.to_string();
    };
    let mut fargs = FluentArgs::new();
    for (k, v) in args {
        fargs.set(*k, v.clone());
    }
    let mut errors = Vec::new();
    b.format_pattern(pattern, Some(&fargs), &mut errors)
        .into_owned()
}

/// The message `id` without arguments.
pub fn t(lang: Lang, id: &str) -> String {
    ta(lang, id, &[])
}

impl Labels {
    pub fn from_templates(templates: &[Template]) -> Labels {
        let mut l = Labels::default();
        for t in templates {
            l.forms.insert(t.id.clone(), t.title.clone());
            for f in t.sides.iter().flat_map(|s| &s.fields) {
                l.fields
                    .entry((t.id.clone(), f.id.clone()))
                    .or_insert(f.label.clone());
            }
        }
        l
    }

    /// The field's printed label on `form`; without a form, its label on
    /// any form; its id for a field no template knows.
    pub fn field(&self, form: Option<&str>, id: &str) -> String {
        let exact = form.and_then(|f| self.fields.get(&(f.to_string(), id.to_string())));
        exact
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|((_, i), _)| i == id)
                    .map(|(_, l)| l)
            })
            .cloned()
            .unwrap_or_else(|| id.into())
    }

    /// The form's printed title; an unknown form says so in words.
    pub fn form(&self, lang: Lang, id: Option<&str>) -> String {
        match id {
            Some(id) => self.forms.get(id).cloned().unwrap_or_else(|| id.into()),
            None => t(lang, "form-unknown"),
        }
    }
}

/// Splits a reason code into kind and field (`low_confidence:atena_no`) or
/// kind and technical detail (`corrupt: PNG file is truncated`).
fn split_reason(code: &str) -> (&str, Option<&str>, Option<&str>) {
    match code.split_once(':') {
        Some((k, rest)) if rest.starts_with(' ') => (k, None, Some(rest.trim())),
        Some((k, field)) => (k, Some(field), None),
        None => (code, None, None),
    }
}

/// The sentence staff read for a reason code: what was seen and what to do,
/// naming the field by its printed label.
pub fn reason_text(lang: Lang, code: &str, labels: &Labels, form: Option<&str>) -> String {
    let (kind, field, _) = split_reason(code);
    let id = format!("reason-{kind}");
    if !has(lang, &id) {
        return ta(lang, "reason-other", &[("code", kind.into())]);
    }
    let label = field.map(|f| labels.field(form, f)).unwrap_or_default();
    ta(lang, &id, &[("field", label.into())])
}

/// The reason in a few words, for lists and filters.
pub fn reason_short(lang: Lang, code: &str, labels: &Labels, form: Option<&str>) -> String {
    let (kind, field, _) = split_reason(code);
    let id = format!("reason-{kind}.short");
    if !has(lang, &id) {
        return ta(lang, "reason-other", &[("code", kind.into())]);
    }
    let label = field.map(|f| labels.field(form, f)).unwrap_or_default();
    ta(lang, &id, &[("field", label.into())])
}

/// The kind of a reason (`low_confidence`), as a filter shows it.
pub fn reason_kind(lang: Lang, kind: &str) -> String {
    let id = format!("reason-{kind}.kind");
    if has(lang, &id) {
        t(lang, &id)
    } else {
        kind.to_string()
    }
}

/// The technical detail after a quarantine reason's code, if any.
pub fn reason_detail(code: &str) -> Option<&str> {
    split_reason(code).2
}

pub fn page_status(lang: Lang, code: &str) -> String {
    t(lang, &format!("status-{code}"))
}

pub fn field_status(lang: Lang, code: &str) -> String {
    t(lang, &format!("field-status-{code}"))
}

/// Why the register offers a candidate. `matching` writes a code with its
/// numbers (`cell_would_be:3:4:5`); anything else is shown as it is.
pub fn why_text(lang: Lang, why: &str) -> String {
    let mut parts = why.split(':');
    let kind = parts.next().unwrap_or_default();
    let nums: Vec<&str> = parts.collect();
    let id = format!("why-{kind}");
    if !has(lang, &id) {
        return why.to_string();
    }
    let names = ["a", "b", "c"];
    let args: Vec<(&str, FluentValue<'_>)> = names
        .iter()
        .zip(&nums)
        .map(|(k, v)| {
            let value = match v.parse::<i64>() {
                Ok(n) => FluentValue::from(n),
                Err(_) => FluentValue::from(*v),
            };
            (*k, value)
        })
        .collect();
    ta(lang, &id, &args)
}

/// A date as staff write it (令和8年3月26日), from its ISO form; `None`
/// for anything that is not a date of the Shōwa, Heisei or Reiwa eras.
pub fn wareki(iso: &str) -> Option<String> {
    use chrono::Datelike;
    let d = chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d").ok()?;
    let ymd = |y, m, dd| chrono::NaiveDate::from_ymd_opt(y, m, dd);
    let (era, first) = if d >= ymd(2019, 5, 1)? {
        ("令和", 2019)
    } else if d >= ymd(1989, 1, 8)? {
        ("平成", 1989)
    } else if d >= ymd(1926, 12, 25)? {
        ("昭和", 1926)
    } else {
        return None;
    };
    let n = d.year() - first + 1;
    let year = if n == 1 {
        "元".to_string()
    } else {
        n.to_string()
    };
    Some(format!("{era}{year}年{}月{}日", d.month(), d.day()))
}

/// A date with its Japanese-era form beside it in Japanese
/// (`2026-03-26（令和8年3月26日）`); other values unchanged.
pub fn date_both(lang: Lang, value: &str) -> String {
    match (lang, wareki(value)) {
        (Lang::Ja, Some(w)) => format!("{value}（{w}）"),
        _ => value.to_string(),
    }
}

/// Message ids of a catalogue, with `message.attribute` for attributes.
pub fn message_ids(source: &str) -> Vec<String> {
    use fluent_syntax::ast::Entry;
    let res = fluent_syntax::parser::parse(source).unwrap_or_else(|(r, _)| r);
    let mut ids = Vec::new();
    for e in res.body {
        if let Entry::Message(m) = e {
            if m.value.is_some() {
                ids.push(m.id.name.to_string());
            }
            for a in m.attributes {
                ids.push(format!("{}.{}", m.id.name, a.id.name));
            }
        }
    }
    ids.sort();
    ids
}

/// The text a browser shows of an HTML page: tags, scripts and styles
/// taken out, entities for the five escaped characters put back.
pub fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tail = &rest[open..];
        let skip_to = ["<style", "<script", "<title"]
            .iter()
            .find(|t| tail.starts_with(**t))
            .and_then(|t| tail.find(&format!("</{}>", &t[1..])));
        let end = skip_to.unwrap_or_default();
        rest = match tail[end..].find('>') {
            Some(gt) => &tail[end + gt + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Words of Latin letters in text meant for a Japanese reader, other than
/// those the caller allows (file names, branch folders, people's input):
/// what a page shows untranslated.
pub fn english_words(text: &str, allowed: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for w in text.split(|c: char| !c.is_ascii_alphabetic()) {
        if w.len() < 2 || allowed.iter().any(|a| a.contains(w)) {
            continue;
        }
        out.push(w.to_string());
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_parse_and_hold_the_same_messages() {
        for lang in [Lang::Ja, Lang::En] {
            let res = fluent_syntax::parser::parse(lang.source().to_string());
            assert!(
                res.is_ok(),
                "{}.ftl: {:?}",
                lang.code(),
                res.err().map(|e| e.1)
            );
            assert!(has(lang, "review-title"));
        }
        let ja = message_ids(JA_FTL);
        let en = message_ids(EN_FTL);
        let only_ja: Vec<_> = ja.iter().filter(|i| !en.contains(i)).collect();
        let only_en: Vec<_> = en.iter().filter(|i| !ja.contains(i)).collect();
        assert!(
            only_ja.is_empty() && only_en.is_empty(),
            "only in ja.ftl: {only_ja:?}; only in en.ftl: {only_en:?}"
        );
        assert!(ja.len() > 80, "{} messages", ja.len());
    }

    #[test]
    fn every_message_the_code_asks_for_exists() {
        // Every literal id passed to t(…)/ta(…) in the sources.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut asked = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for call in [
                "t(lang, \"",
                "ta(lang, \"",
                "t(self.lang, \"",
                "ta(self.lang, \"",
            ] {
                for (at, _) in text.match_indices(call) {
                    let before = text[..at].chars().last().unwrap_or(' ');
                    if before.is_alphanumeric() || before == '_' {
                        continue;
                    }
                    let rest = &text[at + call.len()..];
                    let id = &rest[..rest.find('"').unwrap()];
                    asked.push((
                        p.file_name().unwrap().to_string_lossy().to_string(),
                        id.to_string(),
                    ));
                }
            }
        }
        assert!(asked.len() > 50, "{} message uses found", asked.len());
        for lang in [Lang::Ja, Lang::En] {
            let missing: Vec<_> = asked.iter().filter(|(_, id)| !has(lang, id)).collect();
            assert!(missing.is_empty(), "{}: {missing:?}", lang.code());
        }
        // Ids built from codes: every code the pipeline writes.
        for lang in [Lang::Ja, Lang::En] {
            for k in FIELD_REASONS.iter().chain(&PAGE_REASONS) {
                for part in ["", ".short", ".kind"] {
                    let id = format!("reason-{k}{part}");
                    assert!(has(lang, &id), "{}: {id}", lang.code());
                }
            }
            for w in WHY_CODES {
                assert!(has(lang, &format!("why-{w}")), "{}: why-{w}", lang.code());
            }
            for s in PAGE_STATUSES {
                assert!(has(lang, &format!("status-{s}")), "{s}");
            }
            for s in FIELD_STATUSES {
                assert!(has(lang, &format!("field-status-{s}")), "{s}");
            }
        }
    }

    #[test]
    fn reasons_become_sentences_that_name_the_printed_label() {
        let mut labels = Labels::default();
        labels
            .fields
            .insert(("a".into(), "atena_no".into()), "宛名番号".into());
        labels.fields.insert(
            ("b".into(), "atena_no".into()),
            "宛名番号（お子さん）".into(),
        );
        let s = reason_text(Lang::Ja, "low_confidence:atena_no", &labels, Some("a"));
        assert!(s.contains("宛名番号") && s.contains("画像"), "{s}");
        assert!(
            !s.contains("low_confidence") && !s.contains("atena_no"),
            "{s}"
        );
        let e = reason_text(Lang::En, "low_confidence:atena_no", &labels, Some("b"));
        assert!(
            e.contains("宛名番号（お子さん）") && e.contains("image"),
            "{e}"
        );
        let q = reason_text(Lang::Ja, "corrupt: PNG file is truncated", &labels, None);
        assert!(!q.contains("corrupt") && !q.is_empty(), "{q}");
        assert_eq!(
            reason_detail("corrupt: PNG file is truncated"),
            Some("PNG file is truncated")
        );
        assert_eq!(reason_detail("low_confidence:atena_no"), None);
        // A code nobody translated is still shown, with a sentence around it.
        let u = reason_text(Lang::Ja, "something_new", &labels, None);
        assert!(
            u.contains("something_new") && u.chars().any(|c| c > '\u{3000}'),
            "{u}"
        );
    }

    #[test]
    fn candidate_reasons_are_translated_with_their_numbers() {
        let s = why_text(Lang::Ja, "cell_would_be:3:4:5");
        assert!(s.contains('3') && s.contains('4') && s.contains('5'), "{s}");
        assert!(!s.contains("cell"), "{s}");
        assert_eq!(
            why_text(Lang::En, "birth_same_atena_off:1"),
            "same birthdate, addressee number 1 digit off"
        );
        assert_eq!(
            why_text(Lang::En, "birth_same_atena_off:2"),
            "same birthdate, addressee number 2 digits off"
        );
        assert_eq!(why_text(Lang::Ja, "older free text"), "older free text");
    }

    #[test]
    fn dates_in_the_japanese_era() {
        assert_eq!(wareki("2026-03-26").as_deref(), Some("令和8年3月26日"));
        assert_eq!(wareki("2019-05-01").as_deref(), Some("令和元年5月1日"));
        assert_eq!(wareki("2019-04-30").as_deref(), Some("平成31年4月30日"));
        assert_eq!(wareki("1989-01-07").as_deref(), Some("昭和64年1月7日"));
        assert_eq!(wareki("1920-01-01"), None);
        assert_eq!(wareki("0000123456"), None);
        assert_eq!(
            date_both(Lang::Ja, "1992-04-01"),
            "1992-04-01（平成4年4月1日）"
        );
        assert_eq!(date_both(Lang::En, "1992-04-01"), "1992-04-01");
    }

    #[test]
    fn english_words_finds_what_is_left_untranslated() {
        let w = english_words("要確認 3件 Save correction honcho/a.png", &["honcho/a.png"]);
        assert_eq!(w, ["Save", "correction"]);
    }
}
