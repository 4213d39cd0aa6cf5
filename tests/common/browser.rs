//! A minimal WebDriver client (Debian's chromium and chromium-driver) and
//! the HTTP/1.1 request it and the tests speak, for the browser tests.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// One HTTP/1.1 exchange; returns status, headers (lower-case names), body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, BTreeMap<String, String>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    // Read the head, then exactly Content-Length bytes: not every server
    // closes the connection when asked.
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let hdrs: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = Vec::new();
    match hdrs
        .get("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).unwrap();
        }
        None => {
            r.read_to_end(&mut body).unwrap();
        }
    }
    let rest = String::from_utf8_lossy(&body).into_owned();
    (status, hdrs, rest)
}

/// A minimal WebDriver client.
pub struct Browser {
    port: u16,
    session: String,
    driver: Child,
}

impl Browser {
    /// Chromium headless at `width`×`height`, in Japanese.
    pub fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) is installed by make setup");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--lang=ja"]}}}});
        let mut b = Browser {
            port,
            session: String::new(),
            driver,
        };
        let v = b.call("POST", "/session", caps);
        b.session = v["sessionId"].as_str().unwrap().to_string();
        b
    }

    pub fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let (status, _, text) = http(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body,
        );
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "webdriver {method} {path}: {text}");
        v["value"].clone()
    }

    pub fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.call("GET", &self.s("/url"), Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> u64 {
        self.call(
            "POST",
            &self.s("/elements"),
            json!({"using": "css selector", "value": css}),
        )
        .as_array()
        .map(|a| a.len() as u64)
        .unwrap_or(0)
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.s("/element"),
            json!({"using": "css selector", "value": css}),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .unwrap()
            .to_string()
    }

    /// Replaces an input's text, as a person selecting it and typing.
    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.call("POST", &self.s(&format!("/element/{el}/clear")), json!({}));
        self.call(
            "POST",
            &self.s(&format!("/element/{el}/value")),
            json!({ "text": text }),
        );
    }

    /// Key presses sent to whatever has focus; returns how many were sent.
    pub fn keys(&self, keys: &[&str]) -> usize {
        let mut actions = Vec::new();
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.call(
            "POST",
            &self.s("/actions"),
            json!({"actions": [{"type": "key", "id": "kb", "actions": actions}]}),
        );
        std::thread::sleep(Duration::from_millis(400));
        keys.len()
    }

    pub fn screenshot(&self, to: &Path) {
        let b64 = self.call("GET", &self.s("/screenshot"), Value::Null);
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(self.port, "DELETE", &self.s(""), &[], "");
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
