//! What goes back to the browser: a status, headers and a body, with the
//! security headers every response of the page carries.

use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

/// What goes back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn html(page: Markup) -> Response {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: page.into_string().into_bytes(),
        }
    }

    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    pub fn css(text: &str) -> Response {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/css; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    pub fn script(text: &str) -> Response {
        Response {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "text/javascript; charset=utf-8".into(),
            )],
            body: text.as_bytes().to_vec(),
        }
    }

    /// A download, never shown inline.
    pub fn attachment(name: &str, text: String) -> Response {
        Response {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/plain; charset=utf-8".into()),
                (
                    "content-disposition".into(),
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            body: text.into_bytes(),
        }
    }

    /// A JSON answer that no cache keeps (RFC 6749, section 5.1).
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
                ("pragma".into(), "no-cache".into()),
            ],
            body: value.to_string().into_bytes(),
        }
    }

    pub fn redirect(to: &str) -> Response {
        Response {
            status: 303,
            headers: vec![("location".into(), to.to_string())],
            body: Vec::new(),
        }
    }

    /// A bare page, without menu, for errors met before there is a session
    /// to show (or whose session does not matter).
    pub fn error(status: u16, message: &str) -> Response {
        Response::bare(status, message)
    }

    /// A page of one message, without menu, with a way back: an error, or
    /// what happened after the session ended.
    pub fn bare(status: u16, message: &str) -> Response {
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "git2fa" }
                    link rel="stylesheet" href="/style.css";
                }
                body {
                    header { span.brand { "git2fa" } }
                    main {
                        p { (message) }
                        p { a href="/2fa" { "Go to the start page" } }
                    }
                }
            }
        };
        Response::html(page).with_status(status)
    }
}

/// Not a header: an origin a page's form may end at besides this one (the
/// OAuth consent's redirect to the helper on the user's computer; a
/// browser holds a form's redirects to `form-action` too).
pub const FORM_ACTION: &str = "x-git2fa-form-action";

impl Response {
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Lets this page's forms end at `origin` (`http://127.0.0.1:PORT`).
    pub fn with_form_action(mut self, origin: &str) -> Response {
        self.headers.push((FORM_ACTION.into(), origin.into()));
        self
    }
}

impl IntoResponse for Response {
    fn into_response(self) -> axum::response::Response {
        let mut builder = axum::http::Response::builder().status(self.status);
        let mut form_action = "'self'".to_string();
        for (name, value) in &self.headers {
            if name == FORM_ACTION {
                form_action += &format!(" {value}");
            } else {
                builder = builder.header(name, value);
            }
        }
        // Nothing to frame or leak, and no script but the page's own file
        // (`/webauthn.js`, for security keys): none inline, none elsewhere.
        builder = builder
            .header(
                "content-security-policy",
                format!(
                    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                     form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
                ),
            )
            .header("x-frame-options", "DENY")
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "no-referrer")
            .header("cache-control", "no-store");
        builder
            .body(axum::body::Body::from(self.body))
            .unwrap_or_else(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}
