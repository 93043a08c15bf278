//! Logging in and out, and setting a password from a one-time link.

use crate::system::pages;
use sha2::{Digest, Sha256};

use maud::html;

use super::context::{Context, guard};
use super::layout::{csrf_field, notice, page};
use super::response::Response;
use crate::authz::password::{self, PasswordCheck};
use crate::factor::crypto;
use crate::system::names::check_user_name;
use crate::system::time::format_utc;

/// A local path to go to after logging in; anything else goes home.
///
/// Only paths of this page (`/2fa…`) made of visible ASCII: browsers drop
/// tabs and newlines from URLs, so `/\t/evil.example` would otherwise leave
/// the site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if (path == "/2fa" || path.starts_with("/2fa/") || path.starts_with("/2fa?"))
                && path.bytes().all(|b| b.is_ascii_graphic())
                && !path.contains("//")
                && !path.contains('\\') =>
        {
            path.to_string()
        }
        _ => "/2fa".to_string(),
    }
}

pub fn login_form(cx: &mut Context, error: Option<&str>) -> Response {
    if cx.user.is_some() && error.is_none() {
        return Response::redirect(&safe_next(cx.request.param("next")));
    }
    let csrf = guard!(cx.csrf());
    let next = cx
        .request
        .param("next")
        .or(Some(cx.request.field("next")))
        .unwrap_or("")
        .to_string();
    // After a failed log-in the name stays; the password is typed again.
    let typed = if error.is_some() {
        cx.request.field("user").trim().to_string()
    } else {
        String::new()
    };
    let out = cx
        .request
        .param("out")
        .and_then(|until| until.parse::<i64>().ok())
        .filter(|_| error.is_none());
    let body = html! {
        @if let Some(error) = error { (notice("error", error)) }
        @match out {
            // A time from the address: believed only within a session's
            // length from now.
            Some(until) if until > cx.now && until <= cx.now + cx.config.policy.session_ttl => (notice("info", &format!(
                "You are logged out. Your 2FA session for git stays open until {}: \
                 to end it, log in and choose \"Leave the 2FA session\" on Manage 2FA.",
                crate::system::time::format_utc(until)
            ))),
            Some(_) => (notice("info", "You are logged out.")),
            None => {}
        }
        form.card method="post" action="/login" {
            (csrf_field(&csrf))
            input type="hidden" name="next" value=(next);
            label for="user" { "User name" }
            input type="text" id="user" name="user" value=(typed) autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input type="password" id="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
    };
    let status = if error.is_some() { 401 } else { 200 };
    page(cx, "Log in", body).with_status(status)
}

pub fn login(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let name = cx.request.field("user").trim().to_string();
    let password = cx.request.field("password").to_string();
    let remote_addr = cx.request.remote_addr.clone();
    // A disabled account's password counts as wrong here: it logs nobody in.
    let checked = password::check(
        &mut cx.store,
        &cx.config.policy,
        (&name, &password),
        &remote_addr,
        cx.now,
        |u| u.enabled,
    );
    let tried = check_user_name(&name).is_ok().then_some(name.clone());
    let user = match checked {
        Ok(PasswordCheck::Right(user)) => user,
        Ok(PasswordCheck::Throttled { until }) => {
            cx.audit_for(
                tried.as_deref(),
                "login",
                "fail",
                "password-throttled",
                None,
            );
            let message = format!(
                "Too many wrong passwords. Try again after {}.",
                format_utc(until)
            );
            return login_form(cx, Some(&message));
        }
        Ok(PasswordCheck::Wrong) => {
            cx.audit_for(tried.as_deref(), "login", "fail", "wrong-password", None);
            return login_form(cx, Some("Wrong user name or password."));
        }
        Ok(PasswordCheck::Busy) => {
            cx.audit_for(
                tried.as_deref(),
                "login",
                "fail",
                "busy-password-hashes",
                None,
            );
            return login_form(
                cx,
                Some("Too many log-ins are being checked right now. Try again in a moment."),
            )
            .with_status(503);
        }
        Err(e) => return cx.unavailable(&e),
    };
    let next = safe_next(Some(cx.request.field("next")));
    let row = crate::store::AuditRecord {
        user: Some(user.name.clone()),
        ..cx.change_record("login", "password", None)
    };
    guard!(cx.start_session(Some(user.id), Some(row)));
    if !user.is_enrolled() {
        return Response::redirect("/2fa/setup");
    }
    // From git's refusal message: straight to verify, the repository named.
    if next.starts_with(pages::VERIFY) {
        return Response::redirect(&next);
    }
    Response::redirect(&pages::verify_then(&next))
}

pub fn logout(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let git_session = cx.git_session_until();
    // A row for a signed-in user's session (it names them).
    let row = cx
        .user
        .is_some()
        .then(|| cx.change_record("logout", "web", None));
    guard!(cx.end_session(row));
    // Git goes on working in an open 2FA session: the page says so.
    match git_session {
        Some(until) => Response::redirect(&format!("/login?out={until}")),
        None => Response::redirect("/login?out=0"),
    }
}

fn link_hash(cx: &Context) -> [u8; 32] {
    let secret = cx.request.path.trim_start_matches("/set-password/");
    Sha256::digest(secret.as_bytes()).into()
}

pub fn set_password_form(cx: &mut Context) -> Response {
    match cx.store.password_link_user(&link_hash(cx), cx.now) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Response::error(
                404,
                "This link is used or expired. Ask an admin of this host for a new one.",
            );
        }
        Err(e) => return cx.unavailable(&e),
    }
    let csrf = guard!(cx.csrf());
    let body = html! {
        form.card method="post" {
            (csrf_field(&csrf))
            label for="password" { "New password (at least 8 characters)" }
            input type="password" id="password" name="password" autocomplete="new-password" minlength="8" required;
            label for="again" { "Again" }
            input type="password" id="again" name="again" autocomplete="new-password" required;
            button type="submit" { "Set password" }
        }
    };
    page(cx, "Set your password", body)
}

pub fn set_password(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let password = cx.request.field("password").to_string();
    if password != cx.request.field("again") {
        return page(
            cx,
            "Set your password",
            notice("error", "The two passwords differ. Go back and try again."),
        )
        .with_status(400);
    }
    if password.chars().count() < 8 || password.len() > 1024 {
        return page(
            cx,
            "Set your password",
            notice("error", "A password needs 8 to 1024 characters."),
        )
        .with_status(400);
    }
    let hash = match crypto::hash_password(&password) {
        Ok(hash) => hash,
        Err(e) => return cx.unavailable(&e),
    };
    let for_user = cx
        .store
        .password_link_user(&link_hash(cx), cx.now)
        .ok()
        .flatten()
        .and_then(|id| cx.store.user_by_id(id).ok().flatten())
        .map(|u| u.name);
    let record = crate::store::AuditRecord {
        user: for_user,
        ..cx.change_record("set-password", "link", None)
    };
    let (link, now) = (link_hash(cx), cx.now);
    match cx
        .store
        .audited(record, |store| store.use_password_link(&link, &hash, now))
    {
        Ok(true) => page(
            cx,
            "Password set",
            html! {
                (notice("ok", "Your password is set."))
                p { a href="/login" { "Log in" } }
            },
        ),
        Ok(false) => Response::error(
            404,
            "This link is used or expired. Ask an admin of this host for a new one.",
        ),
        Err(e) => cx.unavailable(&e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed_after_log_in() {
        assert_eq!(
            super::safe_next(Some("/2fa/verify?repo=x")),
            "/2fa/verify?repo=x"
        );
        for bad in [
            "https://evil.example",
            "//evil.example/x",
            "/\t/evil.example",
            "/\n/evil.example",
            "/2fa/\t/x",
            "/%09/evil.example",
            "/login",
            "/2fa//evil.example",
            "/\\evil",
            "",
            "2fa",
        ] {
            assert_eq!(super::safe_next(Some(bad)), "/2fa", "{bad}");
        }
        assert_eq!(super::safe_next(None), "/2fa");
    }
}
