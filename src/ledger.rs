//! The ledger: every scan the daemon has taken, what became of it, and the
//! batches it went into, in SQLite (WAL). It is what makes "exactly once"
//! survive a crash: each step commits in one transaction, and a step found
//! unfinished at start is redone from what the ledger says.
//!
//! A scan's states: `received` (taken into the work area) → `read` (its
//! pages stored) or `quarantined` (unreadable, or a duplicate file); at a
//! batch close every read or quarantined scan not yet in a batch is given
//! that batch, and once the batch is published a read scan becomes
//! `in_batch` (every page validated or skipped) or `mismatch`. A read scan
//! whose file changed after its read is put back to `received` at the next
//! close (`reopen_changed`), before the batch takes anything.

use crate::emit::{PageRecord, PageStatus, QuarantineEntry};
use base64::Engine as _;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Ledger {
    conn: Connection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanState {
    Received,
    Read,
    Quarantined,
    InBatch,
    Mismatch,
}

/// A scan taken but not yet read.
#[derive(Debug, Clone)]
pub struct PendingScan {
    pub id: i64,
    /// Relative to the work folder.
    pub work_path: String,
    /// `<branch>/<name>` as dropped.
    pub source: String,
    pub branch: String,
    /// Tries at reading it so far (a try interrupted by a stop or a crash).
    pub attempts: i64,
}

/// What `receive` made of a new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    New(i64),
    /// Same bytes as an earlier scan: recorded, quarantined, never read twice.
    Duplicate {
        id: i64,
        first_source: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchRow {
    pub id: String,
    pub state: String,
    pub closed_at: Option<String>,
    pub scans: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub by_state: BTreeMap<String, i64>,
    /// Scans read or quarantined since the last close, by branch.
    pub open_by_branch: BTreeMap<String, i64>,
    /// Taken but not yet read, by branch.
    pub received_by_branch: BTreeMap<String, i64>,
    pub last_batch: Option<BatchRow>,
    pub heartbeat: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("ledger: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("ledger holds a record that does not parse (scan {scan}, page {page}): {source}")]
    Record {
        scan: i64,
        page: i64,
        source: serde_json::Error,
    },
    #[error("ledger: batch {0} is not being closed")]
    NoSuchBatch(String),
    /// Written by a newer todoke: opening it would let this one write rows
    /// the newer schema does not expect, so it is left untouched.
    #[error("ledger {path} has schema version {found}, newer than the {known} this todoke knows: install that todoke again (or a newer one), or restore the ledger from its backup")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "ledger {path}: migrating schema {from} to {to} failed, nothing was changed: {source}"
    )]
    Migrate {
        path: PathBuf,
        from: i64,
        to: i64,
        source: rusqlite::Error,
    },
}

/// One step of the ledger's schema: the SQL that takes a ledger from the
/// version before `to` up to `to`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub to: i64,
    pub sql: &'static str,
}

/// The schema this todoke writes, kept in SQLite's `PRAGMA user_version`.
/// Ledgers written before versions were kept read 0 and already hold
/// SCHEMA's tables, which its `IF NOT EXISTS` leaves as they are. A later
/// change appends a step (`ALTER TABLE …`) rather than editing SCHEMA's.
pub const SCHEMA_VERSION: i64 = 1;

pub const MIGRATIONS: &[Migration] = &[Migration { to: 1, sql: SCHEMA }];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scans(
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    branch TEXT NOT NULL,
    source TEXT NOT NULL,
    work_path TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    reason TEXT,
    quarantine TEXT,
    batch_id TEXT,
    received_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    read_at TEXT,
    batched_at TEXT
);
CREATE INDEX IF NOT EXISTS scans_sha ON scans(sha256);
CREATE INDEX IF NOT EXISTS scans_open ON scans(batch_id, state);
CREATE TABLE IF NOT EXISTS pages(
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    page INTEGER NOT NULL,
    status TEXT NOT NULL,
    page_key TEXT,
    record TEXT NOT NULL,
    images TEXT NOT NULL,
    PRIMARY KEY(scan_id, page)
);
CREATE INDEX IF NOT EXISTS pages_key ON pages(page_key);
CREATE TABLE IF NOT EXISTS corrections(
    scan_id INTEGER NOT NULL,
    page INTEGER NOT NULL,
    page_key TEXT,
    record TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    at TEXT NOT NULL,
    batch_id TEXT,
    PRIMARY KEY(scan_id, page)
);
CREATE TABLE IF NOT EXISTS rejections(
    scan_id INTEGER NOT NULL,
    page INTEGER NOT NULL,
    reason TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY(scan_id, page)
);
-- Who decided what: appended to, never changed.
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    scan_id INTEGER NOT NULL,
    page INTEGER NOT NULL,
    action TEXT NOT NULL,
    field TEXT,
    before TEXT,
    after TEXT,
    reason TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS batches(
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT
);
";

fn now() -> String {
    chrono::Local::now().to_rfc3339()
}

/// A validated page's identity for duplicate detection: form side and both
/// keys, hashed so the index holds no personal data in clear.
fn page_key(r: &PageRecord) -> Option<String> {
    let side = r.side.as_deref()?;
    let value = |id: &str| {
        r.fields
            .get(id)
            .and_then(|f| f.value.as_str().map(String::from))
    };
    let atena = value("atena_no")?;
    let birth = value("birth_date")?;
    let key = format!("{side}\u{1f}{atena}\u{1f}{birth}");
    Some(hex::encode(Sha256::digest(key.as_bytes())))
}

/// A page record as stored: its JSON and its field images (base64 PNGs).
fn stored_record(
    scan: i64,
    page: i64,
    text: &str,
    images: &str,
) -> Result<PageRecord, LedgerError> {
    let bad = |source| LedgerError::Record { scan, page, source };
    let mut r: PageRecord = serde_json::from_str(text).map_err(bad)?;
    let images: Vec<(String, String)> = serde_json::from_str(images).map_err(bad)?;
    r.images = images
        .into_iter()
        .filter_map(|(f, b)| {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .map(|png| (f, png))
        })
        .collect();
    Ok(r)
}

impl Ledger {
    /// Opens (creating if needed) the ledger, readable by its owner only,
    /// bringing an older schema up to this todoke's in one transaction and
    /// refusing a newer one.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open_with(path, MIGRATIONS)
    }

    /// `open` with the schema steps given: tests play a later todoke.
    pub fn open_with(path: &Path, migrations: &[Migration]) -> Result<Ledger, LedgerError> {
        let err = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        let mut conn = Connection::open(path).map_err(err)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).ok();
        }
        // WAL lets `status` read while the daemon writes; FULL sync makes
        // every committed step survive a power cut, not only a crash.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        migrate(&mut conn, path, migrations)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('created', ?1)",
            params![now()],
        )
        .map_err(err)?;
        Ok(Ledger { conn })
    }

    /// Opens a ledger that `open` has made, without writing anything, and
    /// waits at most `wait` for a lock: for the review page, whose GETs must
    /// not write and which must answer "busy" rather than hang.
    pub fn open_existing(path: &Path, wait: std::time::Duration) -> Result<Ledger, LedgerError> {
        let err = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(wait).map_err(err)?;
        let found = user_version(&conn).map_err(err)?;
        if found > SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        Ok(Ledger { conn })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn knows_work_path(&self, work_path: &str) -> Result<bool, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM scans WHERE work_path = ?1",
                [work_path],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records a file just taken into the work area. A file whose bytes the
    /// ledger already holds is recorded as a quarantined duplicate.
    pub fn receive(
        &mut self,
        sha256: &str,
        branch: &str,
        source: &str,
        work_path: &str,
    ) -> Result<Received, LedgerError> {
        let tx = write(&mut self.conn)?;
        let first: Option<String> = tx
            .query_row(
                "SELECT source FROM scans WHERE sha256 = ?1 ORDER BY id LIMIT 1",
                [sha256],
                |r| r.get(0),
            )
            .optional()?;
        let (state, reason) = match &first {
            Some(s) => (
                "quarantined",
                Some(format!("duplicate_file: same content as {s}")),
            ),
            None => ("received", None),
        };
        tx.execute(
            "INSERT INTO scans(sha256, branch, source, work_path, state, reason, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![sha256, branch, source, work_path, state, reason, now()],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(match first {
            Some(first_source) => Received::Duplicate { id, first_source },
            None => Received::New(id),
        })
    }

    /// Scans taken but not read, oldest first.
    pub fn pending(&self) -> Result<Vec<PendingScan>, LedgerError> {
        let mut st = self.conn.prepare(
            "SELECT id, work_path, source, branch, attempts FROM scans WHERE state = 'received' ORDER BY id",
        )?;
        let rows = st.query_map([], pending_scan)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Takes back a try that failed for want of disk space, which says
    /// nothing about the file.
    pub fn undo_attempt(&self, id: i64) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE scans SET attempts = attempts - 1 WHERE id = ?1 AND attempts > 0",
            [id],
        )?;
        Ok(())
    }

    /// The sha256 recorded for a scan when it was taken.
    pub fn sha_of(&self, id: i64) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row("SELECT sha256 FROM scans WHERE id = ?1", [id], |r| r.get(0))
            .optional()?)
    }

    /// Records the sha256 of what was read, when the file changed after it
    /// was taken (a writer still holding it).
    pub fn set_sha(&self, id: i64, sha256: &str) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE scans SET sha256 = ?2 WHERE id = ?1",
            params![id, sha256],
        )?;
        Ok(())
    }

    /// Scans read and not yet in a batch, each with the sha256 of what was read.
    pub fn read_unbatched(&self) -> Result<Vec<(PendingScan, String)>, LedgerError> {
        let mut st = self.conn.prepare(
            "SELECT id, work_path, source, branch, attempts, sha256 FROM scans
             WHERE state = 'read' AND batch_id IS NULL ORDER BY id",
        )?;
        let rows = st.query_map([], |r| Ok((pending_scan(r)?, r.get(5)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Puts a read scan back to be read again, because its file changed
    /// after the read ended: its pages go, the sha256 of what is there now
    /// is kept, and its tries start again (the change is not the reader's).
    pub fn reopen_changed(&mut self, id: i64, sha256: &str) -> Result<bool, LedgerError> {
        let tx = write(&mut self.conn)?;
        // A batch that took the scan meanwhile keeps what it took.
        let reopened = tx.execute(
            "UPDATE scans SET state = 'received', sha256 = ?2, attempts = 0, read_at = NULL
             WHERE id = ?1 AND state = 'read' AND batch_id IS NULL",
            params![id, sha256],
        )?;
        if reopened == 1 {
            tx.execute("DELETE FROM pages WHERE scan_id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(reopened == 1)
    }

    /// Counts a try at reading a scan, committed before the try, so a file
    /// that crashes the reader is noticed on restart instead of retried forever.
    pub fn begin_attempt(&self, id: i64) -> Result<i64, LedgerError> {
        Ok(self.conn.query_row(
            "UPDATE scans SET attempts = attempts + 1 WHERE id = ?1 RETURNING attempts",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Duplicate scans recorded without their quarantine entry yet.
    pub fn duplicates_to_quarantine(&self) -> Result<Vec<(PendingScan, String)>, LedgerError> {
        let mut st = self.conn.prepare(
            "SELECT id, work_path, source, branch, attempts, reason FROM scans
             WHERE state = 'quarantined' AND quarantine IS NULL ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                pending_scan(r)?,
                r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a scan's pages in one transaction. A validated page whose form
    /// side and keys an earlier validated page already has becomes a
    /// mismatch (`duplicate_page`), so no record is entered twice.
    /// Returns how many pages were demoted that way.
    pub fn store_read(&mut self, id: i64, pages: &[PageRecord]) -> Result<usize, LedgerError> {
        let tx = write(&mut self.conn)?;
        let mut demoted = 0;
        for p in pages {
            let mut p = p.clone();
            let key = page_key(&p);
            if p.status == PageStatus::Validated {
                if let Some(k) = &key {
                    let earlier: Option<String> = tx
                        .query_row(
                            "SELECT s.source FROM pages p JOIN scans s ON s.id = p.scan_id
                             WHERE p.page_key = ?1 AND p.status = 'validated' AND p.scan_id != ?2
                             LIMIT 1",
                            params![k, id],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if let Some(first) = earlier {
                        p.status = PageStatus::Mismatch;
                        p.reasons.push("duplicate_page".into());
                        p.detail = Some(format!("the same form page was read from {first}"));
                        demoted += 1;
                    }
                }
            }
            let status = p.status.code();
            let images: Vec<(String, String)> = p
                .images
                .iter()
                .map(|(f, png)| {
                    (
                        f.clone(),
                        base64::engine::general_purpose::STANDARD.encode(png),
                    )
                })
                .collect();
            tx.execute(
                "INSERT OR REPLACE INTO pages(scan_id, page, status, page_key, record, images)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    p.page as i64,
                    status,
                    key,
                    serde_json::to_string(&p).expect("records serialise"),
                    serde_json::to_string(&images).expect("images serialise"),
                ],
            )?;
        }
        tx.execute(
            "UPDATE scans SET state = 'read', read_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        tx.commit()?;
        Ok(demoted)
    }

    pub fn store_quarantine(
        &mut self,
        id: i64,
        entry: &QuarantineEntry,
    ) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE scans SET state = 'quarantined', reason = ?2, quarantine = ?3, read_at = ?4
             WHERE id = ?1",
            params![
                id,
                entry.reason,
                serde_json::to_string(entry).expect("entry serialises"),
                now()
            ],
        )?;
        Ok(())
    }

    /// Starts closing a batch: everything read or quarantined since the last
    /// close is assigned to it, in one transaction, before any file is
    /// written. A crash after this is finished by `resume`, with the same
    /// contents.
    pub fn open_batch(&mut self, batch_id: &str) -> Result<usize, LedgerError> {
        let tx = write(&mut self.conn)?;
        tx.execute(
            "INSERT INTO batches(id, state, opened_at) VALUES (?1, 'closing', ?2)",
            params![batch_id, now()],
        )?;
        let n = tx.execute(
            "UPDATE scans SET batch_id = ?1
             WHERE batch_id IS NULL AND (state = 'read' OR (state = 'quarantined' AND quarantine IS NOT NULL))",
            [batch_id],
        )?;
        let corrected = tx.execute(
            "UPDATE corrections SET batch_id = ?1 WHERE batch_id IS NULL",
            [batch_id],
        )?;
        tx.commit()?;
        Ok(n + corrected)
    }

    /// Batches whose close was started but not published.
    pub fn closing_batches(&self) -> Result<Vec<String>, LedgerError> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM batches WHERE state = 'closing' ORDER BY opened_at")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn batch_exists(&self, batch_id: &str) -> Result<bool, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM batches WHERE id = ?1",
                [batch_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The pages and quarantined files assigned to a batch, in arrival order.
    pub fn batch_contents(
        &self,
        batch_id: &str,
    ) -> Result<(Vec<PageRecord>, Vec<QuarantineEntry>), LedgerError> {
        let mut st = self.conn.prepare(
            "SELECT p.scan_id, p.page, p.record, p.images FROM pages p JOIN scans s ON s.id = p.scan_id
             WHERE s.batch_id = ?1 AND s.state != 'quarantined' ORDER BY p.scan_id, p.page",
        )?;
        let mut records = Vec::new();
        let mut rows = st.query([batch_id])?;
        while let Some(row) = rows.next()? {
            let (scan, page): (i64, i64) = (row.get(0)?, row.get(1)?);
            let text: String = row.get(2)?;
            let images: String = row.get(3)?;
            records.push(stored_record(scan, page, &text, &images)?);
        }
        // Corrections made in review since the last close: new input, so
        // the batch they were found in is never edited.
        let mut st = self.conn.prepare(
            "SELECT scan_id, page, record FROM corrections WHERE batch_id = ?1 ORDER BY at, scan_id, page",
        )?;
        let mut rows = st.query([batch_id])?;
        while let Some(row) = rows.next()? {
            let (scan, page): (i64, i64) = (row.get(0)?, row.get(1)?);
            let text: String = row.get(2)?;
            records.push(
                serde_json::from_str(&text).map_err(|source| LedgerError::Record {
                    scan,
                    page,
                    source,
                })?,
            );
        }
        let mut st = self.conn.prepare(
            "SELECT id, quarantine FROM scans WHERE batch_id = ?1 AND state = 'quarantined' ORDER BY id",
        )?;
        let mut quarantined = Vec::new();
        let mut rows = st.query([batch_id])?;
        while let Some(row) = rows.next()? {
            let scan: i64 = row.get(0)?;
            let text: String = row.get(1)?;
            quarantined.push(serde_json::from_str(&text).map_err(|source| {
                LedgerError::Record {
                    scan,
                    page: 0,
                    source,
                }
            })?);
        }
        Ok((records, quarantined))
    }

    /// Marks a batch published once its folder and READY are on disk.
    pub fn publish(&mut self, batch_id: &str) -> Result<(), LedgerError> {
        let tx = write(&mut self.conn)?;
        let n = tx.execute(
            "UPDATE batches SET state = 'published', closed_at = ?2 WHERE id = ?1 AND state = 'closing'",
            params![batch_id, now()],
        )?;
        if n == 0 {
            return Err(LedgerError::NoSuchBatch(batch_id.into()));
        }
        tx.execute(
            "UPDATE scans SET batched_at = ?2,
               state = CASE WHEN EXISTS (SELECT 1 FROM pages p WHERE p.scan_id = scans.id
                                          AND p.status IN ('mismatch', 'unreadable'))
                            THEN 'mismatch' ELSE 'in_batch' END
             WHERE batch_id = ?1 AND state = 'read'",
            params![batch_id, now()],
        )?;
        tx.execute(
            "UPDATE scans SET batched_at = ?2 WHERE batch_id = ?1 AND state = 'quarantined'",
            params![batch_id, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// When the current period began: the last published close, else the
    /// ledger's creation.
    pub fn period_start(&self) -> Result<String, LedgerError> {
        let last: Option<String> = self
            .conn
            .query_row(
                "SELECT max(closed_at) FROM batches WHERE state = 'published'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        match last {
            Some(t) => Ok(t),
            None => Ok(self.meta("created")?.unwrap_or_else(now)),
        }
    }

    pub fn status(&self) -> Result<Status, LedgerError> {
        let mut by_state = BTreeMap::new();
        let mut st = self
            .conn
            .prepare("SELECT state, count(*) FROM scans GROUP BY state")?;
        for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (s, n) = row?;
            by_state.insert(s, n);
        }
        let grouped = |sql: &str| -> Result<BTreeMap<String, i64>, LedgerError> {
            let mut st = self.conn.prepare(sql)?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let open_by_branch = grouped(
            "SELECT branch, count(*) FROM scans WHERE batch_id IS NULL
             AND state IN ('read', 'quarantined') GROUP BY branch",
        )?;
        let received_by_branch =
            grouped("SELECT branch, count(*) FROM scans WHERE state = 'received' GROUP BY branch")?;
        let last_batch = self
            .conn
            .query_row(
                "SELECT b.id, b.state, b.closed_at, (SELECT count(*) FROM scans s WHERE s.batch_id = b.id)
                 FROM batches b ORDER BY b.opened_at DESC LIMIT 1",
                [],
                |r| {
                    Ok(BatchRow {
                        id: r.get(0)?,
                        state: r.get(1)?,
                        closed_at: r.get(2)?,
                        scans: r.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(Status {
            by_state,
            open_by_branch,
            received_by_branch,
            last_batch,
            heartbeat: self.meta("heartbeat")?,
        })
    }
}

/// A page staff still have to decide on.
#[derive(Debug, Clone)]
pub struct OpenMismatch {
    pub scan_id: i64,
    pub page: i64,
    pub batch_id: String,
    pub received_at: String,
    pub record: PageRecord,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at: String,
    pub reviewer: String,
    pub scan_id: i64,
    pub page: i64,
    pub action: String,
    pub field: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<String>,
}

/// A change to one field, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone)]
pub enum Decision {
    /// The corrected record passed the gate; it goes into the next batch.
    Corrected {
        record: Box<PageRecord>,
        changes: Vec<FieldChange>,
    },
    /// Tried, but the gate refused: the page stays open with these reasons.
    StillOpen {
        changes: Vec<FieldChange>,
        reasons: Vec<String>,
    },
    Rejected {
        reason: String,
    },
}

impl Ledger {
    /// Mismatches of published batches nobody has decided yet, oldest first.
    pub fn open_mismatches(&self) -> Result<Vec<OpenMismatch>, LedgerError> {
        self.mismatches_where("", [])
    }

    pub fn open_mismatch(&self, scan: i64, page: i64) -> Result<Option<OpenMismatch>, LedgerError> {
        Ok(self
            .mismatches_where(" AND p.scan_id = ?1 AND p.page = ?2", [scan, page])?
            .pop())
    }

    fn mismatches_where<P: rusqlite::Params>(
        &self,
        extra: &str,
        params: P,
    ) -> Result<Vec<OpenMismatch>, LedgerError> {
        let sql = format!(
            "SELECT p.scan_id, p.page, s.batch_id, s.received_at, p.record, p.images
             FROM pages p JOIN scans s ON s.id = p.scan_id
             JOIN batches b ON b.id = s.batch_id AND b.state = 'published'
             WHERE p.status IN ('mismatch', 'unreadable')
               AND NOT EXISTS (SELECT 1 FROM corrections c WHERE c.scan_id = p.scan_id AND c.page = p.page)
               AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.scan_id = p.scan_id AND r.page = p.page)
               {extra}
             ORDER BY s.received_at, p.scan_id, p.page"
        );
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let (scan, page): (i64, i64) = (row.get(0)?, row.get(1)?);
            let record = stored_record(
                scan,
                page,
                &row.get::<_, String>(4)?,
                &row.get::<_, String>(5)?,
            )?;
            out.push(OpenMismatch {
                scan_id: scan,
                page,
                batch_id: row.get(2)?,
                received_at: row.get(3)?,
                record,
            });
        }
        Ok(out)
    }

    /// Records a reviewer's decision and its audit lines in one transaction.
    /// A correction whose form side and keys another validated page or
    /// correction already has stays open as `duplicate_page`.
    pub fn decide(
        &mut self,
        scan: i64,
        page: i64,
        reviewer: &str,
        decision: &Decision,
    ) -> Result<Decision, LedgerError> {
        let tx = write(&mut self.conn)?;
        let at = now();
        let audit = |tx: &rusqlite::Transaction,
                     action: &str,
                     c: Option<&FieldChange>,
                     reason: Option<&str>|
         -> Result<(), rusqlite::Error> {
            tx.execute(
                "INSERT INTO audit(at, reviewer, scan_id, page, action, field, before, after, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    at,
                    reviewer,
                    scan,
                    page,
                    action,
                    c.map(|c| c.field.as_str()),
                    c.map(|c| c.before.as_str()),
                    c.map(|c| c.after.as_str()),
                    reason
                ],
            )?;
            Ok(())
        };
        let mut decision = decision.clone();
        if let Decision::Corrected { record, changes } = &decision {
            let key = page_key(record);
            let taken: bool = match &key {
                Some(k) => tx
                    .query_row(
                        "SELECT 1 FROM pages WHERE page_key = ?1 AND status = 'validated'
                         UNION ALL SELECT 1 FROM corrections WHERE page_key = ?1 LIMIT 1",
                        [k],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some(),
                None => false,
            };
            if taken {
                decision = Decision::StillOpen {
                    changes: changes.clone(),
                    reasons: vec!["duplicate_page".into()],
                };
            } else {
                tx.execute(
                    "INSERT INTO corrections(scan_id, page, page_key, record, reviewer, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        scan,
                        page,
                        key,
                        serde_json::to_string(record.as_ref()).expect("records serialise"),
                        reviewer,
                        at
                    ],
                )?;
            }
        }
        match &decision {
            Decision::Corrected { changes, .. } => {
                for c in changes {
                    audit(&tx, "correct", Some(c), None)?;
                }
                audit(&tx, "accept", None, None)?;
            }
            Decision::StillOpen { changes, reasons } => {
                for c in changes {
                    audit(&tx, "correct", Some(c), None)?;
                }
                audit(&tx, "still_open", None, Some(&reasons.join(" ")))?;
            }
            Decision::Rejected { reason } => {
                tx.execute(
                    "INSERT INTO rejections(scan_id, page, reason, reviewer, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![scan, page, reason, reviewer, at],
                )?;
                audit(&tx, "reject", None, Some(reason))?;
            }
        }
        tx.commit()?;
        Ok(decision)
    }

    /// Corrections not yet in a published batch, with when each was made:
    /// counted by `todoke tally` before the next close.
    pub fn unpublished_corrections(&self) -> Result<Vec<(PageRecord, String)>, LedgerError> {
        let mut st = self.conn.prepare(
            "SELECT c.scan_id, c.page, c.record, c.at FROM corrections c
             WHERE c.batch_id IS NULL
                OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = c.batch_id AND b.state = 'published')
             ORDER BY c.at, c.scan_id, c.page",
        )?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let (scan, page): (i64, i64) = (row.get(0)?, row.get(1)?);
            let text: String = row.get(2)?;
            let record = serde_json::from_str(&text).map_err(|source| LedgerError::Record {
                scan,
                page,
                source,
            })?;
            out.push((record, row.get(3)?));
        }
        Ok(out)
    }

    /// Pages staff rejected, as (scan sha256, page): decided, so no longer open.
    pub fn rejected_pages(
        &self,
    ) -> Result<std::collections::HashSet<(String, usize)>, LedgerError> {
        let mut st = self.conn.prepare(
            "SELECT s.sha256, r.page FROM rejections r JOIN scans s ON s.id = r.scan_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The audit log, oldest first, from `since` (RFC 3339 or a date) on.
    pub fn audit(&self, since: Option<&str>) -> Result<Vec<AuditEntry>, LedgerError> {
        let mut st = self.conn.prepare(
            "SELECT at, reviewer, scan_id, page, action, field, before, after, reason
             FROM audit WHERE at >= ?1 ORDER BY id",
        )?;
        let rows = st.query_map([since.unwrap_or("")], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                reviewer: r.get(1)?,
                scan_id: r.get(2)?,
                page: r.get(3)?,
                action: r.get(4)?,
                field: r.get(5)?,
                before: r.get(6)?,
                after: r.get(7)?,
                reason: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the ledger at `path` to the last of `migrations`: every missing
/// step and the new version number in one transaction, so a failed step
/// (or a kill) leaves the ledger exactly as the older todoke wrote it.
fn migrate(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<(), LedgerError> {
    let known = migrations.last().map_or(0, |m| m.to);
    let newer = |found| LedgerError::NewerSchema {
        path: path.to_path_buf(),
        found,
        known,
    };
    // Read without a lock first: opening an up-to-date ledger, as every
    // reader thread and `todoke status` does, must not queue for writing.
    let found = user_version(conn)?;
    if found > known {
        return Err(newer(found));
    }
    if found == known {
        return Ok(());
    }
    let tx = write(conn)?;
    // Another process may have migrated it meanwhile.
    let from = user_version(&tx)?;
    if from > known {
        return Err(newer(from));
    }
    for m in migrations.iter().filter(|m| m.to > from) {
        tx.execute_batch(m.sql)
            .map_err(|source| LedgerError::Migrate {
                path: path.to_path_buf(),
                from,
                to: m.to,
                source,
            })?;
    }
    tx.pragma_update(None, "user_version", known)?;
    tx.commit()?;
    if from > 0 {
        tracing::info!(from, to = known, "ledger schema migrated");
    }
    Ok(())
}

/// A write transaction that takes the write lock at its start. A deferred
/// one that reads first and then writes fails at once with SQLITE_BUSY
/// (no busy wait) when another connection, a reader thread or the daemon,
/// committed in between.
/// A scan row selected as `id, work_path, source, branch, attempts, …`.
fn pending_scan(r: &rusqlite::Row) -> rusqlite::Result<PendingScan> {
    Ok(PendingScan {
        id: r.get(0)?,
        work_path: r.get(1)?,
        source: r.get(2)?,
        branch: r.get(3)?,
        attempts: r.get(4)?,
    })
}

fn write(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{FieldResult, FieldStatus};

    fn page(source: &str, status: PageStatus, atena: &str) -> PageRecord {
        let mut r = PageRecord::new(source, 1, "honcho", "sha");
        r.form = Some("pregnancy-notification".into());
        r.side = Some("pregnancy-notification".into());
        r.status = status;
        let f = |v: &str| FieldResult {
            value: serde_json::json!(v),
            confidence: 1.0,
            status: FieldStatus::Ok,
        };
        r.fields.insert("atena_no".into(), f(atena));
        r.fields.insert("birth_date".into(), f("1990-01-02"));
        r.images = vec![("atena_no".into(), vec![1, 2, 3])];
        r
    }

    #[test]
    fn corrections_count_for_the_tally_until_published_and_rejections_by_sha() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("todoke.db")).unwrap();
        let Received::New(a) = l
            .receive("sha-a", "honcho", "honcho/a.png", "honcho/1-a.png")
            .unwrap()
        else {
            panic!("new scan")
        };
        let Received::New(b) = l
            .receive("sha-b", "honcho", "honcho/b.png", "honcho/2-b.png")
            .unwrap()
        else {
            panic!("new scan")
        };
        l.store_read(a, &[page("honcho/a.png", PageStatus::Mismatch, "0012")])
            .unwrap();
        l.store_read(b, &[page("honcho/b.png", PageStatus::Mismatch, "0013")])
            .unwrap();
        l.open_batch("b1").unwrap();
        l.publish("b1").unwrap();
        let mut fixed = page("honcho/a.png", PageStatus::Validated, "0012");
        fixed.corrected = true;
        let corrected = Decision::Corrected {
            record: Box::new(fixed),
            changes: vec![],
        };
        l.decide(a, 1, "山田", &corrected).unwrap();
        l.decide(
            b,
            1,
            "山田",
            &Decision::Rejected {
                reason: "別人".into(),
            },
        )
        .unwrap();
        let pending = l.unpublished_corrections().unwrap();
        assert_eq!(pending.len(), 1);
        assert!(pending[0].0.corrected && pending[0].0.source == "honcho/a.png");
        assert!(pending[0]
            .1
            .starts_with(&chrono::Local::now().format("%Y-%m-%d").to_string()));
        assert_eq!(
            l.rejected_pages().unwrap(),
            std::collections::HashSet::from([("sha-b".to_string(), 1)])
        );
        // Once in a closing batch it still counts; once published it is in
        // that batch's records.jsonl instead.
        l.open_batch("b2").unwrap();
        assert_eq!(l.unpublished_corrections().unwrap().len(), 1);
        l.publish("b2").unwrap();
        assert!(l.unpublished_corrections().unwrap().is_empty());
    }

    #[test]
    fn a_scan_goes_through_its_states_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state/todoke.db");
        let mut l = Ledger::open(&db).unwrap();
        let a = match l
            .receive("aa", "honcho", "honcho/a.png", "honcho/1-a.png")
            .unwrap()
        {
            Received::New(id) => id,
            other => panic!("{other:?}"),
        };
        // The same bytes under another name are a duplicate, never read.
        assert_eq!(
            l.receive("aa", "sakura", "sakura/a-copy.png", "sakura/2-a-copy.png")
                .unwrap(),
            Received::Duplicate {
                id: a + 1,
                first_source: "honcho/a.png".into()
            }
        );
        assert_eq!(l.pending().unwrap().len(), 1);
        assert_eq!(l.duplicates_to_quarantine().unwrap().len(), 1);
        drop(l);

        let mut l = Ledger::open(&db).unwrap();
        assert!(l.knows_work_path("honcho/1-a.png").unwrap());
        l.store_read(a, &[page("honcho/a.png", PageStatus::Validated, "0012")])
            .unwrap();
        let (dup, _) = l.duplicates_to_quarantine().unwrap().remove(0);
        l.store_quarantine(
            dup.id,
            &QuarantineEntry {
                source: dup.source,
                reason: "duplicate_file".into(),
                stored_as: "quarantine/x".into(),
                copied: true,
            },
        )
        .unwrap();
        assert!(l.pending().unwrap().is_empty());
        assert_eq!(l.open_batch("b1").unwrap(), 2);
        let (records, q) = l.batch_contents("b1").unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].images,
            vec![("atena_no".to_string(), vec![1, 2, 3])]
        );
        assert_eq!(q.len(), 1);
        assert_eq!(l.closing_batches().unwrap(), vec!["b1".to_string()]);
        l.publish("b1").unwrap();
        assert!(l.closing_batches().unwrap().is_empty());
        let s = l.status().unwrap();
        assert_eq!(s.by_state.get("in_batch"), Some(&1));
        assert_eq!(s.by_state.get("quarantined"), Some(&1));
        assert_eq!(s.last_batch.unwrap().scans, 2);
        // A second close holds nothing already published.
        assert_eq!(l.open_batch("b2").unwrap(), 0);
    }

    #[test]
    fn the_same_form_page_in_a_second_file_is_not_validated_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let ids: Vec<i64> = ["x", "y", "z"]
            .iter()
            .map(|n| match l.receive(n, "honcho", n, n).unwrap() {
                Received::New(id) => id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            l.store_read(ids[0], &[page("x", PageStatus::Validated, "0012")])
                .unwrap(),
            0
        );
        l.open_batch("b1").unwrap();
        l.publish("b1").unwrap();
        // Next week, the same page again, and another person's page.
        assert_eq!(
            l.store_read(ids[1], &[page("y", PageStatus::Validated, "0012")])
                .unwrap(),
            1
        );
        assert_eq!(
            l.store_read(ids[2], &[page("z", PageStatus::Validated, "0013")])
                .unwrap(),
            0
        );
        l.open_batch("b2").unwrap();
        let (records, _) = l.batch_contents("b2").unwrap();
        assert_eq!(records[0].status, PageStatus::Mismatch);
        assert!(records[0].reasons.contains(&"duplicate_page".to_string()));
        assert_eq!(records[1].status, PageStatus::Validated);
        l.publish("b2").unwrap();
        assert_eq!(l.status().unwrap().by_state.get("mismatch"), Some(&1));
    }

    fn column_names(path: &Path, table: &str) -> Vec<String> {
        let c = Connection::open(path).unwrap();
        let mut st = c.prepare(&format!("PRAGMA table_info({table})")).unwrap();
        let names = st.query_map([], |r| r.get::<_, String>(1)).unwrap();
        names.map(Result::unwrap).collect()
    }

    fn version_of(path: &Path) -> i64 {
        user_version(&Connection::open(path).unwrap()).unwrap()
    }

    /// A ledger the current todoke wrote, with one scan read and batched.
    fn current_ledger(path: &Path) {
        let mut l = Ledger::open(path).unwrap();
        let Received::New(id) = l
            .receive("sha-a", "honcho", "honcho/a.png", "honcho/1-a.png")
            .unwrap()
        else {
            panic!("new scan")
        };
        l.store_read(id, &[page("honcho/a.png", PageStatus::Validated, "0012")])
            .unwrap();
        l.open_batch("b1").unwrap();
        l.publish("b1").unwrap();
    }

    #[test]
    fn a_next_version_migrates_this_ledger_and_this_version_refuses_it_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("todoke.db");
        current_ledger(&path);
        assert_eq!(version_of(&path), SCHEMA_VERSION);
        // The next todoke adds a column with a default for the rows it finds.
        let mut next = MIGRATIONS.to_vec();
        next.push(Migration {
            to: SCHEMA_VERSION + 1,
            sql: "ALTER TABLE scans ADD COLUMN pages_expected INTEGER;
                  UPDATE scans SET pages_expected = 1;",
        });
        let l = Ledger::open_with(&path, &next).unwrap();
        assert_eq!(version_of(&path), SCHEMA_VERSION + 1);
        assert!(column_names(&path, "scans").contains(&"pages_expected".to_string()));
        let filled: i64 = l
            .conn
            .query_row("SELECT pages_expected FROM scans", [], |r| r.get(0))
            .unwrap();
        assert_eq!(filled, 1);
        // What the older todoke wrote reads as before.
        let st = l.status().unwrap();
        assert_eq!(st.by_state.get("in_batch"), Some(&1));
        assert_eq!(st.last_batch.unwrap().id, "b1");
        drop(l);
        // Opened again by the next version: nothing to do.
        Ledger::open_with(&path, &next).unwrap();
        // This todoke now meets a schema newer than it knows: it refuses,
        // by both doors, and changes nothing.
        for refused in [
            Ledger::open(&path).err(),
            Ledger::open_existing(&path, std::time::Duration::from_secs(1)).err(),
        ] {
            match refused {
                Some(LedgerError::NewerSchema { found, known, .. }) => {
                    assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(version_of(&path), SCHEMA_VERSION + 1);
    }

    #[test]
    fn a_failed_step_leaves_the_ledger_as_the_older_todoke_wrote_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("todoke.db");
        current_ledger(&path);
        let mut next = MIGRATIONS.to_vec();
        next.push(Migration {
            to: SCHEMA_VERSION + 1,
            sql: "ALTER TABLE scans ADD COLUMN pages_expected INTEGER;",
        });
        next.push(Migration {
            to: SCHEMA_VERSION + 2,
            sql: "ALTER TABLE no_such_table ADD COLUMN x INTEGER;",
        });
        match Ledger::open_with(&path, &next) {
            Err(LedgerError::Migrate { from, to, .. }) => {
                assert_eq!((from, to), (SCHEMA_VERSION, SCHEMA_VERSION + 2))
            }
            other => panic!("{:?}", other.err()),
        }
        assert_eq!(version_of(&path), SCHEMA_VERSION);
        assert!(!column_names(&path, "scans").contains(&"pages_expected".to_string()));
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.status().unwrap().by_state.get("in_batch"), Some(&1));
    }

    #[test]
    fn a_ledger_from_before_schema_versions_is_taken_up_as_version_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("todoke.db");
        current_ledger(&path);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 0)
            .unwrap();
        let l = Ledger::open(&path).unwrap();
        assert_eq!(version_of(&path), SCHEMA_VERSION);
        assert_eq!(l.status().unwrap().by_state.get("in_batch"), Some(&1));
    }
}
