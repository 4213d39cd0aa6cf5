//! `todoke review`: the local web page where staff clear mismatches.
//!
//! Bound to 127.0.0.1 by default. Every request needs the random token
//! printed at start (in the URL once, then an HttpOnly SameSite=Strict
//! cookie); every change also needs the page's CSRF value and, when the
//! browser sends one, our own Origin. Nothing is fetched from outside: the
//! script and style are served from here, images are data URIs.

use crate::config::Config;
use crate::emit::{esc, mask};
use crate::i18n::{self, t, ta, Labels, Lang};
use crate::ledger::{Decision, Ledger, LedgerError, OpenMismatch};
use crate::matching::{self, Register};
use crate::review::{self, Edits};
use crate::template::{self, Template};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::time::SystemTime;
use tiny_http::{Header, Method, Request, Response, Server};

pub struct ReviewOptions {
    pub bind: String,
    pub port: u16,
    /// Fixed reviewer name; otherwise staff give theirs on the page.
    pub reviewer: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {detail}")]
    Listen { addr: String, detail: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error(transparent)]
    Register(#[from] matching::RegisterError),
}

pub struct ReviewServer {
    server: Server,
    pub url: String,
    bind: String,
    port: u16,
    token: String,
    csrf: String,
    config: Config,
    templates: Vec<Template>,
    register: Register,
    register_stamp: Option<SystemTime>,
    reviewer: Option<String>,
    lang: Lang,
    labels: Labels,
}

/// How long a request waits for a ledger another process has locked.
const LEDGER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Largest request body read, in bytes; a form post is far smaller.
const MAX_BODY: u64 = 1 << 20;

/// Whether the request announces a body that may arrive slowly: tiny_http
/// reads a body of up to 1,024 bytes before handing the request over, and
/// a larger or chunked one only when it is read (or the request dropped).
fn declares_body(req: &Request) -> bool {
    req.body_length().is_none_or(|n| n > 1024)
        && (req.body_length().is_some() || header_value(req, "Transfer-Encoding").is_some())
}

/// Reads a request's body, or answers the request itself when the body is
/// too large or was not sent within `BODY_WAIT` (the client is gone).
fn read_body(mut req: Request) -> Option<(Request, String)> {
    let started = std::time::Instant::now();
    let mut body = Vec::new();
    let read = req.as_reader().take(MAX_BODY + 1).read_to_end(&mut body);
    let refuse = |req: Request, code: u16, why: &str| {
        tracing::warn!(code, "review request refused: {why}");
        let _ = req.respond(Response::from_string(why).with_status_code(code));
        None
    };
    if body.len() as u64 > MAX_BODY {
        return refuse(req, 413, "request body too large");
    }
    if read.is_err() || started.elapsed() > BODY_WAIT {
        return refuse(req, 408, "the request body came too slowly");
    }
    Some((req, String::from_utf8_lossy(&body).into_owned()))
}

/// A body that takes longer than this is refused once it has arrived.
const BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

const SCRIPT: &str = include_str!("serve.js");
const STYLE: &str = include_str!("serve.css");

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header")
}

fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn parse_form(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .iter()
        .filter(|h| h.field.equiv("Cookie"))
        .flat_map(|h| h.value.as_str().split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode_component(v))
}

fn header_value(req: &Request, name: &'static str) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

/// Compares without an early exit, so the token cannot be guessed by timing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

enum Reply {
    Html(String),
    Redirect(String),
    Refused(u16, &'static str),
    Asset(&'static str, &'static str),
}

impl ReviewServer {
    pub fn start(config: Config, opts: &ReviewOptions) -> Result<Self, ServeError> {
        let addr = format!("{}:{}", opts.bind, opts.port);
        let server = Server::http(&addr).map_err(|e| ServeError::Listen {
            addr: addr.clone(),
            detail: e.to_string(),
        })?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .unwrap_or(opts.port);
        let token = random_hex(16);
        let url = format!("http://{}:{port}/?t={token}", opts.bind);
        let templates = template::load_dir(&config.forms_dir)?;
        let labels = Labels::from_templates(&templates);
        let lang = config.ui.lang;
        let register = Register::load(&config.watch.register, &config.register)?;
        // Made (schema, owner-only) once here, so that requests only read it.
        Ledger::open(&config.watch.state)?;
        let register_stamp = std::fs::metadata(&config.watch.register)
            .and_then(|m| m.modified())
            .ok();
        Ok(ReviewServer {
            server,
            url,
            bind: opts.bind.clone(),
            port,
            token,
            csrf: random_hex(16),
            config,
            templates,
            register,
            register_stamp,
            reviewer: opts.reviewer.clone().filter(|r| !r.trim().is_empty()),
            lang,
            labels,
        })
    }

    /// Serves until the process is stopped. A request with a body has it
    /// read on a thread of its own, so a client that announces a body and
    /// never sends it holds only that thread, not the page for everyone.
    pub fn run(mut self) -> Result<(), ServeError> {
        let (bodies_tx, bodies_rx) = std::sync::mpsc::channel::<(Request, String)>();
        loop {
            while let Ok((req, body)) = bodies_rx.try_recv() {
                self.handle(req, &body)?;
            }
            let req = match self
                .server
                .recv_timeout(std::time::Duration::from_millis(20))
            {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("review server: {e}");
                    continue;
                }
            };
            if !declares_body(&req) {
                // Any body is already in memory: reading it cannot wait.
                if let Some((req, body)) = read_body(req) {
                    self.handle(req, &body)?;
                }
                continue;
            }
            let tx = bodies_tx.clone();
            let spawned = std::thread::Builder::new()
                .name("review-body".into())
                .spawn(move || {
                    if let Some((req, body)) = read_body(req) {
                        let _ = tx.send((req, body));
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("review server: cannot start a thread: {e}");
            }
        }
    }

    /// Serves one request; used by tests.
    pub fn handle_next(&mut self) -> Result<(), ServeError> {
        if let Ok(req) = self.server.recv() {
            if let Some((req, body)) = read_body(req) {
                self.handle(req, &body)?;
            }
        }
        Ok(())
    }

    /// Whether the Host header names this server: a page reached under
    /// another name (DNS rebinding: attacker.example resolving to 127.0.0.1)
    /// is refused, even with the cookie.
    fn host_ok(&self, req: &Request) -> bool {
        let Some(host) = header_value(req, "Host") else {
            return false;
        };
        let port = self.port;
        [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("{}:{port}", self.bind),
        ]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&host))
    }

    fn handle(&mut self, req: Request, body: &str) -> Result<(), ServeError> {
        let url = req.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let query = parse_form(query);
        let mut set_cookie = None;
        let by_query = query.get("t").is_some_and(|t| same(t, &self.token));
        let by_cookie = cookie(&req, "todoke_t").is_some_and(|t| same(&t, &self.token));
        let reply = if !self.host_ok(&req) {
            Reply::Refused(421, "refused-host")
        } else if path == "/app.js" {
            Reply::Asset(SCRIPT, "text/javascript; charset=utf-8")
        } else if path == "/app.css" {
            Reply::Asset(STYLE, "text/css; charset=utf-8")
        } else if !by_query && !by_cookie {
            Reply::Refused(403, "refused-token")
        } else {
            if by_query {
                set_cookie = Some(format!(
                    "todoke_t={}; HttpOnly; SameSite=Strict; Path=/",
                    self.token
                ));
            }
            let reviewer = self
                .reviewer
                .clone()
                .or_else(|| cookie(&req, "todoke_reviewer").filter(|r| !r.trim().is_empty()));
            let answer = match *req.method() {
                Method::Get => self.get(path, &query, reviewer.as_deref()),
                Method::Post => {
                    let form = parse_form(body);
                    let origin_ok = header_value(&req, "Origin").is_none_or(|o| {
                        header_value(&req, "Host").is_some_and(|h| o == format!("http://{h}"))
                    });
                    if !origin_ok || !form.get("csrf").is_some_and(|c| same(c, &self.csrf)) {
                        Ok(Reply::Refused(403, "refused-csrf"))
                    } else if path == "/login" {
                        let name = form.get("name").map(|n| n.trim()).unwrap_or("");
                        if !name.is_empty() {
                            set_cookie = Some(format!(
                                "todoke_reviewer={}; HttpOnly; SameSite=Strict; Path=/",
                                encode_component(name)
                            ));
                        }
                        Ok(Reply::Redirect("/".into()))
                    } else {
                        match reviewer {
                            Some(r) => self.post(path, &form, &r),
                            None => Ok(Reply::Refused(403, "refused-name")),
                        }
                    }
                }
                _ => Ok(Reply::Refused(405, "refused-method")),
            };
            // A ledger that is locked or unreadable for a moment is an
            // answer to this request, not the end of the page.
            answer.unwrap_or_else(|e| {
                tracing::warn!(path, "review request not served: {e}");
                Reply::Refused(503, "refused-busy")
            })
        };
        let csp = "default-src 'none'; img-src data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        let common = |r: Response<std::io::Cursor<Vec<u8>>>| {
            let mut r = r
                .with_header(header("Content-Security-Policy", csp))
                .with_header(header("X-Content-Type-Options", "nosniff"))
                // Not no-referrer: with it, browsers send "Origin: null" on
                // our own form posts and the origin check could not work.
                .with_header(header("Referrer-Policy", "same-origin"))
                .with_header(header("Cache-Control", "no-store"));
            if let Some(c) = &set_cookie {
                r = r.with_header(header("Set-Cookie", c));
            }
            r
        };
        let response = match reply {
            Reply::Html(h) => common(Response::from_string(h))
                .with_header(header("Content-Type", "text/html; charset=utf-8")),
            Reply::Asset(body, kind) => {
                common(Response::from_string(body)).with_header(header("Content-Type", kind))
            }
            Reply::Redirect(to) => common(Response::from_string(""))
                .with_status_code(303)
                .with_header(header("Location", &to)),
            // `why` is a message id: the log keeps it, the person reads it.
            Reply::Refused(code, why) => {
                tracing::warn!(code, path, why, "review request refused");
                common(Response::from_string(i18n::t(self.lang, why)))
                    .with_status_code(code)
                    .with_header(header("Content-Type", "text/plain; charset=utf-8"))
            }
        };
        let _ = req.respond(response);
        Ok(())
    }

    /// The ledger as made at start, opened without writing; a lock held
    /// longer than a few seconds makes this request a 503.
    fn ledger(&self) -> Result<Ledger, ServeError> {
        Ok(Ledger::open_existing(
            &self.config.watch.state,
            LEDGER_WAIT,
        )?)
    }

    fn get(
        &self,
        path: &str,
        query: &BTreeMap<String, String>,
        reviewer: Option<&str>,
    ) -> Result<Reply, ServeError> {
        let open = self.ledger()?.open_mismatches()?;
        // What the last decision did, said on the page that follows it.
        let done = match query.get("done").map(String::as_str) {
            Some("corrected") => Some(esc(&t(self.lang, "msg-done-corrected"))),
            Some("rejected") => Some(esc(&t(self.lang, "msg-done-rejected"))),
            _ => None,
        };
        if path == "/" {
            let mut page = self.list_page(&open, query, reviewer);
            if let Some(msg) = &done {
                page = page.replacen(
                    "<body>",
                    &format!("<body><div class=\"msg done\" id=\"msg\">{msg}</div>"),
                    1,
                );
            }
            return Ok(Reply::Html(page));
        }
        if let Some((scan, page)) = parse_item(path) {
            return Ok(
                match open
                    .iter()
                    .position(|m| m.scan_id == scan && m.page == page)
                {
                    Some(i) => Reply::Html(self.card_page(&open, i, reviewer, done.as_deref())),
                    None => Reply::Redirect("/".into()),
                },
            );
        }
        Ok(Reply::Refused(404, "refused-not-found"))
    }

    fn post(
        &mut self,
        path: &str,
        form: &BTreeMap<String, String>,
        reviewer: &str,
    ) -> Result<Reply, ServeError> {
        let Some((scan, page)) = parse_item(path) else {
            return Ok(Reply::Refused(404, "refused-not-found"));
        };
        self.reload_register();
        let mut ledger = self.ledger()?;
        let Some(item) = ledger.open_mismatch(scan, page)? else {
            return Ok(Reply::Redirect("/".into()));
        };
        let decision = match form.get("action").map(String::as_str) {
            Some("reject") => {
                let reason = form.get("reason").map(|r| r.trim()).unwrap_or("");
                if reason.is_empty() {
                    let open = ledger.open_mismatches()?;
                    let i = open
                        .iter()
                        .position(|m| m.scan_id == scan && m.page == page);
                    return Ok(Reply::Html(self.card_page(
                        &open,
                        i.unwrap_or(0),
                        Some(reviewer),
                        Some(&esc(&t(self.lang, "msg-reject-needs-reason"))),
                    )));
                }
                Decision::Rejected {
                    reason: reason.to_string(),
                }
            }
            _ => {
                let mut edits: Edits = form
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix("f_").map(|id| (id.to_string(), v.clone())))
                    .collect();
                if let Some(n) = form.get("candidate").and_then(|n| n.parse::<usize>().ok()) {
                    if let Some(c) = n.checked_sub(1).and_then(|i| item.record.candidates.get(i)) {
                        edits.insert("atena_no".into(), c.atena_no.clone());
                        edits.insert("birth_date".into(), c.birth_date.clone());
                    }
                }
                match self.template_of(&item) {
                    Some(t) => review::correct(
                        &item.record,
                        t,
                        &edits,
                        &self.register,
                        reviewer,
                        chrono::Local::now().date_naive(),
                    ),
                    None => Decision::StillOpen {
                        changes: Vec::new(),
                        reasons: vec!["unknown_form".into()],
                    },
                }
            }
        };
        let outcome = ledger.decide(scan, page, reviewer, &decision)?;
        let kind = match &outcome {
            Decision::Corrected { .. } => "corrected",
            Decision::StillOpen { .. } => "still_open",
            Decision::Rejected { .. } => "rejected",
        };
        tracing::info!(scan, page, decision = kind, "review decision recorded");
        let open = ledger.open_mismatches()?;
        Ok(match outcome {
            Decision::StillOpen { reasons, .. } => {
                let i = open
                    .iter()
                    .position(|m| m.scan_id == scan && m.page == page)
                    .unwrap_or(0);
                let msg = format!(
                    "{}<ul>{}</ul>",
                    esc(&t(self.lang, "msg-still-open")),
                    self.reason_items(&reasons, item.record.form.as_deref(), false)
                );
                Reply::Html(self.card_page(&open, i, Some(reviewer), Some(&msg)))
            }
            _ => match open.first() {
                Some(next) => {
                    Reply::Redirect(format!("/m/{}/{}?done={kind}", next.scan_id, next.page))
                }
                None => Reply::Redirect(format!("/?done={kind}")),
            },
        })
    }

    fn reload_register(&mut self) {
        let stamp = std::fs::metadata(&self.config.watch.register)
            .and_then(|m| m.modified())
            .ok();
        if stamp != self.register_stamp {
            if let Ok(r) = Register::load(&self.config.watch.register, &self.config.register) {
                self.register = r;
                self.register_stamp = stamp;
            }
        }
    }

    fn template_of(&self, m: &OpenMismatch) -> Option<&Template> {
        self.templates
            .iter()
            .find(|t| Some(&t.id) == m.record.form.as_ref())
    }

    fn head(&self, title: &str) -> String {
        format!(
            "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <link rel=\"stylesheet\" href=\"/app.css\"><script src=\"/app.js\" defer></script></head><body>",
            self.lang.code(),
            esc(title)
        )
    }

    fn login_form(&self) -> String {
        format!(
            "<form method=\"post\" action=\"/login\" class=\"login\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label>{} <input name=\"name\" id=\"login-name\" autofocus></label> \
             <button>{}</button></form>",
            self.csrf,
            esc(&t(self.lang, "review-login")),
            esc(&t(self.lang, "review-login-button")),
        )
    }

    /// Reasons as words, each keeping its stable code in `data-reason`
    /// (for tests and anyone scripting the page); `short` for the list.
    fn reason_items(&self, reasons: &[String], form: Option<&str>, short: bool) -> String {
        reasons
            .iter()
            .map(|code| {
                let text = if short {
                    i18n::reason_short(self.lang, code, &self.labels, form)
                } else {
                    i18n::reason_text(self.lang, code, &self.labels, form)
                };
                format!(
                    "<li class=\"reason\" data-reason=\"{}\">{}</li>",
                    esc(code),
                    esc(&text)
                )
            })
            .collect()
    }

    fn list_page(
        &self,
        open: &[OpenMismatch],
        q: &BTreeMap<String, String>,
        reviewer: Option<&str>,
    ) -> String {
        let lang = self.lang;
        let want = |k: &str| q.get(k).filter(|v| !v.is_empty());
        let shown: Vec<&OpenMismatch> = open
            .iter()
            .filter(|m| want("branch").is_none_or(|b| &m.record.branch == b))
            .filter(|m| want("form").is_none_or(|f| m.record.form.as_ref() == Some(f)))
            .filter(|m| {
                want("reason")
                    .is_none_or(|r| m.record.reasons.iter().any(|x| x.starts_with(r.as_str())))
            })
            .collect();
        let mut h = self.head(&t(lang, "review-title"));
        let _ = write!(
            h,
            "<h1>{} <small>{}</small></h1>",
            esc(&t(lang, "review-heading")),
            esc(&ta(
                lang,
                "review-count",
                &[("shown", shown.len().into()), ("total", open.len().into())]
            )),
        );
        match reviewer {
            Some(r) => {
                let _ = write!(
                    h,
                    "<p class=\"who\">{}</p>",
                    esc(&ta(lang, "review-reviewer", &[("name", r.into())]))
                );
            }
            None => h.push_str(&self.login_form()),
        }
        // Options keep the code as their value and show words.
        let options = |vals: Vec<(String, String)>, cur: Option<&String>| {
            let mut o = format!(
                "<option value=\"\">{}</option>",
                esc(&t(lang, "filter-all"))
            );
            let mut vals = vals;
            vals.sort();
            vals.dedup();
            for (v, text) in vals {
                let sel = if cur == Some(&v) { " selected" } else { "" };
                let _ = write!(
                    o,
                    "<option value=\"{}\"{sel}>{}</option>",
                    esc(&v),
                    esc(&text)
                );
            }
            o
        };
        let reasons: Vec<(String, String)> = open
            .iter()
            .flat_map(|m| {
                m.record.reasons.iter().map(|r| {
                    let kind = r.split(':').next().unwrap_or(r).to_string();
                    let text = i18n::reason_kind(lang, &kind);
                    (kind, text)
                })
            })
            .collect();
        let _ = write!(
            h,
            "<form method=\"get\" action=\"/\" class=\"filters\">\
             <label>{} <select name=\"branch\">{}</select></label> \
             <label>{} <select name=\"form\">{}</select></label> \
             <label>{} <select name=\"reason\">{}</select></label> <button>{}</button></form>",
            esc(&t(lang, "filter-branch")),
            options(
                open.iter()
                    .map(|m| (m.record.branch.clone(), m.record.branch.clone()))
                    .collect(),
                want("branch")
            ),
            esc(&t(lang, "filter-form")),
            options(
                open.iter()
                    .filter_map(|m| m.record.form.clone())
                    .map(|f| (f.clone(), self.labels.form(lang, Some(&f))))
                    .collect(),
                want("form")
            ),
            esc(&t(lang, "filter-reason")),
            options(reasons, want("reason")),
            esc(&t(lang, "filter-button")),
        );
        if open.is_empty() {
            let _ = write!(
                h,
                "<p class=\"empty\">{}</p>",
                esc(&t(lang, "review-empty"))
            );
        }
        let _ = write!(
            h,
            "<table class=\"list\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(&t(lang, "col-received")),
            esc(&t(lang, "col-branch")),
            esc(&t(lang, "col-file")),
            esc(&t(lang, "col-page")),
            esc(&t(lang, "col-form")),
            esc(&t(lang, "col-reasons")),
        );
        for (i, m) in shown.iter().enumerate() {
            let first = if i == 0 { " id=\"first\"" } else { "" };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><a{first} href=\"/m/{}/{}\">{}</a></td><td>{}</td><td>{}</td><td><ul class=\"reasons\">{}</ul></td></tr>",
                esc(&m.received_at.get(..16).unwrap_or(&m.received_at).replace('T', " ")),
                esc(&m.record.branch),
                m.scan_id,
                m.page,
                esc(&m.record.source),
                m.page,
                esc(&self.labels.form(lang, m.record.form.as_deref())),
                self.reason_items(&m.record.reasons, m.record.form.as_deref(), true),
            );
        }
        let _ = write!(
            h,
            "</table><p class=\"keys\">{}</p></body></html>",
            esc(&t(lang, "keys-list"))
        );
        h
    }

    /// `message` is HTML, already escaped.
    fn card_page(
        &self,
        open: &[OpenMismatch],
        i: usize,
        reviewer: Option<&str>,
        message: Option<&str>,
    ) -> String {
        let lang = self.lang;
        let Some(m) = open.get(i) else {
            return self.list_page(open, &BTreeMap::new(), reviewer);
        };
        let r = &m.record;
        let mut h = self.head(&ta(
            lang,
            "card-title",
            &[("file", r.source.as_str().into()), ("page", r.page.into())],
        ));
        let _ = write!(
            h,
            "<p class=\"nav\"><a href=\"/\" id=\"list\">{}</a> · {}",
            esc(&t(lang, "card-list")),
            esc(&ta(
                lang,
                "card-position",
                &[("n", (i + 1).into()), ("total", open.len().into())]
            )),
        );
        if let Some(n) = open.get(i + 1) {
            let _ = write!(
                h,
                " · <a id=\"next\" href=\"/m/{}/{}\">{}</a>",
                n.scan_id,
                n.page,
                esc(&t(lang, "card-next"))
            );
        }
        h.push_str("</p>");
        if reviewer.is_none() {
            h.push_str(&self.login_form());
        }
        let _ = write!(
            h,
            "<h1>{} <small>{} · {} · {}</small></h1><ul class=\"reasons\">{}</ul>",
            esc(&r.source),
            esc(&ta(lang, "card-page", &[("page", r.page.into())])),
            esc(&r.branch),
            esc(&self.labels.form(lang, r.form.as_deref())),
            self.reason_items(&r.reasons, r.form.as_deref(), false)
        );
        if let Some(msg) = message {
            let _ = write!(h, "<div class=\"msg\" id=\"msg\">{msg}</div>");
        }
        // An unreadable page: what registration saw of it (`todoke explain`'s
        // overlay), so the reviewer sees why without opening the file.
        if let Some((_, png)) = r
            .images
            .iter()
            .find(|(i, _)| i == crate::explain::PAGE_IMAGE)
        {
            let _ = write!(
                h,
                "<div class=\"page\" id=\"page-image\"><p><small>{caption}</small></p><img alt=\"{caption}\" src=\"data:image/png;base64,{}\"></div>",
                base64::engine::general_purpose::STANDARD.encode(png),
                caption = esc(&t(lang, "page-image-caption")),
            );
        }
        let action = format!("/m/{}/{}", m.scan_id, m.page);
        let _ = write!(
            h,
            "<form method=\"post\" action=\"{action}\" id=\"decide\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            self.csrf
        );
        let read_atena = r
            .fields
            .get("atena_no")
            .map(|f| review::value_text(&f.value))
            .unwrap_or_default();
        let template = self.template_of(m);
        for id in review::doubtful_fields(r) {
            let f = r.fields.get(&id);
            let field = template.and_then(|t| {
                t.sides
                    .iter()
                    .flat_map(|s| s.fields.iter())
                    .find(|f| f.id == id)
            });
            let label = field
                .map(|f| f.label.clone())
                .unwrap_or_else(|| self.labels.field(r.form.as_deref(), &id));
            let value = f.map(|f| review::value_text(&f.value)).unwrap_or_default();
            let img = r
                .images
                .iter()
                .find(|(i, _)| i == &id)
                .map(|(_, png)| {
                    format!(
                        "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
                        esc(&label),
                        base64::engine::general_purpose::STANDARD.encode(png)
                    )
                })
                .unwrap_or_default();
            let hint = t(
                lang,
                match field.map(|f| f.kind) {
                    Some(template::FieldKind::Date) => "hint-date",
                    Some(template::FieldKind::Single) => "hint-single",
                    Some(template::FieldKind::Multi) => "hint-multi",
                    _ => "hint-digits",
                },
            );
            let status = f.map(|f| f.status.code()).unwrap_or("missing");
            let _ = write!(
                h,
                "<div class=\"field\" data-field=\"{id}\" data-status=\"{status}\"><div class=\"img\">{img}</div><label>{}<br>\
                 <input class=\"mono\" name=\"f_{id}\" value=\"{}\" placeholder=\"{}\" autocomplete=\"off\"></label>\
                 <span class=\"conf\">{} · {} · {}</span></div>",
                esc(&label),
                esc(&value),
                esc(&hint),
                esc(&ta(
                    lang,
                    "field-read",
                    &[("value", i18n::date_both(lang, &value).into())]
                )),
                esc(&ta(
                    lang,
                    "field-confidence",
                    &[(
                        "conf",
                        format!("{:.3}", f.map(|f| f.confidence).unwrap_or(0.0)).into()
                    )]
                )),
                esc(&i18n::field_status(lang, status)),
            );
        }
        // The save button comes first so that Enter in a field saves the
        // correction rather than accepting a candidate.
        let _ = write!(
            h,
            "<p><button name=\"action\" value=\"correct\" id=\"save\">{}</button></p>",
            esc(&t(lang, "button-save"))
        );
        if !r.candidates.is_empty() {
            let _ = write!(
                h,
                "<h2>{}</h2><table class=\"cands\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
                esc(&t(lang, "cand-heading")),
                esc(&t(lang, "cand-key")),
                esc(&t(lang, "cand-atena")),
                esc(&t(lang, "cand-name")),
                esc(&t(lang, "cand-birth")),
                esc(&t(lang, "cand-why")),
            );
            for (n, c) in r.candidates.iter().enumerate().take(3) {
                let _ = write!(
                    h,
                    "<tr><td><button name=\"candidate\" value=\"{k}\" id=\"accept-{k}\">{k}</button></td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td data-why=\"{}\">{}</td></tr>",
                    highlight(&read_atena, &c.atena_no),
                    esc(&c.name),
                    esc(&i18n::date_both(lang, &c.birth_date)),
                    esc(&c.why),
                    esc(&i18n::why_text(lang, &c.why)),
                    k = n + 1,
                );
            }
            h.push_str("</table>");
        }
        let _ = write!(
            h,
            "</form>\
             <form method=\"post\" action=\"{action}\" id=\"reject\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"action\" value=\"reject\">\
             <label>{} <input name=\"reason\" id=\"reject-reason\" autocomplete=\"off\"></label> <button>{}</button></form>",
            self.csrf,
            esc(&t(lang, "reject-label")),
            esc(&t(lang, "reject-button")),
        );
        // Other fields, masked where sensitive, for context.
        let _ = write!(
            h,
            "<details><summary>{}</summary><table class=\"all\">",
            esc(&t(lang, "all-fields"))
        );
        for (id, f) in &r.fields {
            let v = review::value_text(&f.value);
            let sensitive = template
                .map(|t| {
                    t.sides
                        .iter()
                        .flat_map(|s| s.fields.iter())
                        .any(|x| &x.id == id && x.sensitive)
                })
                .unwrap_or(false);
            let _ = write!(
                h,
                "<tr data-field=\"{}\"><td>{}</td><td>{}</td></tr>",
                esc(id),
                esc(&self.labels.field(r.form.as_deref(), id)),
                esc(&if sensitive {
                    mask(&v)
                } else {
                    i18n::date_both(lang, &v)
                })
            );
        }
        let _ = write!(
            h,
            "</table></details><p class=\"keys\">{}</p></body></html>",
            esc(&t(lang, "keys-card"))
        );
        h
    }
}

fn parse_item(path: &str) -> Option<(i64, i64)> {
    let rest = path.strip_prefix("/m/")?;
    let (s, p) = rest.split_once('/')?;
    Some((s.parse().ok()?, p.parse().ok()?))
}

/// The candidate's number with the digits that differ from the reading marked.
fn highlight(read: &str, candidate: &str) -> String {
    let r: Vec<char> = read.chars().collect();
    candidate
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if r.get(i) == Some(&c) {
                c.to_string()
            } else {
                format!("<mark>{}</mark>", esc(&c.to_string()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_cookies_decode() {
        let f = parse_form("csrf=ab&f_atena_no=0012&reason=%E8%AA%A4%E8%AA%AD+x");
        assert_eq!(f["reason"], "誤読 x");
        assert_eq!(f["f_atena_no"], "0012");
        assert_eq!(
            decode_component(&encode_component("山田 太郎")),
            "山田 太郎"
        );
        assert_eq!(
            highlight("0000123487", "0000123457"),
            "00001234<mark>5</mark>7"
        );
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        assert_eq!(parse_item("/m/12/3"), Some((12, 3)));
        assert_eq!(parse_item("/m/x/3"), None);
    }
}
