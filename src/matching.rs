//! Matching stage: the resident register and the gate in front of it.
//!
//! A page may enter the core system only when its addressee number and its
//! birthdate both belong to one and the same register row. Candidates are
//! computed for the staff who review mismatches; they never turn a mismatch
//! into a match.

use crate::digits::CellReading;
use crate::template::Era;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Register column names; municipalities export with their own headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterMapping {
    pub atena_no: String,
    pub birth_date: String,
    pub name: String,
}

impl Default for RegisterMapping {
    fn default() -> Self {
        RegisterMapping {
            atena_no: "atena_no".into(),
            birth_date: "birth_date".into(),
            name: "name".into(),
        }
    }
}

/// One resident. Debug is hand-written so that logging a row leaks nothing.
#[derive(Clone)]
pub struct Person {
    pub atena_no: String,
    pub birth_date: NaiveDate,
    pub name: String,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Person {{ .. }}")
    }
}

pub struct Register {
    pub people: Vec<Person>,
    by_atena: HashMap<String, usize>,
    by_birth: HashMap<NaiveDate, Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum MatchOutcome {
    /// Exactly one row has both values.
    Matched {
        row: usize,
    },
    RegisterNotFound,
    BirthdateMismatch {
        row: usize,
    },
    /// atena_no or birthdate was not read well enough to try.
    NotAttempted,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatchResult {
    pub outcome: MatchOutcome,
    /// Nearest rows first, at most three.
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub row: usize,
    /// Smaller is nearer.
    pub distance: u32,
    /// Why this row is offered, in terms of the reading only: a code with
    /// its numbers (`cell_would_be:3:4:5`) that `i18n::why_text` words.
    pub why: String,
}

/// The key cells of a page as read: what `vouch` weighs the register's
/// rows against.
#[derive(Debug, Clone, Copy)]
pub struct KeyCells<'a> {
    pub atena: &'a [CellReading],
    /// YYMMDD of the birthdate.
    pub birth: &'a [CellReading],
    /// `None` when the era is printed; else the chance its tick was misjudged.
    pub era_doubt: Option<f32>,
}

/// When the register may vouch for key cells the reader is not sure of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VouchPolicy {
    /// Every key cell at least this sure.
    pub cell_floor: f32,
    /// The summed odds of every other register row against the row as read.
    pub max_rivals: f64,
}

/// What the register says about a doubtful reading of the keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Vouch {
    /// Exactly one row holds both keys as read, every key cell is above the
    /// floor and no other row is a plausible reading.
    Vouched { row: usize },
    /// One row holds both keys as read, but that is not enough; `why` is a
    /// code with its number (`weak_cell:0.62`), worded by `i18n`.
    Doubtful { row: usize, why: String },
    /// No row holds both keys as read.
    NoRow,
}

/// What `vouch` weighed, filled only when a caller asks (`vouch_traced`,
/// used by `todoke explain`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct VouchTrace {
    /// The row holding both keys as read, if one does.
    pub row: Option<usize>,
    /// The least sure key cell.
    pub weakest_cell: Option<f32>,
    /// The summed odds of every other row against the row as read.
    pub rivals: Option<f64>,
    pub cell_floor: f32,
    pub max_rivals: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot read register {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("register {path} line {line}: neither UTF-8 nor CP932 (bytes {bytes} at byte offset {offset} cannot be decoded)")]
    Encoding {
        path: PathBuf,
        line: usize,
        offset: usize,
        /// The offending bytes in hex, e.g. `FF FF`.
        bytes: String,
    },
    #[error("register {path} line {line}: {problem}")]
    Malformed {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("register {path} line {line}, column {column}: {problem}")]
    BadValue {
        path: PathBuf,
        line: usize,
        column: String,
        problem: String,
    },
}

impl MatchResult {
    pub fn is_match(&self) -> bool {
        matches!(self.outcome, MatchOutcome::Matched { .. })
    }

    /// The reason code for mismatches.csv, if any.
    pub fn reason(&self) -> Option<&'static str> {
        match self.outcome {
            MatchOutcome::Matched { .. } | MatchOutcome::NotAttempted => None,
            MatchOutcome::RegisterNotFound => Some("register_not_found"),
            MatchOutcome::BirthdateMismatch { .. } => Some("birthdate_mismatch"),
        }
    }
}

impl Register {
    pub fn load(path: &Path, mapping: &RegisterMapping) -> Result<Register, RegisterError> {
        let bytes = std::fs::read(path).map_err(|source| RegisterError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = decode_text(&bytes).map_err(|bad| RegisterError::Encoding {
            path: path.to_path_buf(),
            line: bad.line,
            offset: bad.offset,
            bytes: bad.bytes,
        })?;
        Register::parse(&text, mapping).map_err(|e| e.at(path))
    }

    /// Parses register CSV text. Errors carry an empty path; `load` fills it.
    pub fn parse(text: &str, mapping: &RegisterMapping) -> Result<Register, RegisterError> {
        let malformed = |line: usize, problem: String| RegisterError::Malformed {
            path: PathBuf::new(),
            line,
            problem,
        };
        let bad = |line: usize, column: &str, problem: &str| RegisterError::BadValue {
            path: PathBuf::new(),
            line,
            column: column.to_string(),
            problem: problem.to_string(),
        };
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(text.as_bytes());
        let headers = rdr
            .headers()
            .map_err(|e| malformed(1, e.to_string()))?
            .clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| bad(1, name, "no such column in the header"))
        };
        let (ia, ib, iname) = (
            col(&mapping.atena_no)?,
            col(&mapping.birth_date)?,
            col(&mapping.name)?,
        );
        let mut people = Vec::new();
        let mut by_atena = HashMap::new();
        let mut by_birth: HashMap<NaiveDate, Vec<usize>> = HashMap::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                malformed(line, e.to_string())
            })?;
            let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
            let atena = rec.get(ia).unwrap_or("").trim().to_string();
            if atena.is_empty() {
                return Err(bad(line, &mapping.atena_no, "empty"));
            }
            if !atena.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad(line, &mapping.atena_no, "not all digits"));
            }
            let birth = parse_date(rec.get(ib).unwrap_or("")).ok_or_else(|| {
                bad(
                    line,
                    &mapping.birth_date,
                    "not a date (YYYY-MM-DD, YYYYMMDD or YYYY/MM/DD)",
                )
            })?;
            if by_atena.insert(atena.clone(), people.len()).is_some() {
                return Err(bad(line, &mapping.atena_no, "duplicate addressee number"));
            }
            by_birth.entry(birth).or_default().push(people.len());
            people.push(Person {
                atena_no: atena,
                birth_date: birth,
                name: rec.get(iname).unwrap_or("").trim().to_string(),
            });
        }
        Ok(Register {
            people,
            by_atena,
            by_birth,
        })
    }

    /// A register with no rows: every match fails, nothing is offered.
    pub fn empty() -> Register {
        Register {
            people: Vec::new(),
            by_atena: HashMap::new(),
            by_birth: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.people.len()
    }

    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }
}

impl RegisterError {
    fn at(self, p: &Path) -> RegisterError {
        match self {
            RegisterError::Malformed { line, problem, .. } => RegisterError::Malformed {
                path: p.to_path_buf(),
                line,
                problem,
            },
            RegisterError::BadValue {
                line,
                column,
                problem,
                ..
            } => RegisterError::BadValue {
                path: p.to_path_buf(),
                line,
                column,
                problem,
            },
            other => other,
        }
    }
}

/// Where a register is neither UTF-8 nor CP932.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// 1-based line of the first byte CP932 cannot decode.
    pub line: usize,
    /// Byte offset in the file (after any UTF-8 BOM).
    pub offset: usize,
    pub bytes: String,
}

/// UTF-8 (with or without BOM) when valid, else CP932. A file that is
/// valid UTF-8 is taken as UTF-8 even if it would also decode as CP932:
/// the converse guess would turn every kana of a UTF-8 file into mojibake,
/// while CP932 text almost never happens to be valid UTF-8.
pub fn decode_text(bytes: &[u8]) -> Result<String, Undecodable> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let utf8_error = match std::str::from_utf8(bytes) {
        Ok(s) => return Ok(s.to_string()),
        Err(e) => e,
    };
    // Neither decodes: the bad bytes are where the file's own encoding
    // fails, and that is the encoding that got further. (A UTF-8 file with
    // one stray byte fails as CP932 at its first Japanese name.)
    let at_utf8 = |start: usize| {
        let len = utf8_error.error_len().unwrap_or(bytes.len() - start);
        Undecodable {
            line: 1 + bytes[..start].iter().filter(|&&b| b == b'\n').count(),
            offset: start,
            bytes: bytes[start..start + len]
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    };
    let mut decoder = encoding_rs::SHIFT_JIS.new_decoder_without_bom_handling();
    let mut text = String::with_capacity(bytes.len() * 3 / 2 + 16);
    let mut read = 0;
    loop {
        let (result, n) =
            decoder.decode_to_string_without_replacement(&bytes[read..], &mut text, true);
        read += n;
        match result {
            encoding_rs::DecoderResult::InputEmpty => return Ok(text),
            encoding_rs::DecoderResult::OutputFull => {
                text.reserve(bytes.len() - read + 16);
            }
            encoding_rs::DecoderResult::Malformed(bad, after) => {
                // `read` is past the malformed bytes and the `after` bytes
                // the decoder looked at beyond them.
                let end = read - after as usize;
                let start = end - bad as usize;
                if utf8_error.valid_up_to() > start {
                    return Err(at_utf8(utf8_error.valid_up_to()));
                }
                return Err(Undecodable {
                    line: 1 + bytes[..start].iter().filter(|&&b| b == b'\n').count(),
                    offset: start,
                    bytes: bytes[start..end]
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                });
            }
        }
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

/// The gate: `Matched` only for one row holding both values exactly.
pub fn match_person(
    register: &Register,
    atena_no: Option<&str>,
    birth_date: Option<NaiveDate>,
    atena_cells: &[CellReading],
) -> MatchResult {
    let outcome = match (atena_no, birth_date) {
        (Some(a), Some(b)) => match register.by_atena.get(a) {
            Some(&row) if register.people[row].birth_date == b => MatchOutcome::Matched { row },
            Some(&row) => MatchOutcome::BirthdateMismatch { row },
            None => MatchOutcome::RegisterNotFound,
        },
        _ => MatchOutcome::NotAttempted,
    };
    let candidates = if matches!(outcome, MatchOutcome::Matched { .. }) {
        Vec::new()
    } else {
        candidates(register, atena_no, birth_date, atena_cells)
    };
    MatchResult {
        outcome,
        candidates,
    }
}

/// Whether the register vouches for keys read with some doubt.
///
/// The keys as read must name one row exactly. The risk is then that the
/// paper names another person and misreads made it look like this one: for
/// every other row, the odds that the cells show its keys rather than the
/// keys as read are the product, over the cells where the two differ, of
/// the reader's probability for the other digit over its probability for
/// the digit read. Their sum must stay under `max_rivals`. A twin (same
/// birthdate, atena one digit away) is the row this is for.
pub fn vouch(
    register: &Register,
    atena_no: &str,
    birth_date: NaiveDate,
    cells: &KeyCells<'_>,
    policy: &VouchPolicy,
) -> Vouch {
    vouch_traced(register, atena_no, birth_date, cells, policy, None)
}

/// `vouch`, recording in `trace` (when given) the row, the weakest key
/// cell and the rivals' summed odds.
pub fn vouch_traced(
    register: &Register,
    atena_no: &str,
    birth_date: NaiveDate,
    cells: &KeyCells<'_>,
    policy: &VouchPolicy,
    mut trace: Option<&mut VouchTrace>,
) -> Vouch {
    if let Some(t) = trace.as_deref_mut() {
        t.cell_floor = policy.cell_floor;
        t.max_rivals = policy.max_rivals;
    }
    let Some(&row) = register.by_atena.get(atena_no) else {
        return Vouch::NoRow;
    };
    if register.people[row].birth_date != birth_date {
        return Vouch::NoRow;
    }
    if let Some(t) = trace.as_deref_mut() {
        t.row = Some(row);
    }
    let doubtful = |why: String| Vouch::Doubtful { row, why };
    let Some((read_era, read_birth)) = era_digits(birth_date) else {
        return doubtful("outside_eras".into());
    };
    let read_atena: Vec<u8> = atena_no.bytes().map(|b| b - b'0').collect();
    if cells.atena.len() != read_atena.len() || cells.birth.len() != 6 {
        return doubtful("cells_misfit".into());
    }
    let weakest = cells
        .atena
        .iter()
        .chain(cells.birth)
        .map(|c| c.confidence)
        .fold(1.0f32, f32::min);
    if let Some(t) = trace.as_deref_mut() {
        t.weakest_cell = Some(weakest);
    }
    if weakest < policy.cell_floor {
        return doubtful(format!("weak_cell:{weakest:.2}"));
    }
    let mut rivals = 0.0f64;
    for (other, p) in register.people.iter().enumerate() {
        if other == row || p.atena_no.len() != read_atena.len() {
            continue;
        }
        let mut odds = 1.0f64;
        for (i, b) in p.atena_no.bytes().enumerate() {
            if b - b'0' != read_atena[i] {
                odds *= cells.atena[i].odds_of(b - b'0');
                // Most rows differ in most cells: stop once they cannot matter.
                if odds < 1e-12 {
                    break;
                }
            }
        }
        if odds < 1e-12 {
            continue;
        }
        let Some((era, theirs)) = era_digits(p.birth_date) else {
            continue;
        };
        if era != read_era {
            match cells.era_doubt {
                Some(doubt) => odds *= f64::from(doubt.max(1e-4)),
                None => continue,
            }
        }
        for j in 0..6 {
            if theirs[j] != read_birth[j] {
                odds *= cells.birth[j].odds_of(theirs[j]);
            }
        }
        rivals += odds;
    }
    if let Some(t) = trace {
        t.rivals = Some(rivals);
    }
    if rivals > policy.max_rivals {
        return doubtful(format!("rival:{rivals:.1e}"));
    }
    Vouch::Vouched { row }
}

/// How `date` is written in the boxes: its era and YYMMDD.
pub fn era_digits(date: NaiveDate) -> Option<(Era, [u8; 6])> {
    let (era, offset) = if date >= NaiveDate::from_ymd_opt(2019, 5, 1)? {
        (Era::Reiwa, 2018)
    } else if date >= NaiveDate::from_ymd_opt(1989, 1, 8)? {
        (Era::Heisei, 1988)
    } else if date >= NaiveDate::from_ymd_opt(1926, 12, 25)? {
        (Era::Showa, 1925)
    } else {
        return None;
    };
    let yy = u32::try_from(date.year() - offset).ok()?;
    if yy > 99 {
        return None;
    }
    let two = |n: u32| [(n / 10) as u8, (n % 10) as u8];
    let (y, m, d) = (two(yy), two(date.month()), two(date.day()));
    Some((era, [y[0], y[1], m[0], m[1], d[0], d[1]]))
}

/// Rows a reviewer most likely means, nearest first.
fn candidates(
    register: &Register,
    atena_no: Option<&str>,
    birth_date: Option<NaiveDate>,
    cells: &[CellReading],
) -> Vec<Candidate> {
    let mut found: HashMap<usize, Candidate> = HashMap::new();
    let mut offer = |row: usize, distance: u32, why: String| {
        let better = found.get(&row).is_none_or(|c| distance < c.distance);
        if better {
            found.insert(row, Candidate { row, distance, why });
        }
    };
    let birth_ok = |row: usize| birth_date.is_some_and(|b| register.people[row].birth_date == b);
    // The atena as read, with unreadable cells as '?', so partial reads still help.
    let read: Vec<char> = match atena_no {
        Some(a) => a.chars().collect(),
        None => cells
            .iter()
            .map(|c| c.digit.map(|d| char::from(b'0' + d)).unwrap_or('?'))
            .collect(),
    };
    if let Some(a) = atena_no {
        if let Some(&row) = register.by_atena.get(a) {
            offer(row, 2, "atena_match_birth_differs".into());
            // The era box one off (平成 ticked for 昭和 …) moves the year by
            // the difference of the adjacent eras' offsets; a birthdate that
            // differs by exactly that is the likelier explanation.
            if let Some(b) = birth_date {
                let theirs = register.people[row].birth_date;
                let shift = theirs.year() - b.year();
                if (theirs.month(), theirs.day()) == (b.month(), b.day())
                    && ERA_SHIFTS.contains(&shift)
                {
                    offer(row, 1, "atena_match_era_off".into());
                }
            }
        }
    }
    if !read.is_empty() {
        for (row, p) in register.people.iter().enumerate() {
            // Only rows one or two cells away are offered; the others are
            // passed over before anything is allocated for them, as they
            // are almost every row of a city's register.
            if p.atena_no.len() != read.len() || !within_two(&read, &p.atena_no) {
                continue;
            }
            let theirs: Vec<char> = p.atena_no.chars().collect();
            let diffs: Vec<usize> = (0..read.len()).filter(|&i| read[i] != theirs[i]).collect();
            let bonus = if birth_ok(row) { 0 } else { 3 };
            match diffs.as_slice() {
                [] => {}
                [i] => {
                    let second = cells.get(*i).and_then(|c| c.second);
                    let want = theirs[*i].to_digit(10).map(|d| d as u8);
                    if second.is_some() && second == want {
                        offer(
                            row,
                            bonus,
                            format!("cell_second_choice:{}:{}:{}", i + 1, read[*i], theirs[*i]),
                        );
                    } else {
                        offer(
                            row,
                            1 + bonus,
                            format!("cell_would_be:{}:{}:{}", i + 1, read[*i], theirs[*i]),
                        );
                    }
                }
                [i, j] if *j == i + 1 && read[*i] == theirs[*j] && read[*j] == theirs[*i] => {
                    offer(row, 1 + bonus, format!("cells_swapped:{}:{}", i + 1, j + 1))
                }
                _ => {}
            }
        }
    }
    if let Some(b) = birth_date {
        for &row in register.by_birth.get(&b).into_iter().flatten() {
            let dist = edit_distance(
                &read,
                &register.people[row].atena_no.chars().collect::<Vec<_>>(),
            );
            if dist <= 3 {
                offer(
                    row,
                    3 + dist as u32,
                    match dist {
                        0 => "birth_same_atena_same".to_string(),
                        _ => format!("birth_same_atena_off:{dist}"),
                    },
                );
            }
        }
    }
    let mut out: Vec<Candidate> = found.into_values().collect();
    out.sort_by_key(|c| (c.distance, c.row));
    out.truncate(3);
    out
}

/// Whether `theirs` (ASCII digits, as long as `read`) differs from `read`
/// in at most two places.
fn within_two(read: &[char], theirs: &str) -> bool {
    let mut differ = 0;
    for (r, t) in read.iter().zip(theirs.bytes()) {
        if *r != char::from(t) {
            differ += 1;
            if differ > 2 {
                return false;
            }
        }
    }
    true
}

/// Year differences between adjacent eras: 昭和↔平成 (1988 − 1925) and
/// 平成↔令和 (2018 − 1988).
const ERA_SHIFTS: [i32; 4] = [-63, 63, -30, 30];

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "atena_no,name,birth_date\n\
        0000012345,佐藤花子,1992-04-01\n\
        0000012346,鈴木一美,1992-04-01\n\
        0000019345,高橋恵,1988-07-15\n\
        0000054321,田中優子,19900202\n";

    fn reg() -> Register {
        Register::parse(REG, &RegisterMapping::default()).unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn only_an_exact_double_match_passes() {
        let r = reg();
        let m = match_person(&r, Some("0000012345"), Some(date("1992-04-01")), &[]);
        assert_eq!(m.outcome, MatchOutcome::Matched { row: 0 });
        // The decoy shares the birthdate; a misread last digit must not land on her.
        let m = match_person(&r, Some("0000012347"), Some(date("1992-04-01")), &[]);
        assert_eq!(m.outcome, MatchOutcome::RegisterNotFound);
        assert!(m.candidates.iter().any(|c| c.row == 0) && m.candidates.iter().any(|c| c.row == 1));
        let m = match_person(&r, Some("0000012345"), Some(date("1992-04-02")), &[]);
        assert_eq!(m.outcome, MatchOutcome::BirthdateMismatch { row: 0 });
        assert_eq!(m.candidates[0].row, 0);
        let m = match_person(&r, None, Some(date("1992-04-01")), &[]);
        assert_eq!(m.outcome, MatchOutcome::NotAttempted);
        assert!(!m.is_match());
    }

    #[test]
    fn the_second_choice_of_a_cell_ranks_first() {
        let r = reg();
        let mut cells: Vec<CellReading> = "0000012345"
            .chars()
            .map(|c| CellReading::only(c.to_digit(10).map(|d| d as u8), 0.99))
            .collect();
        cells[6].digit = Some(9);
        cells[6].second = Some(2);
        let m = match_person(&r, Some("0000019345"), Some(date("1992-04-01")), &cells);
        assert_eq!(m.outcome, MatchOutcome::BirthdateMismatch { row: 2 });
        assert_eq!(m.candidates[0].row, 0, "{:?}", m.candidates);
        assert!(m.candidates[0].why.starts_with("cell_second_choice:"));
    }

    fn read_as(digits: &str, confidence: f32) -> Vec<CellReading> {
        digits
            .bytes()
            .map(|b| CellReading::only(Some(b - b'0'), confidence))
            .collect()
    }

    #[test]
    fn era_digits_write_dates_as_on_the_form() {
        assert_eq!(
            era_digits(date("1992-04-01")),
            Some((Era::Heisei, [0, 4, 0, 4, 0, 1]))
        );
        assert_eq!(
            era_digits(date("1989-01-07")),
            Some((Era::Showa, [6, 4, 0, 1, 0, 7]))
        );
        assert_eq!(
            era_digits(date("2019-05-01")),
            Some((Era::Reiwa, [0, 1, 0, 5, 0, 1]))
        );
        assert_eq!(era_digits(date("1900-01-01")), None);
    }

    #[test]
    fn the_register_vouches_only_when_no_other_row_is_a_plausible_reading() {
        let r = reg();
        let policy = VouchPolicy {
            cell_floor: 0.9,
            max_rivals: 1e-3,
        };
        let birth = read_as("040401", 0.95);
        // 田中 has no near rival: her keys read at 0.95 a cell are vouched for.
        let atena = read_as("0000054321", 0.95);
        let keys = KeyCells {
            atena: &atena,
            birth: &read_as("020202", 0.95),
            era_doubt: Some(0.0),
        };
        let v = vouch(&r, "0000054321", date("1990-02-02"), &keys, &policy);
        assert_eq!(v, Vouch::Vouched { row: 3 });
        // 佐藤 has a twin-like row: same birthdate, last digit 6 instead of 5.
        // Sure cells leave the twin implausible ...
        let sure = read_as("0000012345", 0.9995);
        let keys = KeyCells {
            atena: &sure,
            birth: &birth,
            era_doubt: Some(0.0),
        };
        let v = vouch(&r, "0000012345", date("1992-04-01"), &keys, &policy);
        assert_eq!(v, Vouch::Vouched { row: 0 });
        // ... but a last cell whose runner-up is the twin's digit does not.
        let mut doubtful = sure.clone();
        doubtful[9].confidence = 0.93;
        doubtful[9].second = Some(6);
        doubtful[9].second_confidence = 0.06;
        let keys = KeyCells {
            atena: &doubtful,
            ..keys
        };
        let v = vouch(&r, "0000012345", date("1992-04-01"), &keys, &policy);
        assert!(matches!(v, Vouch::Doubtful { row: 0, .. }), "{v:?}");
        // A cell under the floor is never vouched for, and keys naming no
        // one are not the register's to vouch for.
        let weak = read_as("0000054321", 0.8);
        let keys = KeyCells {
            atena: &weak,
            birth: &read_as("020202", 0.95),
            era_doubt: Some(0.0),
        };
        let v = vouch(&r, "0000054321", date("1990-02-02"), &keys, &policy);
        assert!(matches!(v, Vouch::Doubtful { row: 3, .. }), "{v:?}");
        let v = vouch(&r, "0000054322", date("1990-02-02"), &keys, &policy);
        assert_eq!(v, Vouch::NoRow);
    }

    #[test]
    fn malformed_registers_name_line_and_column() {
        let bad_date = "atena_no,name,birth_date\n1,a,1990-01-01\n2,b,1990-13-01\n";
        let e = Register::parse(bad_date, &RegisterMapping::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 3") && e.contains("birth_date"), "{e}");
        let dup = "atena_no,name,birth_date\n1,a,1990-01-01\n1,b,1990-01-02\n";
        let e = Register::parse(dup, &RegisterMapping::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 3") && e.contains("duplicate"), "{e}");
        let e = Register::parse("id,name,birth_date\n", &RegisterMapping::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("atena_no"), "{e}");
    }

    #[test]
    fn cp932_registers_are_read() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(REG);
        let text = decode_text(&bytes).unwrap();
        let r = Register::parse(&text, &RegisterMapping::default()).unwrap();
        assert_eq!(r.people[0].name, "佐藤花子");
        assert_eq!(r.people[3].birth_date, date("1990-02-02"));
        assert!(decode_text(&[0x82, 0xA0, 0xFF, 0xFF]).is_err());
    }

    /// Issue 15, item 15: a UTF-8 register with one stray byte was
    /// reported at its first Japanese name (where CP932 decoding fails).
    #[test]
    fn an_undecodable_register_names_the_line_of_the_bad_byte() {
        let mut bytes = REG.as_bytes().to_vec();
        let lines = REG.lines().count();
        bytes.extend_from_slice(b"9999,\xFF\xFE,1990-01-01\n");
        let e = decode_text(&bytes).unwrap_err();
        assert_eq!(e.line, lines + 1, "{e:?}");
        assert_eq!(e.bytes, "FF");
        // A CP932 file with a bad byte is still reported where CP932 fails.
        let mut sjis = encoding_rs::SHIFT_JIS.encode(REG).0.into_owned();
        sjis.extend_from_slice(b"9999,\x82\xFF,1990-01-01\n");
        assert_eq!(decode_text(&sjis).unwrap_err().line, lines + 1);
    }

    #[test]
    fn a_person_debug_shows_nothing_personal() {
        assert_eq!(format!("{:?}", reg().people[0]), "Person { .. }");
    }
    #[test]
    fn registers_load_as_utf8_with_bom_or_cp932_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let sjis = dir.path().join("sjis.csv");
        std::fs::write(&sjis, encoding_rs::SHIFT_JIS.encode(REG).0).unwrap();
        let bom = dir.path().join("bom.csv");
        std::fs::write(&bom, [b"\xEF\xBB\xBF".as_slice(), REG.as_bytes()].concat()).unwrap();
        for p in [&sjis, &bom] {
            let r = Register::load(p, &RegisterMapping::default()).unwrap();
            assert_eq!(r.len(), 4);
            assert_eq!(r.people[1].name, "鈴木一美");
        }
        let broken = dir.path().join("broken.csv");
        std::fs::write(
            &broken,
            b"atena_no,name,birth_date\n1,\x82\xA0,1990-01-01\n2,\xFF,1990-01-02\n",
        )
        .unwrap();
        let e = Register::load(&broken, &RegisterMapping::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 3") && e.contains("FF"), "{e}");
    }

    #[test]
    fn mapped_columns_and_their_errors() {
        let mapping = RegisterMapping {
            atena_no: "宛名番号".into(),
            birth_date: "生年月日".into(),
            name: "氏名".into(),
        };
        let r =
            Register::parse("氏名,宛名番号,生年月日\n山田,0001,1990/01/02\n", &mapping).unwrap();
        assert_eq!(r.people[0].birth_date, date("1990-01-02"));
        let e = Register::parse("氏名,宛名,生年月日\n山田,0001,1990/01/02\n", &mapping)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 1, column 宛名番号"), "{e}");
        let e = Register::parse(
            "氏名,宛名番号,生年月日\n山田,0001,1990/01/02\n川田, ,1990/01/03\n",
            &mapping,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("line 3, column 宛名番号: empty"), "{e}");
    }

    #[test]
    fn candidates_explain_swaps_and_era_slips_but_never_match() {
        let r = reg();
        // Cells 9 and 10 swapped, birthdate right: offered, still not found.
        let m = match_person(&r, Some("0000012354"), Some(date("1992-04-01")), &[]);
        assert_eq!(m.outcome, MatchOutcome::RegisterNotFound);
        assert!(!m.is_match());
        assert!(m
            .candidates
            .iter()
            .any(|c| c.row == 0 && c.why.starts_with("cells_swapped:")));
        // 平成2年2月2日 with 昭和 ticked reads as a valid 昭和2年, 1927.
        let m = match_person(&r, Some("0000054321"), Some(date("1927-02-02")), &[]);
        assert_eq!(m.outcome, MatchOutcome::BirthdateMismatch { row: 3 });
        assert!(
            m.candidates[0].why == "atena_match_era_off",
            "{:?}",
            m.candidates
        );
        assert!(m.candidates.len() <= 3);
        // No personal data in what a log line would show.
        let shown = format!("{:?}", m);
        assert!(
            !shown.contains("高橋") && !shown.contains("1988"),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::time::Instant;

    /// Time of `vouch` and `match_person` against a city-size register
    /// (REGISTER_ROWS, default 300,000 random residents), per page:
    /// `cargo test --release --lib register_at_city_size -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn register_at_city_size() {
        let rows: usize = std::env::var("REGISTER_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300_000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut text = String::from("atena_no,name,birth_date\n");
        let start = NaiveDate::from_ymd_opt(1930, 1, 1).expect("date");
        let mut seen = std::collections::HashSet::new();
        while seen.len() < rows {
            let atena: String = (0..10)
                .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                .collect();
            if !seen.insert(atena.clone()) {
                continue;
            }
            let born = start + chrono::Duration::days(rng.gen_range(0..35_000));
            text.push_str(&format!("{atena},x,{born}\n"));
        }
        let t = Instant::now();
        let register = Register::parse(&text, &RegisterMapping::default()).expect("register");
        let load = t.elapsed().as_secs_f64();
        let people: Vec<(String, NaiveDate)> = (0..200)
            .map(|_| {
                let p = &register.people[rng.gen_range(0..register.len())];
                (p.atena_no.clone(), p.birth_date)
            })
            .collect();
        let policy = VouchPolicy {
            cell_floor: 0.5,
            max_rivals: 1e-3,
        };
        let t = Instant::now();
        let mut vouched = 0;
        for (atena, born) in &people {
            let (_, yymmdd) = era_digits(*born).expect("era");
            let birth: String = yymmdd.iter().map(|d| char::from(b'0' + d)).collect();
            let (a, b) = (read_as_doubtful(atena), read_as_doubtful(&birth));
            let keys = KeyCells {
                atena: &a,
                birth: &b,
                era_doubt: Some(0.001),
            };
            vouched += matches!(
                vouch(&register, atena, *born, &keys, &policy),
                Vouch::Vouched { .. }
            ) as usize;
        }
        let per_vouch = t.elapsed().as_secs_f64() / people.len() as f64;
        let t = Instant::now();
        for (atena, born) in &people {
            // A misread last digit: no row, so the candidates are searched.
            let mut wrong = atena.clone().into_bytes();
            wrong[9] = b'0' + (wrong[9] - b'0' + 1) % 10;
            let wrong = String::from_utf8(wrong).expect("ascii");
            let cells = read_as_doubtful(&wrong);
            match_person(&register, Some(&wrong), Some(*born), &cells);
        }
        let per_match = t.elapsed().as_secs_f64() / people.len() as f64;
        println!(
            "{} rows: load {load:.2} s; vouch {:.2} ms ({vouched} of {} vouched); match with candidates {:.2} ms",
            register.len(),
            per_vouch * 1e3,
            people.len(),
            per_match * 1e3
        );
    }

    /// Cells read right, each 0.97 sure with a runner-up.
    fn read_as_doubtful(digits: &str) -> Vec<CellReading> {
        digits
            .bytes()
            .map(|b| {
                let d = b - b'0';
                CellReading {
                    second: Some((d + 1) % 10),
                    second_confidence: 0.02,
                    ..CellReading::only(Some(d), 0.97)
                }
            })
            .collect()
    }
}
