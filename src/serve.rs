//! `todoke review`: the local web page where staff clear mismatches.
//!
//! Bound to 127.0.0.1 by default. Every request needs the random token
//! printed at start (in the URL once, then an HttpOnly SameSite=Strict
//! cookie); every change also needs the page's CSRF value and, when the
//! browser sends one, our own Origin. Nothing is fetched from outside: the
//! script and style are served from here, images are data URIs.

use crate::config::Config;
use crate::emit::{esc, mask};
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
            Reply::Refused(421, "wrong Host: open the URL todoke review printed")
        } else if path == "/app.js" {
            Reply::Asset(SCRIPT, "text/javascript; charset=utf-8")
        } else if path == "/app.css" {
            Reply::Asset(STYLE, "text/css; charset=utf-8")
        } else if !by_query && !by_cookie {
            Reply::Refused(
                403,
                "missing or wrong access token: open the URL todoke review printed",
            )
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
                        Ok(Reply::Refused(
                            403,
                            "missing or wrong CSRF value: reload the page",
                        ))
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
                            None => {
                                Ok(Reply::Refused(403, "give your name on the list page first"))
                            }
                        }
                    }
                }
                _ => Ok(Reply::Refused(405, "method not allowed")),
            };
            // A ledger that is locked or unreadable for a moment is an
            // answer to this request, not the end of the page.
            answer.unwrap_or_else(|e| {
                tracing::warn!(path, "review request not served: {e}");
                Reply::Refused(503, "the ledger is busy: try again in a moment")
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
            Reply::Refused(code, why) => {
                tracing::warn!(code, path, "review request refused");
                common(Response::from_string(why)).with_status_code(code)
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
        if path == "/" {
            return Ok(Reply::Html(self.list_page(&open, query, reviewer)));
        }
        if let Some((scan, page)) = parse_item(path) {
            return Ok(
                match open
                    .iter()
                    .position(|m| m.scan_id == scan && m.page == page)
                {
                    Some(i) => Reply::Html(self.card_page(&open, i, reviewer, None)),
                    None => Reply::Redirect("/".into()),
                },
            );
        }
        Ok(Reply::Refused(404, "not found"))
    }

    fn post(
        &mut self,
        path: &str,
        form: &BTreeMap<String, String>,
        reviewer: &str,
    ) -> Result<Reply, ServeError> {
        let Some((scan, page)) = parse_item(path) else {
            return Ok(Reply::Refused(404, "not found"));
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
                        Some("A rejection needs a reason."),
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
                    Some(t) => review::correct(&item.record, t, &edits, &self.register, reviewer),
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
                let msg = format!("Still open: {}", reasons.join(", "));
                Reply::Html(self.card_page(&open, i, Some(reviewer), Some(&msg)))
            }
            _ => match open.first() {
                Some(next) => Reply::Redirect(format!("/m/{}/{}", next.scan_id, next.page)),
                None => Reply::Redirect("/".into()),
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
            "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <link rel=\"stylesheet\" href=\"/app.css\"><script src=\"/app.js\" defer></script></head><body>",
            esc(title)
        )
    }

    fn login_form(&self) -> String {
        format!(
            "<form method=\"post\" action=\"/login\" class=\"login\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label>Your name (recorded with every decision): <input name=\"name\" id=\"login-name\" autofocus></label> \
             <button>Start</button></form>",
            self.csrf
        )
    }

    fn list_page(
        &self,
        open: &[OpenMismatch],
        q: &BTreeMap<String, String>,
        reviewer: Option<&str>,
    ) -> String {
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
        let mut h = self.head("todoke review");
        let _ = write!(
            h,
            "<h1>Open mismatches <small>{} of {}</small></h1>",
            shown.len(),
            open.len()
        );
        match reviewer {
            Some(r) => {
                let _ = write!(h, "<p class=\"who\">Reviewer: {}</p>", esc(r));
            }
            None => h.push_str(&self.login_form()),
        }
        let options = |vals: Vec<String>, cur: Option<&String>| {
            let mut o = String::from("<option value=\"\">all</option>");
            let mut vals = vals;
            vals.sort();
            vals.dedup();
            for v in vals {
                let sel = if cur == Some(&v) { " selected" } else { "" };
                let _ = write!(o, "<option{sel}>{}</option>", esc(&v));
            }
            o
        };
        let reasons: Vec<String> = open
            .iter()
            .flat_map(|m| {
                m.record
                    .reasons
                    .iter()
                    .map(|r| r.split(':').next().unwrap_or(r).to_string())
            })
            .collect();
        let _ = write!(
            h,
            "<form method=\"get\" action=\"/\" class=\"filters\">\
             <label>branch <select name=\"branch\">{}</select></label> \
             <label>form <select name=\"form\">{}</select></label> \
             <label>reason <select name=\"reason\">{}</select></label> <button>Filter</button></form>",
            options(open.iter().map(|m| m.record.branch.clone()).collect(), want("branch")),
            options(open.iter().filter_map(|m| m.record.form.clone()).collect(), want("form")),
            options(reasons, want("reason")),
        );
        h.push_str("<table class=\"list\"><tr><th>received</th><th>branch</th><th>file</th><th>page</th><th>form</th><th>reasons</th></tr>");
        for (i, m) in shown.iter().enumerate() {
            let first = if i == 0 { " id=\"first\"" } else { "" };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><a{first} href=\"/m/{}/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(m.received_at.get(..16).unwrap_or(&m.received_at)),
                esc(&m.record.branch),
                m.scan_id,
                m.page,
                esc(&m.record.source),
                m.page,
                esc(m.record.form.as_deref().unwrap_or("unknown")),
                esc(&m.record.reasons.join(" ")),
            );
        }
        h.push_str("</table><p class=\"keys\">Enter or o: open the first · on a card: 1–3 accept a candidate · c correct · x reject · n next · l list</p></body></html>");
        h
    }

    fn card_page(
        &self,
        open: &[OpenMismatch],
        i: usize,
        reviewer: Option<&str>,
        message: Option<&str>,
    ) -> String {
        let Some(m) = open.get(i) else {
            return self.list_page(open, &BTreeMap::new(), reviewer);
        };
        let r = &m.record;
        let mut h = self.head(&format!("todoke review: {} p{}", r.source, r.page));
        let _ = write!(
            h,
            "<p class=\"nav\"><a href=\"/\" id=\"list\">list</a> · {} of {} open",
            i + 1,
            open.len()
        );
        if let Some(n) = open.get(i + 1) {
            let _ = write!(
                h,
                " · <a id=\"next\" href=\"/m/{}/{}\">next</a>",
                n.scan_id, n.page
            );
        }
        h.push_str("</p>");
        if reviewer.is_none() {
            h.push_str(&self.login_form());
        }
        let _ = write!(
            h,
            "<h1>{} <small>page {} · {} · {}</small></h1><p class=\"reasons\">{}</p>",
            esc(&r.source),
            r.page,
            esc(&r.branch),
            esc(r.form.as_deref().unwrap_or("unknown form")),
            esc(&r.reasons.join(" "))
        );
        if let Some(msg) = message {
            let _ = write!(h, "<p class=\"msg\" id=\"msg\">{}</p>", esc(msg));
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
            let label = field.map(|f| f.label.clone()).unwrap_or_else(|| id.clone());
            let value = f.map(|f| review::value_text(&f.value)).unwrap_or_default();
            let img = r
                .images
                .iter()
                .find(|(i, _)| i == &id)
                .map(|(_, png)| {
                    format!(
                        "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
                        esc(&id),
                        base64::engine::general_purpose::STANDARD.encode(png)
                    )
                })
                .unwrap_or_default();
            let hint = match field.map(|f| f.kind) {
                Some(template::FieldKind::Date) => "YYYY-MM-DD",
                Some(template::FieldKind::Single) => "option number",
                Some(template::FieldKind::Multi) => "option numbers, comma-separated",
                _ => "digits",
            };
            let _ = write!(
                h,
                "<div class=\"field\"><div class=\"img\">{img}</div><label>{} <small>{}</small><br>\
                 <input class=\"mono\" name=\"f_{id}\" value=\"{}\" placeholder=\"{hint}\" autocomplete=\"off\"></label>\
                 <span class=\"conf\">read {} · confidence {:.3} · {}</span></div>",
                esc(&label),
                esc(&id),
                esc(&value),
                esc(&value),
                f.map(|f| f.confidence).unwrap_or(0.0),
                f.map(|f| f.status.code()).unwrap_or_default(),
            );
        }
        // The save button comes first so that Enter in a field saves the
        // correction rather than accepting a candidate.
        h.push_str("<p><button name=\"action\" value=\"correct\" id=\"save\">Save correction (Enter)</button></p>");
        if !r.candidates.is_empty() {
            h.push_str("<table class=\"cands\"><tr><th>key</th><th>宛名番号</th><th>name</th><th>birthdate</th><th>why</th></tr>");
            for (n, c) in r.candidates.iter().enumerate().take(3) {
                let _ = write!(
                    h,
                    "<tr><td><button name=\"candidate\" value=\"{k}\" id=\"accept-{k}\">{k}</button></td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    highlight(&read_atena, &c.atena_no),
                    esc(&c.name),
                    esc(&c.birth_date),
                    esc(&c.why),
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
             <label>Reject with reason: <input name=\"reason\" id=\"reject-reason\" autocomplete=\"off\"></label> <button>Reject</button></form>",
            self.csrf
        );
        // Other fields, masked where sensitive, for context.
        h.push_str("<details><summary>all fields</summary><table class=\"all\">");
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
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(id),
                esc(&if sensitive { mask(&v) } else { v })
            );
        }
        h.push_str("</table></details><p class=\"keys\">1–3 accept that candidate (with the fields as shown) · c correct · Enter save · x reject · n next · l list</p></body></html>");
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
