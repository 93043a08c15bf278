//! The web page as a browser sees it: one cookie kept from answer to
//! answer, forms posted with the CSRF token of the page they are on.

use super::http;
use super::web_server::Server;

/// An answer, its head lower-cased for matching headers.
pub struct Answer {
    pub status: u16,
    pub head: String,
    /// The head as sent: header values keep their case.
    raw_head: String,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (lower case), as sent.
    fn header(&self, name: &str) -> Option<&str> {
        self.raw_head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    pub fn location(&self) -> &str {
        self.header("location").unwrap_or("")
    }

    pub fn set_cookie(&self) -> Option<&str> {
        self.header("set-cookie")
    }

    /// The value of the first hidden field `name` on the page, unescaped.
    pub fn hidden(&self, name: &str) -> String {
        let start = format!("type=\"hidden\" name=\"{name}\" value=\"");
        let at = self
            .body
            .find(&start)
            .unwrap_or_else(|| panic!("no hidden field {name} in {}", self.body))
            + start.len();
        let end = at + self.body[at..].find('"').unwrap();
        self.body[at..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        self.body[at..at + 32].to_string()
    }
}

/// A client that keeps one cookie, as a browser would.
pub struct Client {
    pub port: u16,
    pub cookie: Option<String>,
}

impl Client {
    pub fn new(server: &Server) -> Client {
        Client::on_port(server.port)
    }

    pub fn on_port(port: u16) -> Client {
        Client { port, cookie: None }
    }

    pub fn send(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = Vec::new();
        if let Some(cookie) = &self.cookie {
            headers.push(format!("Cookie: {cookie}"));
        }
        if method == "POST" {
            headers.push("Content-Type: application/x-www-form-urlencoded".to_string());
        }
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let reply = http::send(self.port, method, path, &headers, body.as_bytes());
        let answer = Answer {
            status: reply.status,
            head: reply.head.to_ascii_lowercase(),
            raw_head: reply.head,
            body: reply.body,
        };
        if let Some(cookie) = answer.set_cookie() {
            let pair = cookie.split(';').next().unwrap_or("");
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair.to_string())
            };
        }
        answer
    }

    pub fn get(&mut self, path: &str) -> Answer {
        self.send("GET", path, &[])
    }

    pub fn log_in(&mut self, user: &str, password: &str) -> Answer {
        let csrf = self.get("/login").csrf();
        self.send(
            "POST",
            "/login",
            &[("csrf", &csrf), ("user", user), ("password", password)],
        )
    }

    /// Posts a form with the CSRF token of the page at `page`.
    pub fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = self.get(page).csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.send("POST", action, &all)
    }
}

impl Client {
    /// Logs in, checking that the page took the password: a redirect on,
    /// to verify or to set up 2FA.
    #[track_caller]
    pub fn logs_in(&mut self, user: &str, password: &str) -> Answer {
        let answer = self.log_in(user, password);
        assert_eq!(answer.status, 303, "log-in as {user}: {}", answer.body);
        answer
    }

    /// Enters `code` on the verify page, checking that a 2FA session opened.
    #[track_caller]
    pub fn verifies(&mut self, code: &str) -> Answer {
        let answer = self.submit("/2fa/verify", "/2fa/verify", &[("code", code)]);
        assert!(
            answer.body.contains("<h1>Verified</h1>"),
            "verify with {code}: {}",
            answer.body
        );
        answer
    }
}
