//! HTML: escaping, the layout with its menu bar and padlock, the stylesheet.

use super::page::{Context, Response};
use crate::time::format_utc;

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A hidden CSRF field for a form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A page without menu (errors before there is a session).
pub fn bare_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body><header><span class=\"brand\">git2fa</span></header><main><p>{body}</p></main></body></html>",
        title = esc(title)
    )
}

/// A page with the menu bar: the links the user may use, the padlock
/// (closed in a 2FA session, open otherwise) and log-out.
pub fn page(cx: &mut Context, title: &str, body: &str) -> Response {
    let mut menu = String::new();
    let mut status = String::new();
    if let Some(user) = cx.user.clone() {
        let csrf = cx.csrf().unwrap_or_default();
        let full = user.is_enrolled() && cx.session.as_ref().is_some_and(|s| s.code_at.is_some());
        if full {
            menu += "<a href=\"/2fa\">Manage 2FA</a><a href=\"/2fa/tokens\">Access tokens</a>\
                     <a href=\"/2fa/keys\">SSH keys</a><a href=\"/2fa/repos\">Repositories</a>";
            if user.is_admin {
                menu += "<a href=\"/2fa/admin/users\">Users</a><a href=\"/2fa/admin/audit\">Audit log</a>";
            }
        }
        let padlock = match cx.git_session_until() {
            Some(until) => format!(
                "<a class=\"padlock closed\" href=\"/2fa\" title=\"In a 2FA session until {until}\">{CLOSED} 2FA session</a>",
                until = esc(&format_utc(until))
            ),
            None if user.is_enrolled() => {
                format!(
                    "<a class=\"padlock open\" href=\"/2fa/verify\" title=\"No 2FA session: verify\">{OPEN} Verify</a>"
                )
            }
            None => format!(
                "<a class=\"padlock open\" href=\"/2fa/setup\" title=\"2FA is not set up\">{OPEN} Set up 2FA</a>"
            ),
        };
        status = format!(
            "<div class=\"status\">{padlock}<span class=\"who\">{name}</span>\
             <form method=\"post\" action=\"/logout\" class=\"inline\">{csrf}<button class=\"link\">Log out</button></form></div>",
            name = esc(&user.name),
            csrf = csrf_field(&csrf)
        );
    }
    // The menu only when it has links: a row of its own on a phone.
    let nav = if menu.is_empty() {
        String::new()
    } else {
        format!("<nav>{menu}</nav>")
    };
    Response::html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - git2fa</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body><header><a class=\"brand\" href=\"/2fa\">git2fa</a>{nav}{status}</header>\
         <main><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title)
    ))
}

/// The padlock, closed and open, drawn inline (no font or image needed).
const CLOSED: &str = "<svg class=\"lock\" viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path fill=\"currentColor\" \
     d=\"M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7zm2 0h4V5a2 2 0 0 0-4 0z\"/></svg>";
const OPEN: &str = "<svg class=\"lock\" viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path fill=\"currentColor\" \
     d=\"M4 7V5a4 4 0 0 1 8 0h-2a2 2 0 0 0-4 0v2h7v8H3V7z\"/></svg>";

/// A table of `rows` (cells of HTML, escaped by the caller) under
/// `columns`. Each cell carries its column's name, so that on a phone every
/// row shows as a card of labelled lines instead of a table wider than the
/// screen. With no rows, `empty` is said instead.
pub fn table(id: &str, columns: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\" id=\"{id}\">{}</p>", esc(empty));
    }
    let head: String = columns
        .iter()
        .map(|c| format!("<th>{}</th>", esc(c)))
        .collect();
    let body: String = rows
        .iter()
        .map(|row| {
            let cells: String = row
                .iter()
                .zip(columns)
                .map(|(cell, column)| match *column {
                    "" => format!("<td class=\"actions\">{cell}</td>"),
                    column => format!("<td data-label=\"{}\">{cell}</td>", esc(column)),
                })
                .collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!("<table id=\"{id}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
}

/// A time, escaped, kept on one line.
pub fn when(text: String) -> String {
    format!("<span class=\"when\">{}</span>", esc(&text))
}

/// A notice box: `kind` is ok, error or info.
pub fn notice(kind: &str, text: &str) -> String {
    format!(
        "<p class=\"notice {kind}\" role=\"status\">{}</p>",
        esc(text)
    )
}

pub const STYLE: &str = r#"*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f5f6f8}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem;padding:.6rem 1rem;background:#1d2330;color:#fff}
header a,header .who{color:#fff;text-decoration:none}
header nav{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem;flex:1}
header .status{display:flex;align-items:center;gap:.25rem .75rem;margin-left:auto}
.brand{font-weight:700;letter-spacing:.02em}
.padlock{padding:.1rem .5rem;border-radius:.3rem;white-space:nowrap}
.lock{width:.9em;height:.9em;vertical-align:-.1em}
.padlock.closed{background:#1f7a3d}
.padlock.open{background:#a33b1e}
main{max-width:46rem;margin:1.5rem auto;padding:0 1rem}
main.wide{max-width:72rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
section,form.card{background:#fff;border:1px solid #d8dce3;border-radius:.5rem;padding:1rem;margin:0 0 1rem}
label{display:block;margin:.5rem 0 .2rem;font-weight:600}
input[type=text],input[type=password],input[type=number],select,textarea{width:100%;max-width:100%;padding:.5rem;font:inherit;border:1px solid #b9c0cc;border-radius:.3rem}
textarea{min-height:6rem;font-family:ui-monospace,monospace;font-size:.85rem}
button,a.button{display:inline-block;margin-top:.75rem;padding:.5rem 1rem;font:inherit;border:0;border-radius:.3rem;background:#2456c7;color:#fff;cursor:pointer;text-decoration:none}
button.danger{background:#a33b1e}
button.link{margin:0;padding:0;background:none;color:#fff;text-decoration:underline}
form.inline{display:inline}
form.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
form.row select{width:auto;flex:1 1 10rem}
form.row button{margin:0}
.notice{padding:.6rem .8rem;border-radius:.3rem}
.notice.ok{background:#e3f4e8;border:1px solid #8fcca2}
.notice.error{background:#fbe6e1;border:1px solid #e0a090}
.notice.info{background:#e6eefb;border:1px solid #9db6e6}
.empty{color:#5b6475}
code,.secret{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
.secret{display:block;padding:.5rem;background:#f0f2f5;border-radius:.3rem;font-size:1.05rem}
.codes{columns:2;font-family:ui-monospace,monospace;font-size:1.05rem;list-style:none;padding:0}
.qr{display:inline-block;background:#fff;padding:.5rem;max-width:100%}
.qr svg{width:14rem;height:14rem;max-width:100%}
table{width:100%;border-collapse:collapse;background:#fff;font-size:.9rem;border:1px solid #d8dce3}
th,td{text-align:left;padding:.4rem;border-bottom:1px solid #e3e6eb;vertical-align:top;overflow-wrap:anywhere}
td.actions{text-align:right;white-space:nowrap}
td.actions button,td.actions form.row{margin:0}
.when{white-space:nowrap}
.steps{color:#5b6475;font-size:.9rem}
@media (max-width:40rem){
header{gap:.25rem .75rem}
header nav{order:3;flex-basis:100%;gap:.1rem .9rem;font-size:.9rem}
.codes{columns:1}
table,thead,tbody,tr,td{display:block;width:100%}
table{border:0;background:none}
thead{display:none}
tr{background:#fff;border:1px solid #d8dce3;border-radius:.5rem;padding:.5rem .75rem;margin:0 0 .5rem}
td{border:0;padding:.1rem 0}
td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:#5b6475}
td.actions{text-align:left;white-space:normal}
td.actions button{margin-top:.4rem}
}
"#;
