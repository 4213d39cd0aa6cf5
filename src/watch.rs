//! The watched-folder daemon: takes each scan once it is completely written,
//! reads it, records it in the ledger, and closes weekly batches.
//!
//! Each tick of the daemon's thread: notice files (inotify or polling
//! events, and a full listing every `rescan_secs`) → take the quiet,
//! complete ones into the work area → queue what the ledger says is pending
//! for the reader threads → close a batch when one is due. Readers store
//! each file's pages as soon as it is read.
//! Every step is committed to the ledger before the next, and `recover`
//! redoes whatever a crash left half done, so a kill at any moment neither
//! loses nor doubles a scan.

use crate::config::{Config, WatchMode};
use crate::emit::{self, PageStatus};
use crate::i18n::{self, t, ta, Lang};
use crate::intake::{self, QuietTracker, Scan};
use crate::ledger::{Ledger, LedgerError, PendingScan, Received};
use crate::matching::{self, Register};
use crate::pipeline::{Engine, FileOutcome};
use crate::template;
use chrono::{Datelike, NaiveDateTime, NaiveTime, Weekday};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Tries at reading one file before it is quarantined as the cause of
/// crashes; with systemd restarting after 10 s, a poison file holds the
/// inbox up for a few minutes at most.
const MAX_TRIES: i64 = 20;

/// Files queued for the readers at once: enough that they never run dry
/// while this thread takes a burst of new files (a stop leaves queued files
/// untouched, so depth costs nothing there).
const QUEUE_DEPTH: usize = 64;

/// A weekly close time, local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub weekday: Weekday,
    pub time: NaiveTime,
}

/// What one batch close produced.
#[derive(Debug, Clone)]
pub struct Closed {
    pub batch_id: String,
    pub dir: PathBuf,
    pub summary: emit::BatchSummary,
}

/// What `todoke init` made of a working folder.
#[derive(Debug, Clone)]
pub struct Initialised {
    pub settings: PathBuf,
    /// The folder's own copy of the templates (`forms_dir = "forms"`).
    pub forms: PathBuf,
    /// Template files copied there; files already there are left as the
    /// city adapted them.
    pub copied: usize,
    pub kept: usize,
    /// The account the folder was given to (the daemon's), if any.
    pub owner: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Emit(#[from] emit::EmitError),
    #[error(transparent)]
    Register(#[from] matching::RegisterError),
    #[error("batch.close_at {0:?}: expected a weekday and a time, like \"Mon 09:00\"")]
    BadSchedule(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: copied into the work area but the copy differs; the original is left in place"
    )]
    CopyMismatch { path: PathBuf },
    #[error("file watcher: {0}")]
    Notify(#[from] notify::Error),
    /// The daemon stops on this, so that a restart reads the file alone and
    /// counts the try (see `MAX_TRIES`).
    #[error("the reader crashed on {file}")]
    ReaderPanicked { file: String },
    #[error("no account named {0:?} on this machine (the package makes `todoke`)")]
    NoSuchUser(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WatchError + '_ {
    move |source| WatchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `Mon 09:00`; an empty setting means no schedule.
pub fn parse_schedule(text: &str) -> Result<Option<Schedule>, WatchError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || WatchError::BadSchedule(text.into());
    let (day, time) = text.split_once(char::is_whitespace).ok_or_else(bad)?;
    let weekday: Weekday = day.parse().map_err(|_| bad())?;
    let time = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| bad())?;
    Ok(Some(Schedule { weekday, time }))
}

impl Schedule {
    /// The latest scheduled moment at or before `now`.
    pub fn last_before(&self, now: NaiveDateTime) -> NaiveDateTime {
        let back =
            (7 + now.weekday().num_days_from_monday() - self.weekday.num_days_from_monday()) % 7;
        let candidate = (now.date() - chrono::Days::new(back as u64)).and_time(self.time);
        if candidate <= now {
            candidate
        } else {
            candidate - chrono::Days::new(7)
        }
    }

    /// A close is due when a scheduled moment passed since the period began
    /// (also when the daemon was stopped at that moment).
    pub fn due(&self, period_start: NaiveDateTime, now: NaiveDateTime) -> bool {
        self.last_before(now) > period_start
    }
}

/// Network file systems, where inotify sees nothing other machines write.
fn is_network_fs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    const CIFS: i64 = 0xFF53_4D42;
    const SMB2: i64 = 0xFE53_4D42;
    const SMB: i64 = 0x517B;
    const NFS: i64 = 0x6969;
    const FUSE: i64 = 0x6573_5546;
    matches!(st.f_type as i64, CIFS | SMB2 | SMB | NFS | FUSE)
}

/// Why a branch inbox cannot be watched, if it cannot.
fn inbox_trouble(dir: &Path, mounted: bool) -> Option<&'static str> {
    if std::fs::read_dir(dir).is_err() {
        return Some("inbox missing or unreadable");
    }
    if mounted && !is_mount_point(dir) {
        return Some("share not mounted (the inbox is not a mount point)");
    }
    None
}

/// Whether `dir` is the root of a mounted file system: its parent is on
/// another device, or is itself (`/`).
pub fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dir), std::fs::metadata(dir.join(".."))) {
        (Ok(d), Ok(parent)) => d.dev() != parent.dev() || d.ino() == parent.ino(),
        _ => false,
    }
}

/// Makes a batch id from the local time that neither the ledger nor the
/// output folder has yet.
fn new_batch_id(ledger: &Ledger, out: &Path) -> Result<String, WatchError> {
    let base = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let mut id = base.clone();
    let mut n = 2;
    while ledger.batch_exists(&id)? || out.join("batches").join(&id).exists() {
        id = format!("{base}-{n}");
        n += 1;
    }
    Ok(id)
}

/// Publishes a batch the ledger has assigned: written to a temporary
/// folder, renamed, READY last. A folder left without READY by a crash is
/// written again from the ledger.
fn publish(
    ledger: &mut Ledger,
    engine: &Engine<'_>,
    config: &Config,
    batch_id: &str,
) -> Result<Closed, WatchError> {
    let out = &config.watch.out;
    let dir = out.join("batches").join(batch_id);
    let (records, quarantined) = ledger.batch_contents(batch_id)?;
    let mut summary = emit::BatchSummary {
        quarantined: quarantined.len(),
        ..Default::default()
    };
    if !dir.join(emit::READY).exists() {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        let info = engine.batch_info(config.output.encoding, chrono::Local::now().to_rfc3339());
        summary = emit::write_batch(
            out,
            batch_id,
            &engine.templates,
            &records,
            &quarantined,
            &info,
        )?;
    } else {
        for r in &records {
            match r.status {
                PageStatus::Validated => summary.validated += 1,
                PageStatus::Mismatch => summary.mismatch += 1,
                PageStatus::Skipped => summary.skipped += 1,
                PageStatus::Unreadable => summary.unreadable += 1,
            }
        }
    }
    ledger.publish(batch_id)?;
    tracing::info!(batch = batch_id, %summary, "batch published");
    Ok(Closed {
        batch_id: batch_id.into(),
        dir,
        summary,
    })
}

/// Closes a batch now with everything read since the last close. Safe to
/// run while the daemon runs: the ledger serialises the two.
pub fn close_batch(
    ledger: &mut Ledger,
    engine: &Engine<'_>,
    config: &Config,
) -> Result<Closed, WatchError> {
    finish_closing(ledger, engine, config)?;
    reopen_changed(ledger, config)?;
    let id = new_batch_id(ledger, &config.watch.out)?;
    ledger.open_batch(&id)?;
    publish(ledger, engine, config, &id)
}

/// A writer that still held a file when it was taken can write on after
/// the read ended. What a batch takes must be what is in the work area, so
/// a read file whose bytes changed since is put back to be read again (it
/// goes into the next batch) instead of entering this one as it was.
fn reopen_changed(ledger: &mut Ledger, config: &Config) -> Result<usize, WatchError> {
    let mut reopened = 0;
    for (p, read_sha) in ledger.read_unbatched()? {
        let path = config.watch.work.join(&p.work_path);
        let now = match intake::sha256_file(&path) {
            Ok(sha) => sha,
            // Gone from the work area: the pages read are all there is.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path)(e)),
        };
        if now != read_sha && ledger.reopen_changed(p.id, &now)? {
            tracing::warn!(file = %p.source, "changed after it was read; it will be read again");
            reopened += 1;
        }
    }
    Ok(reopened)
}

/// Publishes batches a crash left between assignment and READY.
fn finish_closing(
    ledger: &mut Ledger,
    engine: &Engine<'_>,
    config: &Config,
) -> Result<Vec<Closed>, WatchError> {
    let mut done = Vec::new();
    for id in ledger.closing_batches()? {
        done.push(publish(ledger, engine, config, &id)?);
    }
    Ok(done)
}

/// The working state of a running daemon.
pub struct Daemon<'r> {
    config: Config,
    engine: Arc<Engine<'r>>,
    ledger: Ledger,
    schedule: Option<Schedule>,
    quiet: QuietTracker,
    /// Files found without their end marker, as (size, mtime) then.
    incomplete: std::collections::HashMap<PathBuf, (u64, SystemTime)>,
    register_stamp: Option<SystemTime>,
    healthy: BTreeMap<String, bool>,
    /// Links, FIFOs and devices found in an inbox, reported once each.
    refused: std::collections::HashSet<PathBuf>,
    /// Work is paused for a full disk until then (and while it stays full).
    paused_until: Option<Instant>,
}

impl<'r> Daemon<'r> {
    pub fn new(config: Config, engine: Engine<'r>) -> Result<Self, WatchError> {
        let schedule = parse_schedule(&config.batch.close_at)?;
        let ledger = Ledger::open(&config.watch.state)?;
        let register_stamp = modified(&config.watch.register);
        for dir in [&config.watch.work, &config.watch.out] {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        Ok(Daemon {
            config,
            engine: Arc::new(engine),
            ledger,
            schedule,
            quiet: QuietTracker::default(),
            incomplete: Default::default(),
            register_stamp,
            healthy: BTreeMap::new(),
            refused: Default::default(),
            paused_until: None,
        })
    }

    /// Redoes what a crash left half done: files in the work area the
    /// ledger does not know, and batches not yet published.
    pub fn recover(&mut self) -> Result<(), WatchError> {
        let work = self.config.watch.work.clone();
        if work.exists() {
            for scan in intake::collect(&work).map_err(|e| WatchError::Io {
                path: work.clone(),
                source: std::io::Error::other(e.to_string()),
            })? {
                if !self.ledger.knows_work_path(&scan.rel)? {
                    tracing::warn!(file = %scan.rel, "taken before a stop but not recorded; recording it now");
                    let source = source_of(&scan.rel);
                    self.record_taken(&scan.path, &scan.rel, &source, &scan.branch, None)?;
                }
            }
        }
        finish_closing(&mut self.ledger, &self.engine, &self.config)?;
        Ok(())
    }

    /// Runs until `stop` is set; the files in hand are finished first.
    ///
    /// Reader threads (one per core) read while this thread watches, takes
    /// and closes batches, so taking a new file never waits for a reading
    /// round to end and no core idles at the tail of one.
    pub fn run(&mut self, stop: Arc<AtomicBool>) -> Result<(), WatchError> {
        self.recover()?;
        let (tx, rx) = mpsc::channel::<Event>();
        let mut watcher = self.start_watcher(tx.clone())?;
        let rescan = Duration::from_secs_f64(self.config.watch.rescan_secs.max(1.0));
        let mut last_rescan: Option<Instant> = None;
        let mut last_beat = Instant::now() - Duration::from_secs(3600);
        let workers = rayon::current_num_threads().max(1);
        let (job_tx, job_rx) = mpsc::channel::<PendingScan>();
        let job_rx = Mutex::new(job_rx);
        let (engine, config) = (Arc::clone(&self.engine), self.config.clone());
        tracing::info!(readers = workers, "watching");
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let done = tx.clone();
                let (engine, config, jobs, stop) = (&*engine, &config, &job_rx, &*stop);
                scope.spawn(move || reader_thread(engine, config, jobs, done, stop));
            }
            let mut in_flight = InFlight::default();
            let result = (|| -> Result<(), WatchError> {
                while !stop.load(Ordering::SeqCst) {
                    if last_rescan.is_none_or(|t| t.elapsed() >= rescan) {
                        let recovered = self.check_inboxes();
                        if recovered {
                            // A share that came back needs its watch set up again.
                            watcher = self.start_watcher(tx.clone())?;
                        }
                        self.rescan();
                        last_rescan = Some(Instant::now());
                    }
                    while let Ok(ev) = rx.try_recv() {
                        self.handle(ev, &mut in_flight)?;
                    }
                    if !self.paused() {
                        let step = (|| -> Result<(), WatchError> {
                            self.take_quiet_files()?;
                            self.dispatch(&job_tx, &mut in_flight, QUEUE_DEPTH)?;
                            if let Some(s) = self.schedule {
                                let start = parse_local(&self.ledger.period_start()?);
                                let now = chrono::Local::now().naive_local();
                                if s.due(start, now) {
                                    close_batch(&mut self.ledger, &self.engine, &self.config)?;
                                }
                            }
                            Ok(())
                        })();
                        match step {
                            Err(e) if is_disk_full(&e) => self.pause_for_disk(&e.to_string()),
                            r => r?,
                        }
                    }
                    if last_beat.elapsed() >= Duration::from_secs(30) {
                        self.ledger
                            .set_meta("heartbeat", &chrono::Local::now().to_rfc3339())?;
                        last_beat = Instant::now();
                    }
                    if let Ok(ev) = rx.recv_timeout(Duration::from_millis(500)) {
                        self.handle(ev, &mut in_flight)?;
                    }
                }
                Ok(())
            })();
            // Readers skip what is queued once `stop` is set; the files they
            // hold are finished and stored before they exit.
            stop.store(true, Ordering::SeqCst);
            drop(job_tx);
            while !in_flight.ids.is_empty() {
                match rx.recv() {
                    Ok(Event::Read { id, result: done }) => {
                        in_flight.ids.remove(&id);
                        if let Err(e) = done {
                            tracing::error!("storing a read file failed: {e}");
                        }
                    }
                    Ok(Event::Path(_)) => {}
                    Err(_) => break,
                }
            }
            result
        })?;
        drop(watcher);
        tracing::info!("stopped");
        Ok(())
    }

    fn handle(&mut self, ev: Event, in_flight: &mut InFlight) -> Result<(), WatchError> {
        match ev {
            Event::Path(path) => self.notice(&path),
            Event::Read { id, result } => {
                in_flight.ids.remove(&id);
                match result {
                    Err(e) if is_disk_full(&e) => {
                        // The scan stays `received` and is read again once
                        // there is room; this try does not count.
                        let _ = self.ledger.undo_attempt(id);
                        self.pause_for_disk(&e.to_string());
                    }
                    r => r?,
                }
            }
        }
        Ok(())
    }

    /// Stops taking, reading and closing until there is room again.
    fn pause_for_disk(&mut self, why: &str) {
        if self.paused_until.is_none() {
            tracing::error!("UNHEALTHY: disk full, work paused until there is room: {why}");
        }
        self.paused_until = Some(Instant::now() + Duration::from_secs(10));
    }

    /// Whether work is paused for a full disk; checks again once the pause
    /// is over, and resumes by itself.
    fn paused(&mut self) -> bool {
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            return true;
        }
        match disk_full(&self.config) {
            Some(why) => {
                self.pause_for_disk(&why);
                true
            }
            None => {
                if self.paused_until.take().is_some() {
                    tracing::info!("disk has room again; work resumes");
                }
                false
            }
        }
    }

    /// Queues pending scans for the readers, at most `depth` in flight. A
    /// file whose earlier try was cut short is read alone, so that only a
    /// file that really stops the reader collects tries.
    fn dispatch(
        &mut self,
        jobs: &mpsc::Sender<PendingScan>,
        in_flight: &mut InFlight,
        depth: usize,
    ) -> Result<(), WatchError> {
        self.reload_register_if_changed();
        for (dup, reason) in self.ledger.duplicates_to_quarantine()? {
            let path = self.config.watch.work.join(&dup.work_path);
            let entry = emit::quarantine(&self.config.watch.out, &path, &dup.source, &reason)?;
            self.ledger.store_quarantine(dup.id, &entry)?;
        }
        if in_flight.busy(depth) {
            return Ok(());
        }
        for p in in_flight.pick(self.ledger.pending()?, depth) {
            if jobs.send(p).is_err() {
                break;
            }
        }
        Ok(())
    }

    fn start_watcher(
        &self,
        tx: mpsc::Sender<Event>,
    ) -> Result<Box<dyn notify::Watcher>, WatchError> {
        use notify::Watcher;
        let inbox = &self.config.watch.inbox;
        let poll = match self.config.watch.mode {
            WatchMode::Poll => true,
            WatchMode::Inotify => false,
            WatchMode::Auto => is_network_fs(inbox),
        };
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                for p in ev.paths {
                    let _ = tx.send(Event::Path(p));
                }
            }
        };
        let mut w: Box<dyn notify::Watcher> = if poll {
            let cfg = notify::Config::default().with_poll_interval(Duration::from_secs_f64(
                self.config.watch.poll_secs.max(0.2),
            ));
            Box::new(notify::PollWatcher::new(handler, cfg)?)
        } else {
            Box::new(notify::RecommendedWatcher::new(
                handler,
                notify::Config::default(),
            )?)
        };
        if inbox.exists() {
            if let Err(e) = w.watch(inbox, notify::RecursiveMode::Recursive) {
                tracing::warn!(inbox = %inbox.display(), "cannot watch, relying on rescans: {e}");
            }
        }
        tracing::info!(inbox = %inbox.display(), mode = if poll { "poll" } else { "inotify" }, "watcher started");
        Ok(w)
    }

    /// Logs each branch inbox that goes missing or comes back; true when
    /// one came back.
    fn check_inboxes(&mut self) -> bool {
        let mut recovered = false;
        for b in &self.config.watch.branches {
            let dir = self.config.watch.inbox.join(b);
            let trouble = inbox_trouble(&dir, self.config.watch.mounted);
            let ok = trouble.is_none();
            let was = self.healthy.insert(b.clone(), ok);
            match (was, trouble) {
                (Some(true) | None, Some(why)) => {
                    tracing::warn!(branch = %b, inbox = %dir.display(), "{why}; retrying")
                }
                (Some(false), None) => {
                    tracing::info!(branch = %b, "inbox is back");
                    recovered = true;
                }
                _ => {}
            }
        }
        recovered
    }

    fn rescan(&mut self) {
        if let Ok(listing) = intake::list(&self.config.watch.inbox) {
            for s in listing.scans {
                self.notice(&s.path);
            }
            for r in listing.refused {
                self.notice(&self.config.watch.inbox.join(&r.rel));
            }
        }
    }

    fn notice(&mut self, path: &Path) {
        // Never followed: a link, FIFO or device is reported once and left.
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if let Some(kind) = intake::refused_kind(m.file_type()) {
                if self.refused.insert(path.to_path_buf()) {
                    let file = path
                        .strip_prefix(&self.config.watch.inbox)
                        .unwrap_or(path)
                        .display();
                    tracing::warn!(%file, kind, "not a regular file: never read (todoke status lists it)");
                }
            } else if m.is_file() {
                let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                let quiet = Duration::from_secs_f64(self.config.watch.quiet_secs);
                self.quiet
                    .observe(path, m.len(), mtime, Instant::now(), quiet);
            }
        }
    }

    /// Takes every tracked file that has been still for the quiet period and
    /// whose format end is present.
    fn take_quiet_files(&mut self) -> Result<(), WatchError> {
        self.quiet.retain_existing();
        self.incomplete.retain(|p, _| p.exists());
        let quiet = Duration::from_secs_f64(self.config.watch.quiet_secs);
        let inbox = self.config.watch.inbox.clone();
        let mut tracked = self.quiet.tracked();
        tracked.sort();
        for path in tracked {
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !m.is_file() {
                self.quiet.forget(&path);
                continue;
            }
            let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if !self
                .quiet
                .observe(&path, m.len(), mtime, Instant::now(), quiet)
            {
                continue;
            }
            // The file's own mtime must be as old, too (a mtime in the
            // future, from a share's skewed clock, leaves it to the tracker).
            if SystemTime::now()
                .duration_since(mtime)
                .is_ok_and(|age| age < quiet)
            {
                continue;
            }
            let Some(scan) = scan_of(&inbox, &path) else {
                self.quiet.forget(&path);
                continue;
            };
            // An empty or never-finished file is taken (and quarantined)
            // only after it has been still for a long while.
            let stale = self
                .quiet
                .observe(&path, m.len(), mtime, Instant::now(), quiet * 12);
            let mut sha = None;
            // A file over the size limit is quarantined unread: it is not
            // read whole to look for its end either.
            let too_big = m.len() > self.config.decode.max_file_bytes;
            if !stale && !too_big {
                // A file already found incomplete as it is now is not read
                // again every tick (on a share that is real traffic).
                if self.incomplete.get(&path) == Some(&(m.len(), mtime)) {
                    continue;
                }
                // Judge the very bytes the quiet check saw: a write landing
                // between the stat and the read must not make a half file
                // look complete.
                let Ok(bytes) = intake::read_regular(&path) else {
                    continue;
                };
                let unchanged = bytes.len() as u64 == m.len()
                    && std::fs::symlink_metadata(&path).is_ok_and(|now| {
                        now.len() == m.len() && now.modified().ok() == m.modified().ok()
                    });
                if !unchanged {
                    continue;
                }
                if !crate::decode::looks_complete(&bytes) {
                    self.incomplete.insert(path.clone(), (m.len(), mtime));
                    continue;
                }
                // A rename keeps these very bytes, and a copy is verified
                // against the original, so they need not be read again.
                sha = Some(hex::encode(Sha256::digest(&bytes)));
            }
            self.incomplete.remove(&path);
            self.take(&scan, sha)?;
            self.quiet.forget(&path);
        }
        Ok(())
    }

    /// Moves a scan into the work area, then records it. A crash between the
    /// two is found by `recover`.
    fn take(&mut self, scan: &Scan, sha: Option<String>) -> Result<(), WatchError> {
        let name = scan.rel.rsplit('/').next().unwrap_or(&scan.rel);
        // The stamp makes a long name longer than the file system takes;
        // the name as dropped is kept in the ledger.
        let name = crate::names::fit(name, crate::names::NAME_MAX - 32);
        let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f");
        let dir = self.config.watch.work.join(&scan.branch);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut rel = format!("{}/{stamp}_{name}", scan.branch);
        let mut n = 2;
        while self.config.watch.work.join(&rel).exists() {
            rel = format!("{}/{stamp}-{n}_{name}", scan.branch);
            n += 1;
        }
        let target = self.config.watch.work.join(&rel);
        // A copy may hold bytes written after the check: hash what landed.
        let renamed = move_file(&scan.path, &target)?;
        let sha = sha.filter(|_| renamed);
        self.record_taken(&target, &rel, &scan.rel, &scan.branch, sha)
    }

    fn record_taken(
        &mut self,
        path: &Path,
        rel: &str,
        source: &str,
        branch: &str,
        sha: Option<String>,
    ) -> Result<(), WatchError> {
        let sha = match sha {
            Some(sha) => sha,
            None => intake::sha256_file(path).map_err(io(path))?,
        };
        match self.ledger.receive(&sha, branch, source, rel)? {
            Received::New(_) => tracing::info!(file = %source, "taken"),
            Received::Duplicate { first_source, .. } => {
                tracing::warn!(file = %source, first = %first_source, "same file received twice; quarantined")
            }
        }
        Ok(())
    }

    /// A register that fails to load keeps the previous one in use.
    fn reload_register_if_changed(&mut self) {
        let stamp = modified(&self.config.watch.register);
        if stamp == self.register_stamp {
            return;
        }
        match Register::load(&self.config.watch.register, &self.config.register) {
            Ok(r)
                if shrunk_too_much(
                    self.engine.register_rows(),
                    r.people.len(),
                    self.config.watch.register_max_shrink,
                ) =>
            {
                self.register_stamp = stamp;
                tracing::error!(
                    rows = r.people.len(),
                    in_use = self.engine.register_rows(),
                    "register not reloaded: the new export has far fewer rows than the one in use \
                     (cut off?); the previous one stays in use ([watch] register_max_shrink)"
                );
            }
            Ok(r) => {
                if r.people.is_empty() {
                    tracing::warn!("the register has no rows: every page will go to staff");
                }
                self.engine.set_register(r);
                self.register_stamp = stamp;
                tracing::info!("register reloaded");
            }
            Err(e) => {
                // Once per change of the file, not every tick.
                self.register_stamp = stamp;
                tracing::error!("register not reloaded, the previous one stays in use: {e}")
            }
        }
    }
}

/// Whether a register of `new` rows replacing one of `old` rows lost more
/// than `max_share` of them.
fn shrunk_too_much(old: usize, new: usize, max_share: f64) -> bool {
    (new as f64) < old as f64 * (1.0 - max_share.clamp(0.0, 1.0))
}

/// Something for the daemon's thread: a path an event named, or a reader
/// done with a file.
enum Event {
    Path(PathBuf),
    Read {
        id: i64,
        result: Result<(), WatchError>,
    },
}

/// Scans handed to readers and not yet reported back.
#[derive(Default)]
struct InFlight {
    ids: std::collections::HashSet<i64>,
    /// The one in flight was cut short before, so nothing else goes with it.
    suspect: bool,
}

impl InFlight {
    /// Nothing more may be handed out now (saves asking the ledger).
    fn busy(&self, depth: usize) -> bool {
        self.ids.len() >= depth || (self.suspect && !self.ids.is_empty())
    }

    /// Takes from `pending` what may be handed out now and counts it in
    /// flight: a suspect alone, and only once nothing else is in flight;
    /// otherwise fresh files up to `depth`. Suspects come first, so after a
    /// restart they go one by one before the rest.
    fn pick(&mut self, mut pending: Vec<PendingScan>, depth: usize) -> Vec<PendingScan> {
        if self.ids.is_empty() {
            self.suspect = false;
        }
        let mut out = Vec::new();
        if self.suspect {
            return out;
        }
        pending.retain(|p| !self.ids.contains(&p.id));
        pending.sort_by_key(|p| p.attempts == 0);
        for p in pending {
            let suspect = p.attempts > 0;
            if self.ids.len() >= depth || (suspect && !self.ids.is_empty()) {
                break;
            }
            self.ids.insert(p.id);
            self.suspect = suspect;
            out.push(p);
            if suspect {
                break;
            }
        }
        out
    }
}

/// One reader: its own ledger connection, files from the shared queue
/// until the queue closes; once `stop` is set, queued files are left
/// pending (not started, so no try is counted).
fn reader_thread(
    engine: &Engine<'_>,
    config: &Config,
    jobs: &Mutex<mpsc::Receiver<PendingScan>>,
    done: mpsc::Sender<Event>,
    stop: &AtomicBool,
) {
    let mut ledger = Ledger::open(&config.watch.state);
    loop {
        let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let result = if stop.load(Ordering::SeqCst) {
            Ok(())
        } else {
            match &mut ledger {
                Ok(l) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    read_with(engine, config, l, &job)
                }))
                .unwrap_or_else(|_| {
                    Err(WatchError::ReaderPanicked {
                        file: job.source.clone(),
                    })
                }),
                Err(e) => Err(WatchError::Io {
                    path: config.watch.state.clone(),
                    source: std::io::Error::other(e.to_string()),
                }),
            }
        };
        if done.send(Event::Read { id: job.id, result }).is_err() {
            return;
        }
    }
}

/// Counts the try (committed before it), reads the file and stores the
/// outcome. A file that kills the reader is quarantined after MAX_TRIES
/// rather than retried forever; kills from outside count too, hence many
/// tries, each alone once cut short.
fn read_with(
    engine: &Engine<'_>,
    config: &Config,
    ledger: &mut Ledger,
    p: &PendingScan,
) -> Result<(), WatchError> {
    let work = &config.watch.work;
    let outcome = if ledger.begin_attempt(p.id)? > MAX_TRIES {
        FileOutcome::Quarantine {
            reason: "read_crashed: the reader stopped every time it read this file".into(),
        }
    } else {
        let scan = Scan {
            path: work.join(&p.work_path),
            rel: p.source.clone(),
            branch: p.branch.clone(),
            // The day of the read, not of the receipt: a file that
            // changed after it was taken is read again, and what is read is
            // certainly on paper by now. The daemon reads within moments of
            // a scan's arrival, so the two are the same day but after a
            // backlog.
            received_on: chrono::Local::now().date_naive(),
        };
        // A writer that still holds the file when it is taken writes on
        // into the renamed file: what was read must be what is there after
        // the read, or it is read again.
        let mut tries = 0;
        loop {
            let (sha, outcome) = engine.process(&scan);
            let now = intake::sha256_file(&scan.path).unwrap_or_default();
            tries += 1;
            if sha.is_empty() || now == sha || tries >= 3 {
                if !sha.is_empty() && ledger.sha_of(p.id)?.is_some_and(|taken| taken != sha) {
                    tracing::warn!(file = %p.source, "changed after it was taken; read as it is now");
                    ledger.set_sha(p.id, &sha)?;
                }
                break outcome;
            }
            tracing::warn!(file = %p.source, "changed while it was read; reading it again");
        }
    };
    match outcome {
        FileOutcome::Pages(pages) => {
            let demoted = ledger.store_read(p.id, &pages)?;
            tracing::info!(file = %p.source, pages = pages.len(), duplicate_pages = demoted, "read");
        }
        FileOutcome::Quarantine { reason } => {
            let path = work.join(&p.work_path);
            let entry = emit::quarantine(&config.watch.out, &path, &p.source, &reason)?;
            ledger.store_quarantine(p.id, &entry)?;
            tracing::info!(file = %p.source, %reason, "quarantined");
        }
    }
    Ok(())
}

/// Free space below which the daemon pauses rather than half-write a
/// quarantine copy, a batch or the ledger.
const MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes free to this user on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0)
        .then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// The folders the daemon writes into, when one of them is (nearly) full.
fn disk_full(config: &Config) -> Option<String> {
    short_of_room(config).map(|(mb, dir)| format!("disk full ({mb} MB free on {})", dir.display()))
}

/// The first working folder whose disk has less than `MIN_FREE_BYTES` free:
/// (MB free, folder).
fn short_of_room(config: &Config) -> Option<(u64, PathBuf)> {
    [&config.watch.out, &config.watch.work, &config.watch.state]
        .into_iter()
        .find_map(|p| {
            let dir = if p.is_dir() { p.as_path() } else { p.parent()? };
            let free = free_bytes(dir)?;
            (free < MIN_FREE_BYTES).then(|| (free >> 20, dir.to_path_buf()))
        })
}

/// Whether an error is the disk (or the user's quota) being full: work
/// pauses and resumes by itself instead of the daemon stopping.
fn is_disk_full(e: &WatchError) -> bool {
    let io_full =
        |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT));
    let sql_full =
        |e: &rusqlite::Error| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
    match e {
        WatchError::Io { source, .. } => io_full(source),
        WatchError::Emit(emit::EmitError::Io { source, .. }) => io_full(source),
        WatchError::Ledger(LedgerError::Sql(s) | LedgerError::Open { source: s, .. }) => {
            sql_full(s)
        }
        _ => false,
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn parse_local(rfc3339: &str) -> NaiveDateTime {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono::Local).naive_local())
        .unwrap_or_else(|_| chrono::Local::now().naive_local())
}

/// The inbox-relative scan for a path, unless it is clutter or outside.
fn scan_of(inbox: &Path, path: &Path) -> Option<Scan> {
    let rel = path.strip_prefix(inbox).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.iter().any(|p| intake::is_clutter(p)) {
        return None;
    }
    let branch = if parts.len() > 1 {
        parts[0].clone()
    } else {
        intake::ROOT_BRANCH.to_string()
    };
    Some(Scan {
        path: path.to_path_buf(),
        rel: parts.join("/"),
        branch,
        received_on: chrono::Local::now().date_naive(),
    })
}

/// `<branch>/<stamp>_<name>` in the work area → `<branch>/<name>` as dropped.
fn source_of(work_rel: &str) -> String {
    match work_rel.split_once('/') {
        Some((branch, file)) => {
            let name = file.split_once('_').map_or(file, |(_, n)| n);
            format!("{branch}/{name}")
        }
        None => work_rel.to_string(),
    }
}

/// Atomic rename on one file system; across file systems copy, sync,
/// verify, then remove the original.
/// Renames, or across file systems copies, syncs, verifies and removes;
/// true when it was a rename (so the content is the very file checked).
fn move_file(from: &Path, to: &Path) -> Result<bool, WatchError> {
    let renamed = match std::fs::rename(from, to) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let before = intake::sha256_file(from).map_err(io(from))?;
            let copied = (|| {
                let mut f = std::fs::File::create(to)?;
                std::io::copy(&mut intake::open_regular(from)?, &mut f)?;
                f.sync_all()
            })();
            // A half copy (the disk filled up) must not stay behind.
            if let Err(e) = copied {
                let _ = std::fs::remove_file(to);
                return Err(io(to)(e));
            }
            if intake::sha256_file(to).map_err(io(to))? != before {
                let _ = std::fs::remove_file(to);
                return Err(WatchError::CopyMismatch {
                    path: from.to_path_buf(),
                });
            }
            std::fs::remove_file(from).map_err(io(from))?;
            false
        }
        Err(e) => return Err(io(from)(e)),
    };
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(renamed)
}

/// Files of a forms folder that are templates or their printable blanks
/// (not the generator script a checkout also holds).
fn is_form_file(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| ["toml", "pdf", "png", "md"].iter().any(|x| e == *x))
}

/// Creates a working folder: settings, its own copy of the shipped
/// templates in `forms/` (a city adapts its forms there; an upgrade never
/// writes into it, `todoke status` says when newer ones ship), one inbox
/// per branch, output, work area and ledger. Every path in the settings is
/// relative to the folder, so it can be moved. Run again, it adds what is
/// missing and leaves the settings and template copies as they are. With
/// `owner` (the daemon's account), the folder and everything listed here
/// are given to that account, which the daemon runs as.
pub fn init(
    dir: &Path,
    shipped_forms: &Path,
    owner: Option<&str>,
) -> Result<Initialised, WatchError> {
    let account = match owner {
        Some(name) => Some((
            name,
            system_user(name).ok_or_else(|| WatchError::NoSuchUser(name.into()))?,
        )),
        None => None,
    };
    let mut made: Vec<PathBuf> = Vec::new();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    made.push(dir.to_path_buf());
    let settings = dir.join("todoke.toml");
    if !settings.exists() {
        emit::private_file(
            &settings,
            crate::config::settings_text(Path::new("forms")).as_bytes(),
        )?;
    }
    made.push(settings.clone());
    let forms = dir.join("forms");
    emit::private_dir(&forms)?;
    made.push(forms.clone());
    let (mut copied, mut kept) = (0, 0);
    let mut shipped: Vec<PathBuf> = std::fs::read_dir(shipped_forms)
        .map_err(io(shipped_forms))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_form_file(p))
        .collect();
    shipped.sort();
    for src in shipped {
        let to = forms.join(src.file_name().unwrap_or_default());
        if to.exists() {
            kept += 1;
            continue;
        }
        emit::private_copy(&src, &to)?;
        made.push(to);
        copied += 1;
    }
    let config = Config::load(&settings).map_err(|e| WatchError::Io {
        path: settings.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    for b in &config.watch.branches {
        let d = config.watch.inbox.join(b);
        std::fs::create_dir_all(&d).map_err(io(&d))?;
        made.push(d);
    }
    made.push(config.watch.inbox.clone());
    for d in [&config.watch.out, &config.watch.work] {
        emit::private_dir(d)?;
        made.push(d.clone());
    }
    // Made here rather than at the daemon's first start, so that a
    // `todoke status` run by root before then does not create it as root's.
    drop(Ledger::open(&config.watch.state)?);
    made.push(config.watch.state.clone());
    if let Some((_, (uid, gid))) = account {
        for p in &made {
            std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(io(p))?;
        }
    }
    Ok(Initialised {
        settings,
        forms,
        copied,
        kept,
        owner: account.map(|(name, _)| name.to_string()),
    })
}

/// The uid and gid of a local account.
pub fn system_user(name: &str) -> Option<(u32, u32)> {
    let c = std::ffi::CString::new(name).ok()?;
    // getpwnam's record is static and overwritten by the next call; the
    // two numbers are copied out at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    let pw = unsafe { &*pw };
    Some((pw.pw_uid, pw.pw_gid))
}

/// Templates shipped with this todoke later than the working folder's
/// copies of the same forms (none when the settings use the shipped ones).
pub fn newer_templates(config: &Config) -> Vec<(template::TemplateHead, template::TemplateHead)> {
    let shipped = crate::paths::locate(crate::paths::Asset::Forms, None);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if shipped.origin == crate::paths::Origin::Missing || same(&shipped.path, &config.forms_dir) {
        return Vec::new();
    }
    match (
        template::heads(&shipped.path),
        template::heads(&config.forms_dir),
    ) {
        (Ok(s), Ok(y)) => template::newer_shipped(&s, &y),
        _ => Vec::new(),
    }
}

/// What `todoke status` prints.
pub fn status_text(config: &Config, lang: Lang) -> Result<String, WatchError> {
    use std::fmt::Write;
    let ledger = Ledger::open(&config.watch.state)?;
    let s = ledger.status()?;
    // Ledger states and batch states are codes; staff read words.
    let word = |prefix: &str, code: &str| {
        let id = format!("{prefix}{code}");
        if i18n::has(lang, &id) {
            t(lang, &id)
        } else {
            code.to_string()
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", t(lang, "st-scans"));
    if s.by_state.is_empty() {
        let _ = writeln!(out, "  {}", t(lang, "st-none"));
    }
    for (k, v) in &s.by_state {
        let _ = writeln!(out, "  {:<12} {v}", word("st-state-", k));
    }
    let _ = writeln!(out, "{}", t(lang, "st-branches"));
    // Files dropped in the inbox root belong to the branch `main`.
    let root = intake::list(&config.watch.inbox).unwrap_or_default();
    let in_root = |v: &[intake::Scan]| v.iter().any(|s| s.branch == intake::ROOT_BRANCH);
    let mut branches: Vec<&str> = config.watch.branches.iter().map(String::as_str).collect();
    if !branches.contains(&intake::ROOT_BRANCH)
        && (in_root(&root.scans)
            || root.refused.iter().any(|r| r.branch == intake::ROOT_BRANCH)
            || s.received_by_branch.contains_key(intake::ROOT_BRANCH)
            || s.open_by_branch.contains_key(intake::ROOT_BRANCH))
    {
        branches.push(intake::ROOT_BRANCH);
    }
    for b in branches {
        let dir = config.watch.inbox.join(b);
        let listing = if b == intake::ROOT_BRANCH && !dir.is_dir() {
            let mine = |branch: &str| branch == intake::ROOT_BRANCH;
            Ok(intake::Listing {
                scans: root
                    .scans
                    .iter()
                    .filter(|s| mine(&s.branch))
                    .cloned()
                    .collect(),
                refused: root
                    .refused
                    .iter()
                    .filter(|r| mine(&r.branch))
                    .cloned()
                    .collect(),
            })
        } else {
            match inbox_trouble(&dir, config.watch.mounted) {
                Some(why) if why.starts_with("share not mounted") => {
                    Err(t(lang, "st-unhealthy-mount"))
                }
                Some(_) => Err(t(lang, "st-unhealthy-missing")),
                None => intake::list(&dir).map_err(|_| t(lang, "st-unhealthy-missing")),
            }
        };
        let waiting = match listing {
            Err(why) => why,
            Ok(l) if !l.refused.is_empty() => ta(
                lang,
                "st-unhealthy-refused",
                &[
                    ("waiting", l.scans.len().into()),
                    ("count", l.refused.len().into()),
                    (
                        "files",
                        l.refused
                            .iter()
                            .map(|r| format!("{} {}", r.kind, r.rel))
                            .collect::<Vec<_>>()
                            .join(", ")
                            .into(),
                    ),
                ],
            ),
            Ok(l) => l.scans.len().to_string(),
        };
        let _ = writeln!(
            out,
            "  {b:<12} {waiting} / {} / {}",
            s.received_by_branch.get(b).unwrap_or(&0),
            s.open_by_branch.get(b).unwrap_or(&0)
        );
    }
    if let Some((mb, dir)) = short_of_room(config) {
        let _ = writeln!(
            out,
            "{}",
            ta(
                lang,
                "st-unhealthy-disk",
                &[("mb", mb.into()), ("dir", dir.display().to_string().into())]
            )
        );
    }
    match &s.last_batch {
        Some(b) => {
            let closed = b
                .closed_at
                .as_deref()
                .map(|c| ta(lang, "st-closed", &[("at", c.into())]))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{}",
                ta(
                    lang,
                    "st-last-batch",
                    &[
                        ("id", b.id.as_str().into()),
                        ("state", word("st-batch-", &b.state).into()),
                        ("scans", b.scans.into()),
                        ("closed", closed.into()),
                    ]
                )
            );
        }
        None => {
            let _ = writeln!(out, "{}", t(lang, "st-last-batch-none"));
        }
    }
    let heartbeat = s.heartbeat.clone().unwrap_or_else(|| t(lang, "st-never"));
    let _ = writeln!(
        out,
        "{}",
        ta(lang, "st-heartbeat", &[("at", heartbeat.into())])
    );
    for (shipped, yours) in newer_templates(config) {
        let _ = writeln!(
            out,
            "{}",
            ta(
                lang,
                "st-template-newer",
                &[
                    ("form", shipped.id.as_str().into()),
                    ("shipped", shipped.version.as_str().into()),
                    ("yours", yours.version.as_str().into()),
                    ("shipped_path", shipped.path.display().to_string().into()),
                    ("yours_path", yours.path.display().to_string().into()),
                ]
            )
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn weekly_close_is_due_once_per_scheduled_moment() {
        let s = parse_schedule("Mon 09:00").unwrap().unwrap();
        // 2026-11-23 is a Monday.
        assert_eq!(
            s.last_before(at(2026, 11, 23, 9, 0)),
            at(2026, 11, 23, 9, 0)
        );
        assert_eq!(
            s.last_before(at(2026, 11, 23, 8, 59)),
            at(2026, 11, 16, 9, 0)
        );
        assert_eq!(
            s.last_before(at(2026, 11, 27, 12, 0)),
            at(2026, 11, 23, 9, 0)
        );
        assert!(!s.due(at(2026, 11, 17, 10, 0), at(2026, 11, 23, 8, 59)));
        assert!(s.due(at(2026, 11, 17, 10, 0), at(2026, 11, 23, 9, 0)));
        // Just closed at 09:00:30: not due again until next Monday.
        assert!(!s.due(
            at(2026, 11, 23, 9, 0) + chrono::Duration::seconds(30),
            at(2026, 11, 25, 9, 0)
        ));
        // Stopped over the weekend's moment: due at start.
        assert!(s.due(at(2026, 11, 13, 9, 0), at(2026, 11, 24, 7, 0)));
        assert!(parse_schedule("").unwrap().is_none());
        assert!(parse_schedule("Monday at nine").is_err());
        assert!(parse_schedule("Xyz 09:00").is_err());
    }

    fn pending(id: i64, attempts: i64) -> PendingScan {
        PendingScan {
            id,
            work_path: format!("honcho/{id}.png"),
            source: format!("honcho/{id}.png"),
            branch: "honcho".into(),
            attempts,
        }
    }

    #[test]
    fn a_file_cut_short_before_is_read_alone_and_then_the_rest_go_on() {
        let ids = |v: Vec<PendingScan>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
        let mut f = InFlight::default();
        let all = || vec![pending(1, 0), pending(2, 1), pending(3, 0), pending(4, 0)];
        // The suspect (2) goes first and alone.
        assert_eq!(ids(f.pick(all(), 3)), [2]);
        assert!(f.busy(3));
        assert!(f.pick(all(), 3).is_empty());
        // Once it is done, fresh files go, up to the depth.
        f.ids.remove(&2);
        assert!(!f.busy(3));
        let rest = vec![pending(1, 0), pending(3, 0), pending(4, 0)];
        assert_eq!(ids(f.pick(rest.clone(), 2)), [1, 3]);
        assert!(f.busy(2));
        // 1 is read and stored, so no longer pending.
        f.ids.remove(&1);
        assert_eq!(ids(f.pick(rest[1..].to_vec(), 2)), [4]);
        // A suspect waits until what is in flight is done.
        assert!(f.pick(vec![pending(5, 2)], 8).is_empty());
        f.ids.clear();
        assert_eq!(ids(f.pick(vec![pending(5, 2)], 8)), [5]);
    }

    #[test]
    fn an_inbox_that_should_be_a_mount_and_is_not_is_unhealthy() {
        assert!(is_mount_point(Path::new("/")));
        assert!(is_mount_point(Path::new("/proc")));
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("inbox");
        std::fs::create_dir_all(inbox.join("honcho")).unwrap();
        assert!(!is_mount_point(&inbox.join("honcho")));
        let mut config = Config::default();
        config.watch.inbox = inbox.clone();
        config.watch.branches = vec!["honcho".into(), "sakura".into()];
        config.watch.state = dir.path().join("todoke.db");
        let text = |config: &Config| status_text(config, Lang::En).unwrap();
        // Without the setting an empty local folder is a branch with nothing waiting.
        assert!(
            text(&config).contains("honcho       0 / 0 / 0"),
            "{}",
            text(&config)
        );
        config.watch.mounted = true;
        let shown = text(&config);
        assert!(
            shown.contains("honcho       UNHEALTHY: share not mounted"),
            "{shown}"
        );
        assert!(shown.contains("sakura       UNHEALTHY: inbox missing or unreadable"));
    }

    /// Issue 15, item 10: a full disk used to stop the daemon (and again at
    /// every start); it is now told apart from other errors, which pauses
    /// work instead, and the free space is measured for `todoke status`.
    #[test]
    fn a_full_disk_is_told_apart_and_measured() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_disk_full(&WatchError::Emit(emit::EmitError::Io {
            path: "/out/quarantine/x".into(),
            source: full,
        })));
        assert!(is_disk_full(&io(Path::new("/work/x"))(
            std::io::Error::from_raw_os_error(libc::EDQUOT)
        )));
        assert!(!is_disk_full(&io(Path::new("/work/x"))(
            std::io::Error::from_raw_os_error(libc::EACCES)
        )));
        let sql = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(is_disk_full(&WatchError::Ledger(LedgerError::Sql(sql))));
        assert!(free_bytes(Path::new("/")).is_some_and(|b| b > 0));
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.watch.out = dir.path().join("out");
        config.watch.work = dir.path().join("work");
        config.watch.state = dir.path().join("todoke.db");
        assert_eq!(disk_full(&config), None, "this machine has room");
    }

    /// Issue 15, item 15: a header-only or cut-off register replaced the
    /// one in use with an INFO line only.
    #[test]
    fn a_register_that_shrinks_too_much_is_refused() {
        assert!(shrunk_too_much(1000, 0, 0.2), "header only");
        assert!(shrunk_too_much(1000, 500, 0.2), "cut in half");
        assert!(!shrunk_too_much(1000, 850, 0.2));
        assert!(!shrunk_too_much(1000, 1200, 0.2));
        assert!(!shrunk_too_much(1000, 0, 1.0), "told to accept it");
        assert!(!shrunk_too_much(0, 0, 0.2));
    }

    #[test]
    fn work_names_give_back_the_dropped_name() {
        assert_eq!(
            source_of("honcho/20261123T090000.123_scan_01.pdf"),
            "honcho/scan_01.pdf"
        );
        let inbox = Path::new("/srv/inbox");
        let s = scan_of(inbox, Path::new("/srv/inbox/sakura/a.png")).unwrap();
        assert_eq!(
            (s.rel.as_str(), s.branch.as_str()),
            ("sakura/a.png", "sakura")
        );
        assert!(scan_of(inbox, Path::new("/srv/inbox/sakura/~$a.docx")).is_none());
        assert!(scan_of(inbox, Path::new("/elsewhere/a.png")).is_none());
    }
}
