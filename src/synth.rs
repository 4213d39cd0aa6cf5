//! Synthetic scans with known answers: the test bed for the whole pipeline.
//!
//! Pages are drawn from the templates, filled with real handwritten digits
//! (MNIST training split by default; `DigitSource` picks the fold) and check
//! marks, then put through what a counter scanner does to paper: skew,
//! shift, scale, blur, noise, compression, and the odd sheet fed upside
//! down. Every scan file gets a truth file saying what is on each page, and
//! a resident register is written in which most people can be found, some
//! cannot, and decoys sit one digit or one shared birthday away.

use crate::digits::mnist::{self, Split};
use crate::pdfwrite::{write_pdf, PdfPage};
use crate::render;
use crate::template::{self, Choice, Era, Field, FieldKind, RectMm, Side, Template};
use ab_glyph::FontArc;
use anyhow::{bail, Context};
use chrono::{Datelike, Duration, NaiveDate};
use image::{GrayImage, Luma};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const PREGNANCY: &str = "pregnancy-notification";
pub const INFANT: &str = "infant-checkup";

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub forms_dir: PathBuf,
    pub mnist_dir: PathBuf,
    /// `None`: both forms.
    pub form: Option<String>,
    /// Pages in all, unread front sides included.
    pub count: usize,
    pub seed: u64,
    pub out: PathBuf,
    /// Branch inbox folders; empty means `honcho` alone.
    pub branches: Vec<String>,
    /// Scan resolution of every page; `None` draws 200, 300 or 400 per page.
    pub dpi: Option<u32>,
    /// Whose handwriting fills the boxes.
    pub digits: DigitSource,
}

/// Which MNIST samples write the digits (DEVELOPERS.md: evaluation
/// samples are never trained, tuned or picked on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DigitSource {
    /// The training digits (MNIST training set, neither reserved nor in
    /// the validation fold): samples, tests.
    #[default]
    Training,
    /// Only the validation fold, which the model never trained on: pages to
    /// pick page-level thresholds on.
    Validation,
    /// Only the evaluation split (MNIST test set, even indices): pages to
    /// measure on, never to tune on.
    Evaluation,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SynthSummary {
    pub files: usize,
    pub pages: usize,
    /// Pages of a read side, with truth fields.
    pub read_pages: usize,
    /// Front sides and blank sheets: to be recognised and skipped.
    pub unread_pages: usize,
    pub upside_down: usize,
    /// Mismatch kind → pages.
    pub mismatches: BTreeMap<String, usize>,
    pub register_rows: usize,
    /// File extension → files.
    pub by_format: BTreeMap<String, usize>,
    /// Branch → pages.
    pub by_branch: BTreeMap<String, usize>,
    pub bytes: u64,
}

impl std::fmt::Display for SynthSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "{} pages in {} files ({} read, {} unread, {} upside down), \
             {} deliberate mismatches [{}], register of {} rows, formats [{}], \
             branches [{}], {:.1} MB",
            self.pages,
            self.files,
            self.read_pages,
            self.unread_pages,
            self.upside_down,
            self.mismatches.values().sum::<usize>(),
            join(&self.mismatches),
            self.register_rows,
            join(&self.by_format),
            join(&self.by_branch),
            self.bytes as f64 / 1e6
        )
    }
}

/// `OUT/truth/<branch>/<file>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truth {
    /// `<branch>/<file name>`, relative to `OUT/inbox`.
    pub file: String,
    pub pages: Vec<TruthPage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TruthPage {
    /// 1-based page within the file.
    pub page: usize,
    /// `None` for a sheet that is no known form.
    pub form: Option<String>,
    pub side: Option<String>,
    pub upside_down: bool,
    pub dpi: u32,
    /// `wrong_atena_no`, `wrong_birthdate` or `not_in_register`.
    pub mismatch: Option<String>,
    /// What is written on the paper: digits as strings, dates `YYYY-MM-DD`,
    /// single choice a 1-based option index, multiple a sorted list of them.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// How each checkbox field's answers were marked (`tick`, `circle` …;
    /// `rub_out`: a mark rubbed out in another box, the answer ticked).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mark_styles: BTreeMap<String, MarkStyle>,
    /// Scanned in black and white (every pixel paper or black).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bilevel: bool,
    /// The scanner lid or bed shows darker than the paper around it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dark_lid: bool,
}

/// The check digit of a 個人番号 from its first 11 digits.
pub fn my_number_check_digit(first11: &[u8; 11]) -> u8 {
    const W: [u32; 11] = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    let s: u32 = first11.iter().zip(W).map(|(&d, w)| d as u32 * w).sum();
    let r = s % 11;
    if r <= 1 {
        0
    } else {
        (11 - r) as u8
    }
}

/// The era a date falls in, for the eras forms print.
pub fn era_of(d: NaiveDate) -> Option<Era> {
    let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid era start");
    if d >= ymd(2019, 5, 1) {
        Some(Era::Reiwa)
    } else if d >= ymd(1989, 1, 8) {
        Some(Era::Heisei)
    } else if d >= ymd(1926, 12, 25) {
        Some(Era::Showa)
    } else {
        None
    }
}

fn era_offset(e: Era) -> i32 {
    match e {
        Era::Showa => 1925,
        Era::Heisei => 1988,
        Era::Reiwa => 2018,
    }
}

fn era_code(e: Era) -> &'static str {
    match e {
        Era::Showa => "showa",
        Era::Heisei => "heisei",
        Era::Reiwa => "reiwa",
    }
}

#[derive(Debug, Clone)]
enum Value {
    Digits(String),
    Date(NaiveDate),
    /// 0-based option.
    Single(usize),
    Multi(Vec<usize>),
}

impl Value {
    fn truth(&self) -> serde_json::Value {
        match self {
            Value::Digits(s) => s.clone().into(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string().into(),
            Value::Single(i) => (i + 1).into(),
            Value::Multi(v) => v.iter().map(|i| i + 1).collect::<Vec<_>>().into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Person {
    atena_no: String,
    name: String,
    kana: String,
    birth_date: NaiveDate,
    sex: &'static str,
    address: String,
}

struct PagePlan<'t> {
    template: Option<&'t Template>,
    side: Option<&'t Side>,
    values: BTreeMap<String, Value>,
    mismatch: Option<&'static str>,
    dpi: u32,
    upside_down: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Png,
    Jpeg,
    Pdf,
    Tiff,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
            Format::Pdf => "pdf",
            Format::Tiff => "tif",
        }
    }
}

/// Writes a synthetic batch under `opts.out`; see the module docs.
pub fn synth(opts: &SynthOptions) -> anyhow::Result<SynthSummary> {
    synth_with_progress(opts, &|_| {})
}

/// `synth`, telling `on_file` how many pages each file written held (for a
/// progress bar over `opts.count` pages).
pub fn synth_with_progress(
    opts: &SynthOptions,
    on_file: &dyn Fn(usize),
) -> anyhow::Result<SynthSummary> {
    let templates = template::load_dir(&opts.forms_dir)?;
    let find = |id: &str| templates.iter().find(|t| t.id == id);
    let (preg, infant) = match opts.form.as_deref() {
        None => (find(PREGNANCY), find(INFANT)),
        Some(PREGNANCY) => (find(PREGNANCY), None),
        Some(INFANT) => (None, find(INFANT)),
        Some(other) => bail!("synth knows how to fill {PREGNANCY} and {INFANT}, not {other}"),
    };
    if preg.is_none() && infant.is_none() {
        bail!("no form to fill in {}", opts.forms_dir.display());
    }
    let infant_sides = match infant {
        Some(t) => Some((
            t.sides
                .iter()
                .find(|s| !s.read)
                .context("infant-checkup has no unread front side")?,
            t.sides
                .iter()
                .find(|s| s.read)
                .context("infant-checkup has no read side")?,
        )),
        None => None,
    };
    let digits = load_digits(&opts.mnist_dir, opts.digits)?;
    let font = render::load_font()?;
    let branches = if opts.branches.is_empty() {
        vec!["honcho".to_string()]
    } else {
        opts.branches.clone()
    };
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut people = People::default();

    // Plan every page first, so that the register is complete before any
    // file is written.
    let mut plans: Vec<PagePlan> = Vec::with_capacity(opts.count);
    while plans.len() < opts.count {
        let drawn = *[200u32, 300, 300, 400].choose(&mut rng).expect("non-empty");
        let dpi = opts.dpi.unwrap_or(drawn);
        let upside_down = rng.gen_bool(0.05);
        if rng.gen_bool(0.02) {
            plans.push(PagePlan {
                template: None,
                side: None,
                values: BTreeMap::new(),
                mismatch: None,
                dpi,
                upside_down,
            });
            continue;
        }
        let use_infant = match (preg, infant_sides) {
            (Some(_), Some(_)) => rng.gen_bool(0.5),
            (None, Some(_)) => true,
            _ => false,
        };
        if let (true, Some((front, back))) = (use_infant, infant_sides) {
            // Staff scan the bundle duplex, so a front often precedes its back.
            if rng.gen_bool(0.35) && plans.len() + 1 < opts.count {
                plans.push(PagePlan {
                    template: infant,
                    side: Some(front),
                    values: BTreeMap::new(),
                    mismatch: None,
                    dpi,
                    upside_down: rng.gen_bool(0.05),
                });
            }
            let (values, mismatch) = fill_infant(back, &mut rng, &mut people);
            plans.push(PagePlan {
                template: infant,
                side: Some(back),
                values,
                mismatch,
                dpi,
                upside_down,
            });
        } else if let Some(t) = preg {
            let (values, mismatch) = fill_pregnancy(&t.sides[0], &mut rng, &mut people);
            plans.push(PagePlan {
                template: preg,
                side: Some(&t.sides[0]),
                values,
                mismatch,
                dpi,
                upside_down,
            });
        }
    }

    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let register_rows = people.write_register(&opts.out.join("register.csv"), &mut rng)?;

    let mut summary = SynthSummary {
        register_rows,
        ..Default::default()
    };
    let mut blanks: HashMap<(String, u32), GrayImage> = HashMap::new();
    let mut i = 0;
    let mut seq = 0;
    while i < plans.len() {
        let mut format = match rng.gen_range(0..10) {
            0..=2 => Format::Png,
            3..=5 => Format::Jpeg,
            6..=7 => Format::Pdf,
            _ => Format::Tiff,
        };
        // A lone last page would make a one-page PDF or TIFF, which the
        // multi-page formats are not here to test.
        if plans.len() - i < 2 && matches!(format, Format::Pdf | Format::Tiff) {
            format = Format::Png;
        }
        let n = match format {
            Format::Png | Format::Jpeg => 1,
            _ => rng.gen_range(2..=3).min(plans.len() - i),
        };
        seq += 1;
        let branch = branches.choose(&mut rng).expect("non-empty").clone();
        let file = format!("scan-{seq:04}.{}", format.ext());
        let mut images = Vec::with_capacity(n);
        let mut truth = Truth {
            file: format!("{branch}/{file}"),
            pages: Vec::with_capacity(n),
        };
        // Document mode writes black and white; only lossless files carry it.
        let bilevel = matches!(format, Format::Png | Format::Tiff) && rng.gen_bool(0.15);
        for (k, plan) in plans[i..i + n].iter().enumerate() {
            let (page, mark_styles) = draw_page(plan, &digits, &font, &mut blanks, &mut rng);
            let look = ScanLook {
                bilevel,
                dark_lid: rng.gen_bool(0.08),
            };
            let lossless = matches!(format, Format::Png | Format::Tiff);
            images.push((
                scan(&page, plan.dpi, plan.upside_down, lossless, look, &mut rng),
                plan.dpi,
            ));
            truth.pages.push(TruthPage {
                mark_styles,
                bilevel: look.bilevel,
                dark_lid: look.dark_lid,
                page: k + 1,
                form: plan.template.map(|t| t.id.clone()),
                side: plan.side.map(|s| s.id.clone()),
                upside_down: plan.upside_down,
                dpi: plan.dpi,
                mismatch: plan.mismatch.map(str::to_string),
                fields: plan
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.truth()))
                    .collect(),
            });
            summary.pages += 1;
            if plan.side.is_some_and(|s| s.read) {
                summary.read_pages += 1;
            } else {
                summary.unread_pages += 1;
            }
            summary.upside_down += plan.upside_down as usize;
            if let Some(m) = plan.mismatch {
                *summary.mismatches.entry(m.to_string()).or_default() += 1;
            }
            *summary.by_branch.entry(branch.clone()).or_default() += 1;
        }
        i += n;

        let inbox = opts.out.join("inbox").join(&branch);
        let truth_dir = opts.out.join("truth").join(&branch);
        for d in [&inbox, &truth_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let path = inbox.join(&file);
        let bytes = encode(&images, format).with_context(|| format!("cannot encode {file}"))?;
        std::fs::write(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        summary.bytes += bytes.len() as u64;
        let tpath = truth_dir.join(format!("{file}.json"));
        std::fs::write(&tpath, serde_json::to_string_pretty(&truth)? + "\n")
            .with_context(|| format!("cannot write {}", tpath.display()))?;
        summary.files += 1;
        on_file(n);
        *summary
            .by_format
            .entry(format.ext().to_string())
            .or_default() += 1;
    }
    std::fs::write(
        opts.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    Ok(summary)
}

/// MNIST samples of the chosen source by digit, as 28×28 ink maps.
fn load_digits(dir: &Path, source: DigitSource) -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
    let mut by = vec![Vec::new(); 10];
    let split = match source {
        DigitSource::Evaluation => Split::Eval,
        DigitSource::Validation => Split::Validation,
        DigitSource::Training => Split::Train,
    };
    for s in mnist::load(dir, split)? {
        by[s.label as usize].push(s.pixels);
    }
    if by.iter().any(|v| v.is_empty()) {
        bail!("mnist in {} lacks some digit", dir.display());
    }
    Ok(by)
}

// ---------------------------------------------------------------- people

const FAMILY: &[(&str, &str)] = &[
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
    ("髙木", "タカギ"),
    ("渡邉", "ワタナベ"),
];
const FEMALE: &[(&str, &str)] = &[
    ("陽子", "ヨウコ"),
    ("美咲", "ミサキ"),
    ("さくら", "サクラ"),
    ("彩", "アヤ"),
    ("愛", "アイ"),
    ("真由美", "マユミ"),
    ("結衣", "ユイ"),
    ("奈々", "ナナ"),
    ("恵", "メグミ"),
    ("麻衣", "マイ"),
    ("優子", "ユウコ"),
    ("千尋", "チヒロ"),
    ("葵", "アオイ"),
    ("陽菜", "ヒナ"),
    ("凜", "リン"),
    ("芽依", "メイ"),
];
const MALE: &[(&str, &str)] = &[
    ("蓮", "レン"),
    ("湊", "ミナト"),
    ("陽翔", "ハルト"),
    ("蒼", "アオイ"),
    ("樹", "イツキ"),
    ("悠真", "ユウマ"),
    ("大和", "ヤマト"),
    ("颯太", "ソウタ"),
    ("碧", "アオ"),
    ("朝陽", "アサヒ"),
];
const TOWNS: &[&str] = &[
    "本町",
    "栄町",
    "桜台",
    "緑が丘",
    "旭町",
    "東原",
    "西新町",
    "南台",
    "北浜",
    "中央",
];

#[derive(Default)]
struct People {
    /// Rows of the register, decoys included.
    rows: Vec<Person>,
    atena: HashSet<String>,
}

impl People {
    fn fresh_atena(&mut self, rng: &mut StdRng) -> String {
        loop {
            let a: String = (0..10)
                .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                .collect();
            if self.atena.insert(a.clone()) {
                return a;
            }
        }
    }

    /// `atena` with one digit changed, unused by anyone.
    fn one_digit_away(&mut self, atena: &str, rng: &mut StdRng) -> String {
        loop {
            let mut b = atena.as_bytes().to_vec();
            let i = rng.gen_range(0..b.len());
            let d = b'0' + rng.gen_range(0..10);
            if d == b[i] {
                continue;
            }
            b[i] = d;
            let s = String::from_utf8(b).expect("ascii digits");
            if self.atena.insert(s.clone()) {
                return s;
            }
        }
    }

    fn person(
        &mut self,
        rng: &mut StdRng,
        birth_date: NaiveDate,
        female: bool,
        family: Option<(&str, &str)>,
    ) -> Person {
        let fam = family.unwrap_or_else(|| *FAMILY.choose(rng).expect("non-empty"));
        let given = *if female { FEMALE } else { MALE }
            .choose(rng)
            .expect("non-empty");
        Person {
            atena_no: self.fresh_atena(rng),
            name: format!("{}　{}", fam.0, given.0),
            kana: format!("{}　{}", fam.1, given.1),
            birth_date,
            sex: if female { "女" } else { "男" },
            address: format!(
                "〇〇市{}{}丁目{}番{}号",
                TOWNS.choose(rng).expect("non-empty"),
                rng.gen_range(1..=5),
                rng.gen_range(1..=30),
                rng.gen_range(1..=20)
            ),
        }
    }

    /// Registers a real person (unless they are to be missing) and plants
    /// decoys next to them; returns the atena number and birthdate written
    /// on the paper and the mismatch that makes.
    fn enrol(
        &mut self,
        rng: &mut StdRng,
        p: Person,
        (min_birth, max_birth): (NaiveDate, NaiveDate),
    ) -> (String, NaiveDate, Option<&'static str>) {
        let female = p.sex == "女";
        if rng.gen_bool(0.25) {
            let mut twin = self.person(rng, p.birth_date, female, None);
            twin.birth_date = p.birth_date;
            self.rows.push(twin);
        }
        if rng.gen_bool(0.25) {
            let near = self.one_digit_away(&p.atena_no, rng);
            let birth = shift_days(p.birth_date, rng, 30, 2000, min_birth, max_birth);
            let mut d = self.person(rng, birth, female, None);
            self.atena.remove(&d.atena_no);
            d.atena_no = near;
            self.rows.push(d);
        }
        let roll: f64 = rng.gen();
        let (atena, birth, mismatch) = if roll < 0.034 {
            let wrong = self.one_digit_away(&p.atena_no, rng);
            (wrong, p.birth_date, Some("wrong_atena_no"))
        } else if roll < 0.067 {
            let wrong = shift_days(p.birth_date, rng, 1, 400, min_birth, max_birth);
            (p.atena_no.clone(), wrong, Some("wrong_birthdate"))
        } else if roll < 0.1 {
            (p.atena_no.clone(), p.birth_date, Some("not_in_register"))
        } else {
            (p.atena_no.clone(), p.birth_date, None)
        };
        if mismatch != Some("not_in_register") {
            self.rows.push(p);
        }
        (atena, birth, mismatch)
    }

    fn write_register(&self, path: &Path, rng: &mut StdRng) -> anyhow::Result<usize> {
        let mut rows = self.rows.clone();
        rows.shuffle(rng);
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record(["atena_no", "name", "kana", "birth_date", "sex", "address"])?;
        for p in &rows {
            w.write_record([
                p.atena_no.as_str(),
                &p.name,
                &p.kana,
                &p.birth_date.format("%Y-%m-%d").to_string(),
                p.sex,
                &p.address,
            ])?;
        }
        w.flush()?;
        Ok(rows.len())
    }
}

/// A date `lo..=hi` days away (either direction) within `min..=max`.
fn shift_days(
    d: NaiveDate,
    rng: &mut StdRng,
    lo: i64,
    hi: i64,
    min: NaiveDate,
    max: NaiveDate,
) -> NaiveDate {
    loop {
        let n = rng.gen_range(lo..=hi) * if rng.gen_bool(0.5) { 1 } else { -1 };
        let out = d + Duration::days(n);
        if (min..=max).contains(&out) {
            return out;
        }
    }
}

/// The day the synthetic scans are taken in, a Friday. Pages look like one
/// week's intake: a notification is handed in at most two weeks before it
/// is scanned, a check-up questionnaire comes from the clinic within two
/// months. No date on a page is later, so any run on or after this day
/// finds them possible (`not_after_receipt`), and a run on it holds them
/// to the bound a week's batch has.
const TAKEN_IN: (i32, u32, u32) = (2026, 11, 27);

fn taken_in() -> NaiveDate {
    ymd(TAKEN_IN.0, TAKEN_IN.1, TAKEN_IN.2)
}

/// A day within `days` before the intake day, both ends included.
fn before_intake(rng: &mut StdRng, days: i64) -> NaiveDate {
    date_between(rng, taken_in() - Duration::days(days), taken_in())
}

fn date_between(rng: &mut StdRng, a: NaiveDate, b: NaiveDate) -> NaiveDate {
    a + Duration::days(rng.gen_range(0..=(b - a).num_days()))
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn random_digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

fn my_number(rng: &mut StdRng) -> String {
    let first: [u8; 11] = std::array::from_fn(|_| rng.gen_range(0..10));
    let mut s: String = first.iter().map(|d| char::from(b'0' + d)).collect();
    s.push(char::from(b'0' + my_number_check_digit(&first)));
    s
}

/// Answers for choice questions and anything the form-specific fillers
/// leave out.
fn fill_generic(side: &Side, rng: &mut StdRng, values: &mut BTreeMap<String, Value>) {
    for f in &side.fields {
        if values.contains_key(&f.id) {
            continue;
        }
        let v = match f.kind {
            FieldKind::Single => Value::Single(rng.gen_range(0..f.options.len())),
            FieldKind::Multi => {
                // A required "all that apply" has a "none" box: someone
                // answering ticks at least one.
                let least = usize::from(f.required);
                let k = rng.gen_range(least..=3.min(f.options.len()));
                let mut idx: Vec<usize> = (0..f.options.len()).collect();
                idx.shuffle(rng);
                let mut pick = idx[..k].to_vec();
                pick.sort_unstable();
                Value::Multi(pick)
            }
            FieldKind::Digits => Value::Digits(random_digits(
                rng,
                f.boxes.as_ref().map_or(0, |b| b.count()),
            )),
            FieldKind::Date => Value::Date(before_intake(rng, 60)),
        };
        values.insert(f.id.clone(), v);
    }
}

fn fill_pregnancy(
    side: &Side,
    rng: &mut StdRng,
    people: &mut People,
) -> (BTreeMap<String, Value>, Option<&'static str>) {
    let span = (ymd(1975, 1, 1), ymd(2006, 12, 31));
    let birth = date_between(rng, span.0, span.1);
    let p = people.person(rng, birth, true, None);
    let (atena, birth, mismatch) = people.enrol(rng, p, span);
    let weeks = rng.gen_range(5..=40u32);
    let to_due = (40 - weeks as i64) * 7 + rng.gen_range(-3..=6);
    let notified = before_intake(rng, 13);
    let due = notified + Duration::days(to_due);
    let mut v = BTreeMap::new();
    v.insert("notified_on".into(), Value::Date(notified));
    v.insert("atena_no".into(), Value::Digits(atena));
    v.insert("birth_date".into(), Value::Date(birth));
    v.insert("my_number".into(), Value::Digits(my_number(rng)));
    v.insert(
        "gestation_weeks".into(),
        Value::Digits(format!("{weeks:02}")),
    );
    v.insert("due_date".into(), Value::Date(due));
    v.insert(
        "fetus_count".into(),
        Value::Single(if rng.gen_bool(0.93) { 0 } else { 1 }),
    );
    fill_generic(side, rng, &mut v);
    v.retain(|k, _| side.fields.iter().any(|f| &f.id == k));
    (v, mismatch)
}

fn fill_infant(
    side: &Side,
    rng: &mut StdRng,
    people: &mut People,
) -> (BTreeMap<String, Value>, Option<&'static str>) {
    let checkup = before_intake(rng, 60);
    let birth = checkup - Duration::days(rng.gen_range(25..=365));
    let span = (checkup - Duration::days(400), checkup - Duration::days(1));
    let family = *FAMILY.choose(rng).expect("non-empty");
    let female = rng.gen_bool(0.5);
    let p = people.person(rng, birth, female, Some(family));
    let (atena, birth, mismatch) = people.enrol(rng, p, span);
    let mut v = BTreeMap::new();
    v.insert("atena_no".into(), Value::Digits(atena));
    v.insert("birth_date".into(), Value::Date(birth));
    v.insert("checkup_date".into(), Value::Date(checkup));
    fill_generic(side, rng, &mut v);
    v.retain(|k, _| side.fields.iter().any(|f| &f.id == k));
    (v, mismatch)
}

// ---------------------------------------------------------------- drawing

struct Canvas {
    img: GrayImage,
    ppm: f64,
}

impl Canvas {
    /// A round-capped stroke between two points in mm, anti-aliased.
    fn stroke(&mut self, a: (f64, f64), b: (f64, f64), width_mm: f64, gray: u8) {
        self.segment(a, b, width_mm, |cov| {
            (255.0 - cov * (255.0 - gray as f64)) as u8
        });
    }

    fn polyline(&mut self, pts: &[(f64, f64)], width_mm: f64, gray: u8) {
        for w in pts.windows(2) {
            self.stroke(w[0], w[1], width_mm, gray);
        }
    }

    /// One MNIST digit scaled into a box, with jitter, slant and pen tone.
    fn digit(&mut self, sample: &[f32], r: RectMm, rng: &mut StdRng, pen: u8) {
        let h = r.h * rng.gen_range(0.98..1.25);
        let w = h * rng.gen_range(0.72..0.9);
        // Most writers stay inside; some run over the border.
        let spread = if rng.gen_bool(0.12) { 1.1 } else { 0.35 };
        let cx = r.x + r.w / 2.0 + rng.gen_range(-spread..=spread);
        let cy = r.y + r.h / 2.0 + rng.gen_range(-spread..=spread);
        let angle: f64 = rng.gen_range(-0.12..0.12);
        let (sin, cos) = angle.sin_cos();
        let ppm = self.ppm;
        let half = w.max(h) * 0.75;
        let x0 = ((cx - half) * ppm).max(0.0) as u32;
        let y0 = ((cy - half) * ppm).max(0.0) as u32;
        let x1 = (((cx + half) * ppm) as u32).min(self.img.width());
        let y1 = (((cy + half) * ppm) as u32).min(self.img.height());
        for y in y0..y1 {
            for x in x0..x1 {
                let mx = (x as f64 + 0.5) / ppm - cx;
                let my = (y as f64 + 0.5) / ppm - cy;
                let (ux, uy) = (mx * cos + my * sin, -mx * sin + my * cos);
                let sx = (ux / w + 0.5) * 28.0 - 0.5;
                let sy = (uy / h + 0.5) * 28.0 - 0.5;
                let ink = bilinear28(sample, sx, sy);
                if ink > 0.02 {
                    let v = (255.0 - ink.min(1.0) as f64 * (255.0 - pen as f64)) as u8;
                    let p = self.img.get_pixel_mut(x, y);
                    p[0] = p[0].min(v);
                }
            }
        }
    }

    /// A pencil stroke: graphite leaves grains, some darker than the line's
    /// tone and some gaps, which is what a black-and-white scan keeps of it.
    fn pencil(&mut self, a: (f64, f64), b: (f64, f64), width_mm: f64, gray: u8, rng: &mut StdRng) {
        self.segment(a, b, width_mm, |cov| {
            // Now and then a grain as dark as a pen line.
            let grain = if rng.gen_bool(0.12) {
                rng.gen_range(2.0..3.2)
            } else {
                rng.gen_range(0.3..1.6)
            };
            let dark = (cov * grain * (255.0 - gray as f64)).min(255.0);
            (255.0 - dark) as u8
        });
    }

    /// Darkens every pixel a round-capped segment (mm) covers to at most the
    /// value `ink` gives for that pixel's coverage (0–1], row by row.
    fn segment(
        &mut self,
        a: (f64, f64),
        b: (f64, f64),
        width_mm: f64,
        mut ink: impl FnMut(f64) -> u8,
    ) {
        let (ax, ay) = (a.0 * self.ppm, a.1 * self.ppm);
        let (bx, by) = (b.0 * self.ppm, b.1 * self.ppm);
        let r = (width_mm * self.ppm / 2.0).max(0.6);
        let x0 = (ax.min(bx) - r - 1.0).max(0.0) as u32;
        let y0 = (ay.min(by) - r - 1.0).max(0.0) as u32;
        let x1 = ((ax.max(bx) + r + 2.0) as u32).min(self.img.width());
        let y1 = ((ay.max(by) + r + 2.0) as u32).min(self.img.height());
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = (dx * dx + dy * dy).max(1e-9);
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0);
                let d = (px - ax - t * dx).hypot(py - ay - t * dy);
                let cov = (r + 0.5 - d).clamp(0.0, 1.0);
                if cov > 0.0 {
                    let v = ink(cov);
                    let p = self.img.get_pixel_mut(x, y);
                    p[0] = p[0].min(v);
                }
            }
        }
    }

    /// A hand-drawn closed curve around (cx, cy): not quite round, not
    /// quite closed (or overlapping its start), starting anywhere.
    fn loop_around(&mut self, c: (f64, f64), rx: f64, ry: f64, rng: &mut StdRng, pen: u8) {
        let start = rng.gen_range(0.0..std::f64::consts::TAU);
        let sweep = std::f64::consts::TAU * rng.gen_range(0.94..1.12);
        let width = rng.gen_range(0.4..0.6);
        let tilt: f64 = rng.gen_range(-0.15..0.15);
        let (wobble_a, wobble_p) = (rng.gen_range(0.0..0.06), rng.gen_range(0.0..6.3));
        let n = 48;
        let pts: Vec<(f64, f64)> = (0..=n)
            .map(|k| {
                let t = start + sweep * k as f64 / n as f64;
                // A spiral's drift: the end does not meet the start exactly.
                let grow =
                    1.0 + 0.05 * (k as f64 / n as f64) + wobble_a * (3.0 * t + wobble_p).sin();
                let (x, y) = (rx * grow * t.cos(), ry * grow * t.sin());
                let (s, co) = tilt.sin_cos();
                (c.0 + x * co - y * s, c.1 + x * s + y * co)
            })
            .collect();
        self.polyline(&pts, width, pen);
    }

    /// Answers option `o` in `style`. `RubOut` draws the answer itself (a
    /// tick); the rubbed-out mark is `rubbed_out`.
    fn answer(&mut self, o: &Choice, style: MarkStyle, rng: &mut StdRng, pen: u8) {
        let r = o.rect();
        match style {
            MarkStyle::Circle => {
                let c = (
                    r.x + r.w / 2.0 + rng.gen_range(-0.3..0.3),
                    r.y + r.h / 2.0 + rng.gen_range(-0.3..0.3),
                );
                let rx = rng.gen_range(3.0..3.7);
                let ry = rng.gen_range(3.0..3.7);
                self.loop_around(c, rx, ry, rng, pen);
            }
            MarkStyle::Oval => {
                let l = crate::checkbox::label_rect(o);
                // Around the label alone, or the box and the label together.
                let around = if rng.gen_bool(0.5) {
                    l
                } else {
                    RectMm {
                        x: r.x,
                        y: r.y,
                        w: l.x + l.w - r.x,
                        h: r.h,
                    }
                };
                let c = (
                    around.x + around.w / 2.0 + rng.gen_range(-0.3..0.3),
                    around.y + around.h / 2.0 + rng.gen_range(-0.2..0.2),
                );
                let rx = around.w / 2.0 + rng.gen_range(1.0..1.8);
                let ry = around.h / 2.0 + rng.gen_range(1.0..1.6);
                self.loop_around(c, rx, ry, rng, pen);
            }
            MarkStyle::RubOut => self.check(r, MarkStyle::Tick, rng, pen),
            _ => self.check(r, style, rng, pen),
        }
    }

    /// What is left of a mark rubbed out with an eraser: a wide, faint
    /// trace of it.
    fn rubbed_out(&mut self, r: RectMm, rng: &mut StdRng, pen: u8) {
        let mut ghost = Canvas {
            img: GrayImage::from_pixel(self.img.width(), self.img.height(), Luma([255])),
            ppm: self.ppm,
        };
        let style = *[MarkStyle::Tick, MarkStyle::Cross]
            .choose(rng)
            .expect("non-empty");
        ghost.check(r, style, rng, pen);
        let keep = rng.gen_range(0.06..0.16);
        let g = r.grow(1.5);
        let (x0, y0) = ((g.x * self.ppm) as u32, (g.y * self.ppm) as u32);
        let (x1, y1) = (
            (((g.x + g.w) * self.ppm) as u32).min(self.img.width()),
            (((g.y + g.h) * self.ppm) as u32).min(self.img.height()),
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let dark = (255 - ghost.img.get_pixel(x, y)[0]) as f64 * keep;
                let p = self.img.get_pixel_mut(x, y);
                p[0] = p[0].min((255.0 - dark) as u8);
            }
        }
    }

    fn check(&mut self, r: RectMm, style: MarkStyle, rng: &mut StdRng, pen: u8) {
        let s = r.w;
        let j = |rng: &mut StdRng| rng.gen_range(-0.1..0.1) * s;
        let at =
            |fx: f64, fy: f64, rng: &mut StdRng| (r.x + fx * s + j(rng), r.y + fy * s + j(rng));
        match style {
            MarkStyle::Pencil => {
                let width = rng.gen_range(0.3..0.45);
                let gray = rng.gen_range(150..195);
                let pts = [
                    at(0.12, 0.5, rng),
                    at(0.4, 0.88, rng),
                    at(rng.gen_range(0.9..1.2), -0.15, rng),
                ];
                self.pencil(pts[0], pts[1], width, gray, rng);
                self.pencil(pts[1], pts[2], width, gray, rng);
            }
            MarkStyle::Faint => {
                let width = rng.gen_range(0.3..0.42);
                let gray = rng.gen_range(95..125);
                let pts = [
                    at(0.12, 0.5, rng),
                    at(0.4, 0.88, rng),
                    at(rng.gen_range(0.9..1.2), -0.15, rng),
                ];
                self.polyline(&pts, width, gray);
            }
            MarkStyle::Cross => {
                let w = rng.gen_range(0.45..0.65);
                let (a, b) = (at(0.08, 0.08, rng), at(0.92, 0.92, rng));
                self.stroke(a, b, w, pen);
                let (a, b) = (at(0.92, 0.08, rng), at(0.08, 0.92, rng));
                self.stroke(a, b, w, pen);
            }
            MarkStyle::Filled => {
                let mut y = 0.12;
                let mut pts = Vec::new();
                while y < 0.9 {
                    pts.push(at(0.12, y, rng));
                    pts.push(at(0.88, y + 0.07, rng));
                    y += 0.14;
                }
                self.polyline(&pts, 0.8, pen);
            }
            // Circles and rub-outs are drawn by `answer`; in a bare box
            // they are ticks.
            MarkStyle::Tick | MarkStyle::Circle | MarkStyle::Oval | MarkStyle::RubOut => {
                let pts = [
                    at(0.12, 0.5, rng),
                    at(0.4, 0.88, rng),
                    at(rng.gen_range(0.9..1.2), -0.15, rng),
                ];
                self.polyline(&pts, rng.gen_range(0.45..0.7), pen);
            }
        }
    }
}

/// How a checkbox answer is marked: what people do on paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkStyle {
    Tick,
    Cross,
    Filled,
    /// A light pen tick.
    Faint,
    /// A faint pencil tick, grainy.
    Pencil,
    /// A circle around the box, the 〇-style habit.
    Circle,
    /// An oval over the label (and sometimes the box).
    Oval,
    /// Another box's mark rubbed out, the answer ticked.
    RubOut,
}

/// Draws option `idx` of `field` answered in `style` on an upright page
/// drawn at `dpi` (a rendered blank), for tests and tools.
pub fn draw_answer(
    img: &mut GrayImage,
    dpi: u32,
    field: &Field,
    idx: usize,
    style: MarkStyle,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = Canvas {
        img: std::mem::take(img),
        ppm: dpi as f64 / 25.4,
    };
    c.answer(&field.options[idx], style, &mut rng, 30);
    *img = c.img;
}

fn bilinear28(s: &[f32], x: f64, y: f64) -> f32 {
    if x < -1.0 || y < -1.0 || x > 28.0 || y > 28.0 {
        return 0.0;
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let get = |xi: f64, yi: f64| {
        if xi < 0.0 || yi < 0.0 || xi > 27.0 || yi > 27.0 {
            0.0
        } else {
            s[yi as usize * 28 + xi as usize]
        }
    };
    get(x0, y0) * (1.0 - fx) * (1.0 - fy)
        + get(x0 + 1.0, y0) * fx * (1.0 - fy)
        + get(x0, y0 + 1.0) * (1.0 - fx) * fy
        + get(x0 + 1.0, y0 + 1.0) * fx * fy
}

/// The digits a date field's six boxes show: era year, month, day.
fn date_digits(f: &Field, d: NaiveDate) -> (String, Option<Era>) {
    let era = era_of(d).unwrap_or(Era::Reiwa);
    let shown = f.era.unwrap_or(era);
    let yy = d.year() - era_offset(shown);
    (
        format!("{:02}{:02}{:02}", yy.rem_euclid(100), d.month(), d.day()),
        Some(era),
    )
}

fn draw_page(
    plan: &PagePlan,
    digits: &[Vec<Vec<f32>>],
    font: &FontArc,
    blanks: &mut HashMap<(String, u32), GrayImage>,
    rng: &mut StdRng,
) -> (GrayImage, BTreeMap<String, MarkStyle>) {
    let dpi = plan.dpi;
    let mut styles = BTreeMap::new();
    let (Some(t), Some(side)) = (plan.template, plan.side) else {
        // A sheet that is not a form: blank paper, A4 at the page's dpi.
        let ppm = dpi as f64 / 25.4;
        let blank = GrayImage::from_pixel((210.0 * ppm) as u32, (297.0 * ppm) as u32, Luma([255]));
        return (blank, styles);
    };
    let img = blanks
        .entry((side.id.clone(), dpi))
        .or_insert_with(|| render::render_side(t, side, dpi as f64, font))
        .clone();
    let mut c = Canvas {
        img,
        ppm: dpi as f64 / 25.4,
    };
    let pen: u8 = rng.gen_range(10..70);
    let style = pick_style(rng);
    for f in &side.fields {
        let Some(v) = plan.values.get(&f.id) else {
            continue;
        };
        let (text, marks): (String, Vec<usize>) = match v {
            Value::Digits(s) => (s.clone(), vec![]),
            Value::Date(d) => {
                let (s, era) = date_digits(f, *d);
                let chosen = f
                    .options
                    .iter()
                    .position(|o| era.is_some_and(|e| o.code == era_code(e)));
                (s, chosen.into_iter().collect())
            }
            Value::Single(i) => (String::new(), vec![*i]),
            Value::Multi(v) => (String::new(), v.clone()),
        };
        if let Some(row) = &f.boxes {
            for (r, ch) in row.rects().into_iter().zip(text.bytes()) {
                let d = (ch - b'0') as usize;
                let sample = digits[d].choose(rng).expect("non-empty");
                c.digit(sample, r, rng, pen);
            }
        }
        if f.options.is_empty() {
            continue;
        }
        // An occasional field marked differently: people are not consistent.
        let s = if rng.gen_bool(0.15) {
            pick_style(rng)
        } else {
            style
        };
        if s == MarkStyle::RubOut {
            let others: Vec<usize> = (0..f.options.len())
                .filter(|i| !marks.contains(i))
                .collect();
            if let Some(&i) = others.choose(rng) {
                c.rubbed_out(f.options[i].rect(), rng, pen);
            }
        }
        for &i in &marks {
            c.answer(&f.options[i], s, rng, pen);
        }
        styles.insert(f.id.clone(), s);
    }
    if side.read && rng.gen_bool(0.2) {
        stray_mark(&mut c, side, rng, pen);
    }
    if !side.read {
        doctor_marks(&mut c, side, rng);
    }
    (c.img, styles)
}

/// How a page's writer marks checkboxes.
fn pick_style(rng: &mut StdRng) -> MarkStyle {
    match rng.gen_range(0..100) {
        0..=34 => MarkStyle::Tick,
        35..=52 => MarkStyle::Cross,
        53..=62 => MarkStyle::Filled,
        63..=68 => MarkStyle::Faint,
        69..=78 => MarkStyle::Pencil,
        79..=86 => MarkStyle::Circle,
        87..=93 => MarkStyle::Oval,
        _ => MarkStyle::RubOut,
    }
}

/// A short stroke just outside a checkbox: a pen resting near the box, an
/// aborted mark. It must not count as an answer.
fn stray_mark(c: &mut Canvas, side: &Side, rng: &mut StdRng, pen: u8) {
    let boxes: Vec<RectMm> = side
        .fields
        .iter()
        .flat_map(|f| f.options.iter().map(|o| o.rect()))
        .collect();
    let Some(r) = boxes.choose(rng) else { return };
    let gap = rng.gen_range(0.6..1.2);
    let len = rng.gen_range(1.2..2.5);
    let y = r.y + rng.gen_range(0.0..r.h);
    let (a, b) = if rng.gen_bool(0.5) {
        (
            (r.x - gap, y),
            (r.x - gap - len, y + rng.gen_range(-0.8..0.8)),
        )
    } else {
        let x = r.x + rng.gen_range(0.0..r.w);
        (
            (x, r.y + r.h + gap),
            (x + rng.gen_range(-0.8..0.8), r.y + r.h + gap + len),
        )
    };
    c.stroke(a, b, 0.5, pen);
}

/// Ticks in some of the printed □ of an unread side, so that it looks used.
fn doctor_marks(c: &mut Canvas, side: &Side, rng: &mut StdRng) {
    let font_box = |t: &template::TextItem, i: usize| RectMm {
        x: t.x_mm + i as f64 * t.size_mm + 0.1 * t.size_mm,
        y: t.y_mm + 0.1 * t.size_mm,
        w: 0.8 * t.size_mm,
        h: 0.8 * t.size_mm,
    };
    let mut squares = Vec::new();
    for t in &side.texts {
        // Form text is full-width, one em per character in a fixed-pitch font.
        for (i, ch) in t.text.chars().enumerate() {
            if ch == '□' {
                squares.push(font_box(t, i));
            }
        }
    }
    let pen = rng.gen_range(10..60);
    squares.shuffle(rng);
    let n = rng.gen_range(2..=6).min(squares.len());
    for r in &squares[..n] {
        c.check(*r, MarkStyle::Tick, rng, pen);
    }
}

// ---------------------------------------------------------------- scanning

/// Scanner bed beyond the paper on each side. A 3° skew with a 3% scale and
/// a 3 mm shift moves a corner mark up to about 12.5 mm, more than its 9 mm
/// from the edge: an A4-sized scan window would crop it.
const BED_MARGIN_MM: f64 = 6.0;

/// How the scanner treats a page besides the usual skew, tone and noise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanLook {
    /// Document mode: every pixel black or white, at the scanner's level.
    pub bilevel: bool,
    /// The lid or bed beyond the paper shows darker than the paper (a grey
    /// lid, an open lid's shadow), and the sheet lies off-centre, so that a
    /// corner mark sits close to that dark margin.
    pub dark_lid: bool,
}

/// Skew, shift, scale, paper tone, blur and noise; the result is the page
/// as a scanner at `dpi` would see it, A4 plus a little of the bed.
/// `lossless`: the file format keeps every grey (PNG, TIFF), so the
/// scanner clips the paper tone to white.
pub fn scan(
    page: &GrayImage,
    dpi: u32,
    upside_down: bool,
    lossless: bool,
    look: ScanLook,
    rng: &mut StdRng,
) -> GrayImage {
    let ppm = dpi as f64 / 25.4;
    let (w, h) = (
        ((210.0 + 2.0 * BED_MARGIN_MM) * ppm).round() as u32,
        ((297.0 + 2.0 * BED_MARGIN_MM) * ppm).round() as u32,
    );
    let mut theta = rng.gen_range(-3.0f64..3.0).to_radians();
    if upside_down {
        theta += std::f64::consts::PI;
    }
    let scale = rng.gen_range(0.97..1.03);
    let (mut sx, mut sy) = (
        rng.gen_range(-3.0..3.0) * ppm,
        rng.gen_range(-3.0..3.0) * ppm,
    );
    // Beyond the paper: the white lid, or a darker one; with the darker one
    // the sheet lies against a corner of the window, less skewed.
    let lid = if look.dark_lid {
        theta = if upside_down {
            std::f64::consts::PI
        } else {
            0.0
        } + rng.gen_range(-0.8f64..0.8).to_radians();
        sx = rng.gen_range(3.5..5.5) * ppm * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
        sy = rng.gen_range(3.5..5.5) * ppm * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
        Some(rng.gen_range(110.0..215.0))
    } else {
        None
    };
    let (sin, cos) = theta.sin_cos();
    let (cx, cy) = (page.width() as f64 / 2.0, page.height() as f64 / 2.0);
    let (ox, oy) = (w as f64 / 2.0 + sx, h as f64 / 2.0 + sy);
    let paper: f64 = rng.gen_range(232.0..250.0);
    let floor: f64 = rng.gen_range(12.0..45.0);
    let mut out = GrayImage::new(w, h);
    let (pw, ph) = (page.width() as f64, page.height() as f64);
    for y in 0..h {
        for x in 0..w {
            // Output pixel back to the page: undo shift, rotation and scale.
            let (dx, dy) = (x as f64 + 0.5 - ox, y as f64 + 0.5 - oy);
            let u = (dx * cos + dy * sin) / scale + cx - 0.5;
            let v = (-dx * sin + dy * cos) / scale + cy - 0.5;
            let off = u < 0.0 || v < 0.0 || u >= pw - 1.0 || v >= ph - 1.0;
            let val = if off {
                255.0
            } else {
                let (x0, y0) = (u.floor(), v.floor());
                let (fx, fy) = (u - x0, v - y0);
                let p = |a: u32, b: u32| page.get_pixel(x0 as u32 + a, y0 as u32 + b)[0] as f64;
                p(0, 0) * (1.0 - fx) * (1.0 - fy)
                    + p(1, 0) * fx * (1.0 - fy)
                    + p(0, 1) * (1.0 - fx) * fy
                    + p(1, 1) * fx * fy
            };
            let tone = match lid {
                Some(l) if off => l,
                _ => floor + (paper - floor) * val / 255.0,
            };
            out.put_pixel(x, y, Luma([tone as u8]));
        }
    }
    // Sensor noise goes in before the optics blur it, which keeps it at the
    // grain real scanners show (and JPEG files at a realistic size).
    let noise_sd = rng.gen_range(1.0..3.0);
    let normal = Normal::new(0.0, noise_sd).expect("positive sd");
    for p in out.pixels_mut() {
        p[0] = (p[0] as f64 + normal.sample(rng)).clamp(0.0, 255.0) as u8;
    }
    let sigma = rng.gen_range(0.6..1.0) * dpi as f32 / 300.0;
    let mut out = imageproc::filter::gaussian_blur_f32(&out, sigma);
    if look.bilevel {
        // The scanner's black level: a faint stroke keeps only its darkest
        // grains, or nothing.
        let level = rng.gen_range(110.0..150.0) as u8;
        for p in out.pixels_mut() {
            p[0] = if p[0] < level { 0 } else { 255 };
        }
    } else if lossless {
        // Lossless formats are what scanners write after removing the paper
        // tone; without that, the grain would make them ten times larger.
        let clip = (paper - 12.0) as u8;
        for p in out.pixels_mut() {
            if p[0] >= clip {
                p[0] = 255;
            }
        }
    }
    out
}

fn jpeg(img: &GrayImage, dpi: u32) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, 85);
    enc.set_pixel_density(image::codecs::jpeg::PixelDensity::dpi(dpi as u16));
    enc.encode_image(img)?;
    Ok(data)
}

fn encode(images: &[(GrayImage, u32)], format: Format) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        Format::Png => {
            images[0]
                .0
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
        }
        Format::Jpeg => out = jpeg(&images[0].0, images[0].1)?,
        Format::Pdf => {
            let pages = images
                .iter()
                .map(|(img, dpi)| {
                    Ok(PdfPage {
                        width_pt: img.width() as f64 * 72.0 / *dpi as f64,
                        height_pt: img.height() as f64 * 72.0 / *dpi as f64,
                        image: crate::pdfwrite::PdfImage::Jpeg {
                            data: jpeg(img, *dpi)?,
                            width: img.width(),
                            height: img.height(),
                            components: 1,
                        },
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            write_pdf(&pages, &mut out)?;
        }
        Format::Tiff => {
            use tiff::encoder::{
                colortype::Gray8, Compression, DeflateLevel, Rational, TiffEncoder,
            };
            use tiff::tags::ResolutionUnit;
            let mut cur = std::io::Cursor::new(&mut out);
            let mut enc = TiffEncoder::new(&mut cur)?
                .with_compression(Compression::Deflate(DeflateLevel::Balanced));
            for (img, dpi) in images {
                let mut ie = enc.new_image::<Gray8>(img.width(), img.height())?;
                ie.resolution(ResolutionUnit::Inch, Rational { n: *dpi, d: 1 });
                ie.write_data(img.as_raw())?;
            }
            cur.flush()?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn my_number_check_digit_follows_the_spec() {
        assert_eq!(my_number_check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]), 8);
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let n = my_number(&mut rng);
            let d: Vec<u8> = n.bytes().map(|b| b - b'0').collect();
            let first: [u8; 11] = d[..11].try_into().unwrap();
            assert_eq!(d[11], my_number_check_digit(&first));
        }
    }

    #[test]
    fn eras_start_on_their_first_day() {
        assert_eq!(era_of(ymd(1989, 1, 7)), Some(Era::Showa));
        assert_eq!(era_of(ymd(1989, 1, 8)), Some(Era::Heisei));
        assert_eq!(era_of(ymd(2019, 4, 30)), Some(Era::Heisei));
        assert_eq!(era_of(ymd(2019, 5, 1)), Some(Era::Reiwa));
    }

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn ready() -> bool {
        let ok = mnist::available(&mnist::default_dir()) && render::load_font().is_ok();
        if !ok {
            eprintln!("mnist or CJK font missing; skipping");
        }
        ok
    }

    #[test]
    fn synth_writes_scans_truth_and_register_deterministically() {
        if !ready() {
            return;
        }
        let run = |dir: &Path| {
            synth(&SynthOptions {
                dpi: None,
                digits: DigitSource::Training,
                forms_dir: root().join("forms"),
                mnist_dir: mnist::default_dir(),
                form: None,
                count: 6,
                seed: 7,
                out: dir.to_path_buf(),
                branches: vec!["honcho".into(), "sakura".into()],
            })
            .unwrap()
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sa = run(a.path());
        let sb = run(b.path());
        assert_eq!(sa.pages, 6);
        assert!(sa.to_string().starts_with("6 pages in "));
        assert_eq!(sa.bytes, sb.bytes);
        let reg_a = std::fs::read(a.path().join("register.csv")).unwrap();
        assert_eq!(reg_a, std::fs::read(b.path().join("register.csv")).unwrap());
        assert!(String::from_utf8(reg_a)
            .unwrap()
            .starts_with("atena_no,name,kana,birth_date,sex,address\n"));
        let mut pages = 0;
        for branch in ["honcho", "sakura"] {
            let Ok(entries) = std::fs::read_dir(a.path().join("truth").join(branch)) else {
                continue;
            };
            for e in entries {
                let t: Truth =
                    serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
                assert!(t.file.starts_with(&format!("{branch}/")));
                assert!(a.path().join("inbox").join(&t.file).exists());
                for p in &t.pages {
                    pages += 1;
                    let date = |id: &str| p.fields[id].as_str().unwrap().to_string();
                    // One week's intake: nothing written after the day it is
                    // taken in, and notifications from the fortnight before.
                    for (id, v) in &p.fields {
                        if let Some(d) = v
                            .as_str()
                            .filter(|v| v.len() == 10 && v.as_bytes()[4] == b'-')
                        {
                            if id != "due_date" {
                                assert!(d <= "2026-11-27", "{id} {d}");
                            }
                        }
                    }
                    if p.side.as_deref() == Some("pregnancy-notification") {
                        assert!(
                            ("2026-11-14".."2026-11-28").contains(&date("notified_on").as_str())
                        );
                        assert!(date("due_date") >= date("notified_on"));
                        assert!(("1975-01-01".."2007-01-01").contains(&date("birth_date").as_str()));
                        assert_eq!(p.fields["my_number"].as_str().unwrap().len(), 12);
                        assert!(p.fields["fetus_count"].is_u64());
                        assert!(p.fields["q_worries"].is_array());
                    }
                }
            }
        }
        assert_eq!(pages, 6);
    }

    /// Regenerates the committed samples/ and seeds/register.csv.
    #[test]
    #[ignore]
    fn make_samples() {
        let out = std::env::var("TODOKE_SAMPLE_OUT").map_or(root().join("samples"), PathBuf::from);
        let _ = std::fs::remove_dir_all(out.join("inbox"));
        let _ = std::fs::remove_dir_all(out.join("truth"));
        let summary = synth(&SynthOptions {
            dpi: None,
            digits: DigitSource::Training,
            forms_dir: root().join("forms"),
            mnist_dir: mnist::default_dir(),
            form: None,
            count: std::env::var("TODOKE_SAMPLE_COUNT").map_or(18, |s| s.parse().unwrap()),
            seed: std::env::var("TODOKE_SAMPLE_SEED").map_or(11, |s| s.parse().unwrap()),
            out: out.clone(),
            branches: vec!["honcho".into(), "sakura".into()],
        })
        .unwrap();
        if out.starts_with(root()) {
            std::fs::rename(out.join("register.csv"), root().join("seeds/register.csv")).unwrap();
        }
        eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    }

    /// Writes PNG previews of sample JPEG/PNG scans to /tmp for eyeballing.
    #[test]
    #[ignore]
    fn preview_samples() {
        for branch in ["honcho", "sakura"] {
            for e in std::fs::read_dir(root().join("samples/inbox").join(branch)).unwrap() {
                let p = e.unwrap().path();
                let Ok(img) = image::open(&p) else { continue };
                let g = img.to_luma8();
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                let (w, h) = (g.width(), g.height());
                let top = image::imageops::crop_imm(&g, 0, 0, w, h / 2).to_image();
                image::imageops::resize(&top, w / 3, h / 6, image::imageops::FilterType::Triangle)
                    .save(format!("/tmp/prev-{name}-top.png"))
                    .unwrap();
                image::imageops::crop_imm(&g, w / 8, h / 8, w / 2, h / 5)
                    .to_image()
                    .save(format!("/tmp/prev-{name}-zoom.png"))
                    .unwrap();
            }
        }
    }

    /// Every sample page decodes and registers as the side and turn its
    /// truth file says (needs pdfium from scripts/setup.sh).
    #[test]
    #[ignore]
    fn samples_decode_and_register_as_their_truth_says() {
        use crate::decode::{decode, pdfium_library_path, DecodeLimits, PdfRenderer};
        let templates = template::load_dir(&root().join("forms")).unwrap();
        let pdf = PdfRenderer::start(&pdfium_library_path());
        let dir = std::env::var("TODOKE_CHECK_DIR").map_or(root().join("samples"), PathBuf::from);
        let mut checked = 0;
        for branch in ["honcho", "sakura"] {
            let Ok(entries) = std::fs::read_dir(dir.join("truth").join(branch)) else {
                continue;
            };
            for e in entries {
                let t: Truth =
                    serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
                let bytes = std::fs::read(dir.join("inbox").join(&t.file)).unwrap();
                let pages = decode(&bytes, &DecodeLimits::default(), &pdf).unwrap();
                assert_eq!(pages.len(), t.pages.len(), "{}", t.file);
                for (p, tp) in pages.iter().zip(&t.pages) {
                    match crate::register::register(&p.image, &templates) {
                        Ok(r) => {
                            assert_eq!(Some(r.side.id.clone()), tp.side, "{} p{}", t.file, tp.page);
                            assert_eq!(r.turned, tp.upside_down, "{} p{}", t.file, tp.page);
                        }
                        Err(e) => assert!(tp.form.is_none(), "{} p{}: {e}", t.file, tp.page),
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 0);
    }
}
