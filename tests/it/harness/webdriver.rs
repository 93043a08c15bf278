//! Real headless Chromium through chromedriver, spoken to with the W3C
//! WebDriver protocol over plain HTTP: enough to open pages, fill forms,
//! click, read text and attributes, and take screenshots.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Process, e2e_available, wait_listening};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    /// chromedriver's process group, Chromium in it: ended when dropped.
    _driver: Process,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Never panics (it may run while a test panics): ends the session
    /// and any browser process still using this profile; then the driver's
    /// group ends with its `Process`.
    fn drop(&mut self) {
        let (port, session) = (self.port, self.session.clone());
        let _ = std::panic::catch_unwind(move || {
            http(port, "DELETE", &format!("/session/{session}"), None)
        });
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self._profile.path())
            .status();
    }
}

pub fn available() -> bool {
    let chromium = e2e_available(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium",
        "chromium",
    );
    let driver = e2e_available(
        Path::new("/usr/bin/chromedriver").exists(),
        "/usr/bin/chromedriver",
        "chromium-driver",
    );
    chromium && driver
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let reply = super::http::send(
        port,
        method,
        path,
        &["Content-Type: application/json"],
        body.as_bytes(),
    );
    let json = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    (reply.status, json)
}

impl Browser {
    pub fn start() -> Browser {
        let port = crate::harness::free_port();
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromedriver.log");
        let mut driver = Process::spawn(
            Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null()),
        );
        wait_listening(
            &mut driver,
            port,
            "chromedriver",
            &log,
            Some(&format!("started successfully on port {port}")),
        );
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1000,900",
                    format!("--user-data-dir={}", profile.path().display())
                ]
            }
        }}});
        let (status, value) = http(port, "POST", "/session", Some(&capabilities));
        assert_eq!(status, 200, "no browser session: {value}");
        let session = value["value"]["sessionId"].as_str().unwrap().to_string();
        let browser = Browser {
            _driver: driver,
            port,
            session,
            _profile: profile,
        };
        // Element lookups wait for the page a click started to load.
        browser.session_call(
            "POST",
            "/timeouts",
            Some(json!({"implicit": 5000, "pageLoad": 20000})),
        );
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = http(self.port, method, path, body.as_ref());
        if status != 200 {
            // Say what was asked (the element's selector, say) and, with
            // no answer at all, whether the driver is still there.
            let asked = body.map(|b| b.to_string()).unwrap_or_default();
            let why = if status == 0 {
                format!(
                    "no HTTP answer from chromedriver on port {} (the connection closed, or nothing came within 60 s); chromedriver (pid {}) is {}",
                    self.port,
                    self._driver.pid(),
                    self.driver_state()
                )
            } else {
                format!("HTTP {status}")
            };
            panic!("WebDriver {method} {path} {asked}: {why}: {value}");
        }
        value["value"].clone()
    }

    /// The driver process's state, as the kernel has it.
    fn driver_state(&self) -> String {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self._driver.pid()))
            .unwrap_or_default();
        match stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
        {
            Some('Z') => "dead (exited, not yet reaped)".into(),
            Some(state) => format!("running (state {state})"),
            None => "gone".into(),
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})));
    }

    /// Waits until the page shows `text`; panics with the page if it does
    /// not within 10 s.
    pub fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let source = self.source();
            if source.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared on {}:\n{source}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the address ends with `suffix`.
    pub fn wait_for_url(&self, suffix: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.url().ends_with(suffix) {
            assert!(
                Instant::now() < deadline,
                "never reached {suffix}: at {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body) in the page; what it returns.
    pub fn eval(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    pub fn source(&self) -> String {
        self.session_call("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn element(&self, css: &str) -> String {
        let found = self.session_call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css} on {}", self.url()))
            .to_string()
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.session_call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    pub fn fill(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.session_call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.session_call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Chooses `value` in a `<select>`.
    pub fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"));
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.element(css);
        self.session_call("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn attribute(&self, css: &str, name: &str) -> String {
        let id = self.element(css);
        self.session_call("GET", &format!("/element/{id}/attribute/{name}"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Resizes the window (a phone is about 390 × 844).
    pub fn resize(&self, width: u32, height: u32) {
        self.session_call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Runs `script` (a function body whose last argument is the callback
    /// to call with the result) in the page; what it gave back.
    pub fn eval_async(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Adds a WebDriver virtual authenticator (CTAP2 over USB, resident
    /// keys, user verification on, the user always touching it); its id.
    pub fn add_virtual_authenticator(&self) -> String {
        let id = self.session_call(
            "POST",
            "/webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true
            })),
        );
        id.as_str().unwrap().to_string()
    }

    /// The credentials a virtual authenticator holds (with their private
    /// keys and signature counters).
    pub fn credentials(&self, authenticator: &str) -> Vec<Value> {
        self.session_call(
            "GET",
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            None,
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// Takes a credential out of a virtual authenticator.
    pub fn remove_credential(&self, authenticator: &str, id: &str) {
        self.session_call(
            "DELETE",
            &format!("/webauthn/authenticator/{authenticator}/credentials/{id}"),
            None,
        );
    }

    /// Puts a credential (as `credentials` gave it) into a virtual
    /// authenticator: a copy of a key, say.
    pub fn add_credential(&self, authenticator: &str, credential: &Value) {
        self.session_call(
            "POST",
            &format!("/webauthn/authenticator/{authenticator}/credential"),
            Some(credential.clone()),
        );
    }

    /// Opens a new tab and switches to it; the handle of the one before.
    pub fn new_tab(&self) -> String {
        let old = self.session_call("GET", "/window", None);
        let new = self.session_call("POST", "/window/new", Some(json!({"type": "tab"})));
        self.switch_to(new["handle"].as_str().unwrap());
        old.as_str().unwrap().to_string()
    }

    /// The handle of the tab now in use.
    pub fn current_tab(&self) -> String {
        let handle = self.session_call("GET", "/window", None);
        handle.as_str().unwrap_or_default().to_string()
    }

    pub fn switch_to(&self, handle: &str) {
        self.session_call("POST", "/window", Some(json!({"handle": handle})));
    }

    /// Saves a screenshot as `NAME.png` in the directory
    /// `GIT2FA_SCREENSHOTS` names (`GIT2FA_SCREENSHOTS=docs/screenshots
    /// tests/run` refreshes the user guide's), else in a temporary one: a
    /// test run leaves the checkout as it was.
    pub fn screenshot(&self, name: &str) {
        use base64::Engine;
        let data = self.session_call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .unwrap();
        let dir = match std::env::var_os("GIT2FA_SCREENSHOTS") {
            Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
            None => std::env::temp_dir().join("git2fa-screenshots"),
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}
