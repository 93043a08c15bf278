//! Admin pages: users (disable, enable, reset 2FA, unlock) and the audit log.

use maud::{Markup, html};

use super::context::{Context, guard};
use super::layout::{csrf_field, notice, page, table, when};
use super::response::Response;
use crate::store::AuditFilter;
use crate::system::time::format_utc;

fn admin(cx: &Context) -> Result<crate::store::User, Response> {
    let user = cx.full_user()?;
    if user.is_admin {
        Ok(user)
    } else {
        Err(Response::error(403, "This page is for admins."))
    }
}

pub fn users(cx: &mut Context, message: Option<Markup>) -> Response {
    guard!(admin(cx));
    let csrf = csrf_field(&guard!(cx.csrf()));
    let users = match cx.store.users() {
        Ok(users) => users,
        Err(e) => return cx.unavailable(&e),
    };
    let rows: Vec<Vec<Markup>> = users
        .iter()
        .map(|u| {
            let button = |action: &str, label: &str| {
                html! {
                    form.inline method="post" action="/2fa/admin/users" {
                        (csrf)
                        input type="hidden" name="user" value=(u.name);
                        input type="hidden" name="action" value=(action);
                        button type="submit" aria-label={ (label) " " (u.name) } { (label) }
                    }
                    " "
                }
            };
            let locked = u.locked_until.filter(|&t| t > cx.now);
            vec![
                html! { (u.name) },
                html! { @if u.enabled { "enabled" } @else { "disabled" } },
                html! { @if u.is_enrolled() { "enrolled" } @else { "not enrolled" } },
                html! {
                    @match locked {
                        Some(t) => { "locked until " (when(format_utc(t))) },
                        None => "not locked",
                    }
                },
                html! {
                    @if u.enabled { (button("disable", "Disable")) } @else { (button("enable", "Enable")) }
                    @if u.is_enrolled() { (button("reset", "Reset 2FA")) }
                    @if locked.is_some() || u.failures > 0 { (button("unlock", "Unlock")) }
                },
            ]
        })
        .collect();
    let body = html! {
        @if let Some(message) = message { (message) }
        (table("users", &["User", "Account", "2FA", "Lock", ""], &rows, "There are no users yet."))
    };
    page(cx, "Users", body)
}

pub fn user_action(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let me = guard!(admin(cx));
    guard!(cx.require_recent_code("/2fa/admin/users"));
    let name = cx.request.field("user").to_string();
    let action = cx.request.field("action").to_string();
    let target = match cx.store.user(&name) {
        Ok(Some(user)) => user,
        Ok(None) => return users(cx, Some(notice("error", "No such user."))).with_status(404),
        Err(e) => return cx.unavailable(&e),
    };
    if !matches!(action.as_str(), "disable" | "enable" | "reset" | "unlock") {
        return users(cx, Some(notice("error", "No such action."))).with_status(400);
    }
    let record = cx.change_record(
        &format!("admin-{action}"),
        &format!("{} by {}", target.name, me.name),
        None,
    );
    let now = cx.now;
    let done = cx.store.audited(record, |store| match action.as_str() {
        "disable" => store
            .set_enabled(target.id, false, now)
            .map(|_| "disabled".to_string()),
        "enable" => store
            .set_enabled(target.id, true, now)
            .map(|_| "enabled".to_string()),
        // As `git2fa user reset-2fa`: the lost-phone procedure revokes the
        // tokens too, since each carried the second factor now removed.
        // It ends the user's web sessions in the same transaction.
        "reset" => store
            .reset_2fa(target.id, true, now)
            .map(|reset| match reset {
                Some(r) => format!(
                    "2FA reset, {} ended, {} revoked",
                    count(r.sessions_ended, "2FA session"),
                    count(r.tokens_revoked, "token")
                ),
                None => "2FA reset".to_string(),
            }),
        "unlock" => store.unlock(target.id).map(|_| "unlocked".to_string()),
        // Checked above.
        _ => Err(crate::store::StoreError::Value("no such action".into())),
    });
    match done {
        Ok(what) => {
            let text = format!("{}: {what}.", target.name);
            users(cx, Some(notice("ok", &text)))
        }
        Err(e) => cx.unavailable(&e),
    }
}

pub fn audit(cx: &mut Context) -> Response {
    guard!(admin(cx));
    let filter = AuditFilter {
        user: cx.request.param("user").map(str::to_string),
        repo: cx.request.param("repo").map(str::to_string),
        limit: 200,
        ..Default::default()
    };
    let rows = match cx.store.audit(&filter) {
        Ok(rows) => rows,
        Err(e) => return cx.unavailable(&e),
    };
    let rows: Vec<Vec<Markup>> = rows
        .iter()
        .map(|(id, r)| {
            vec![
                html! { (id) },
                when(format_utc(r.at)),
                html! { (r.user.as_deref().unwrap_or("")) },
                html! { (r.transport) },
                html! { (r.action) },
                html! { (r.repo.as_deref().unwrap_or("")) },
                html! { (r.outcome) },
                html! { (r.reason) },
                html! { (r.remote_addr.as_deref().unwrap_or("")) },
            ]
        })
        .collect();
    let columns = [
        "#",
        "When",
        "User",
        "Via",
        "What",
        "Repository",
        "Result",
        "Why",
        "From",
    ];
    let body = html! {
        form.card method="get" action="/2fa/admin/audit" {
            label for="user" { "User" }
            input type="text" id="user" name="user" value=(filter.user.as_deref().unwrap_or(""));
            label for="repo" { "Repository" }
            input type="text" id="repo" name="repo" value=(filter.repo.as_deref().unwrap_or(""));
            button type="submit" { "Filter" }
        }
        (table("audit", &columns, &rows, "No audit rows match."))
    };
    page(cx, "Audit log", body)
}

/// "1 token", "2 tokens".
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
