//! The frame of every page: the layout with its menu bar and padlock, and
//! the pieces pages share (forms' CSRF field, notices, tables, times). All
//! of it is maud markup: text is escaped where it is spliced in, so no page
//! can forget to.

use crate::system::pages;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::context::Context;
use super::response::Response;
use crate::system::time::format_utc;

/// The stylesheet, served at `/style.css` (the CSP allows no inline style).
pub const STYLE: &str = include_str!("style.css");

/// A hidden CSRF field for a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A page with the menu bar: the links the user may use, the padlock
/// (closed in a 2FA session, open otherwise) and log-out.
pub fn page(cx: &mut Context, title: &str, body: Markup) -> Response {
    let header = match cx.user.clone() {
        Some(user) => {
            let csrf = cx.csrf().unwrap_or_default();
            let full =
                user.is_enrolled() && cx.session.as_ref().is_some_and(|s| s.code_at.is_some());
            let until = cx.git_session_until();
            html! {
                // The menu only when it has links: a row of its own on a phone.
                @if full {
                    nav {
                        a href="/2fa" { "Manage 2FA" }
                        a href="/2fa/tokens" { "Access tokens" }
                        a href="/2fa/security-keys" { "Security keys" }
                        a href="/2fa/keys" { "SSH keys" }
                        a href="/2fa/repos" { "Repositories" }
                        @if user.is_admin {
                            a href="/2fa/admin/users" { "Users" }
                            a href="/2fa/admin/audit" { "Audit log" }
                        }
                    }
                }
                div.status {
                    @match until {
                        Some(until) => a.padlock.closed href="/2fa"
                            title={ "In a 2FA session until " (format_utc(until)) } {
                            (CLOSED) " 2FA session"
                        },
                        None if user.is_enrolled() => a.padlock.open href=(pages::VERIFY)
                            title="No 2FA session: verify" { (OPEN) " Verify" },
                        None => a.padlock.open href="/2fa/setup"
                            title="2FA is not set up" { (OPEN) " Set up 2FA" },
                    }
                    span.who { (user.name) }
                    form.inline method="post" action="/logout" {
                        (csrf_field(&csrf))
                        button.link { "Log out" }
                    }
                }
            }
        }
        None => html! {},
    };
    Response::html(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - git2fa" }
                link rel="stylesheet" href="/style.css";
                script src="/webauthn.js" defer {}
            }
            body {
                header { a.brand href="/2fa" { "git2fa" } (header) }
                main { h1 { (title) } (body) }
            }
        }
    })
}

/// The padlock, closed and open, drawn inline (no font or image needed).
/// Fixed markup, no text from outside.
const CLOSED: PreEscaped<&str> = PreEscaped(
    "<svg class=\"lock\" viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path fill=\"currentColor\" \
     d=\"M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7zm2 0h4V5a2 2 0 0 0-4 0z\"/></svg>",
);
const OPEN: PreEscaped<&str> = PreEscaped(
    "<svg class=\"lock\" viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path fill=\"currentColor\" \
     d=\"M4 7V5a4 4 0 0 1 8 0h-2a2 2 0 0 0-4 0v2h7v8H3V7z\"/></svg>",
);

/// A table of `rows` under `columns`. Each cell carries its column's name,
/// so that on a phone every row shows as a card of labelled lines instead
/// of a table wider than the screen; the column named "" holds the row's
/// buttons. With no rows, `empty` is said instead.
pub fn table(id: &str, columns: &[&str], rows: &[Vec<Markup>], empty: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty id=(id) { (empty) }
        } @else {
            table id=(id) {
                thead { tr { @for column in columns { th { (column) } } } }
                tbody {
                    @for row in rows {
                        tr {
                            @for (cell, column) in row.iter().zip(columns) {
                                @if column.is_empty() {
                                    td.actions { (cell) }
                                } @else {
                                    td data-label=(column) { (cell) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A time, kept on one line.
pub fn when(text: String) -> Markup {
    html! { span.when { (text) } }
}

/// A notice box: `kind` is ok, error or info.
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { p class={ "notice " (kind) } role="status" { (text) } }
}
