//! The second factor in the web page: verify, and "Manage 2FA" (leave the
//! session, always use 2FA, recovery codes, remove 2FA, recent activity).
//! The set-up wizard is `setup`.

use super::account::safe_next;
use crate::system::pages;
use maud::{Markup, html};

use super::context::{Context, Held, guard};
use super::layout::{csrf_field, notice, page, table, when};
use super::response::Response;
use super::security_keys::{self, KeyVerify};
use crate::authz::decision::Transport;
use crate::authz::messages;
use crate::authz::twofactor::{self, Origin, Verified};
use crate::store::AuditFilter;
use crate::system::time::{format_duration, format_utc};

pub(super) fn origin(cx: &Context) -> Origin {
    Origin {
        transport: Transport::Web,
        key_id: None,
        remote_addr: Some(cx.request.remote_addr.clone()),
    }
}

pub fn verify_form(cx: &mut Context, error: Option<&str>) -> Response {
    let user = guard!(cx.logged_in());
    if !user.is_enrolled() {
        return Response::redirect("/2fa/setup");
    }
    let csrf = guard!(cx.csrf());
    // From the link git printed, or, after a wrong code, from the form.
    let repo = cx
        .request
        .param("repo")
        .or(Some(cx.request.field("repo")))
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let next = cx
        .request
        .param("next")
        .unwrap_or(cx.request.field("next"))
        .to_string();
    // From `2fa verify`'s link, or, after a failed try, from the form.
    let link = cx
        .request
        .param("link")
        .or(Some(cx.request.field("link")))
        .filter(|l| !l.is_empty())
        .map(str::to_string);
    let repo_field = repo.clone().unwrap_or_default();
    // A change posted without a recent code, made once the code is in.
    let held = cx.held();
    let held_fields = held_fields(held.as_ref());
    let key_part = security_keys::verify_part(
        cx,
        &user,
        (link.as_deref(), &csrf, &next, &repo_field),
        &held_fields,
    );
    let link_notice = link
        .as_deref()
        .map(|token| security_keys::link_notice(cx, &user, token));
    let with_codes = user.has_totp() || cx.config.policy.recovery_codes > 0;
    let label = if user.has_totp() {
        "Code from your authenticator app, or a recovery code"
    } else {
        "Or a recovery code"
    };
    let body = html! {
        @if let Some(repo) = &repo {
            p { "Git needs a 2FA session for " strong { (repo) } "." }
        }
        @if let Some(link_notice) = link_notice { (link_notice) }
        @if let Some(held) = &held {
            (notice("info", &format!(
                "{} needs a code from the last five minutes{}. Enter one, and it is done at once.",
                held.what(),
                cx.git_session_until().map_or(String::new(), |until| format!(
                    " (your 2FA session for git stays open until {})",
                    format_utc(until)
                ))
            )))
        } @else if !next.is_empty() && repo.is_none() && link.is_none() && cx.recent_code_expired() {
            (notice("info", "That page needs a code from the last five minutes. Enter one to go on."))
        }
        @if let Some(error) = error { (notice("error", error)) }
        (key_part)
        @if with_codes {
            form.card #code-form method="post" action=(pages::VERIFY) {
                (csrf_field(&csrf))
                input type="hidden" name="next" value=(next);
                input type="hidden" name="repo" value=(repo_field);
                input type="hidden" name="link" value=(link.as_deref().unwrap_or(""));
                (held_fields)
                label for="code" { (label) }
                @if user.security_keys > 0 {
                    input type="text" id="code" name="code" autocomplete="one-time-code" required;
                } @else {
                    input type="text" id="code" name="code" autocomplete="one-time-code" required autofocus;
                }
                button type="submit" { "Verify" }
            }
        }
        p {
            "Opens a 2FA session for " (format_duration(cx.config.policy.session_ttl))
            "; git operations work while it is open."
        }
    };
    page(cx, "Verify", body)
}

/// The hidden fields that carry a held change through the verify forms.
fn held_fields(held: Option<&Held>) -> Markup {
    html! {
        @if let Some(held) = held {
            input type="hidden" name="then" value=(held.then);
            input type="hidden" name="carry" value=(held.carry);
            input type="hidden" name="held" value=(held.seal);
        }
    }
}

pub fn verify(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.logged_in());
    if !user.is_enrolled() {
        return Response::redirect("/2fa/setup");
    }
    // Read before the step up below: its seal is the old session's.
    let held = cx.held();
    let (checked, through_link) = if cx.request.field("method") == "security-key" {
        match guard!(security_keys::verify_answer(cx, &user)) {
            KeyVerify::Checked {
                verified,
                through_link,
            } => (verified, through_link),
            KeyVerify::NoAnswer(why) => {
                return verify_form(cx, Some(&format!("Not verified: {why}."))).with_status(400);
            }
        }
    } else {
        (guard!(check_code(cx, &user)), false)
    };
    let error = match checked {
        Verified::Opened {
            expires_at, method, ..
        } => {
            guard!(cx.step_up());
            if let Some(held) = held {
                // The change the user asked for, with the new session's
                // CSRF token (web::handle routes it next).
                let mut form = held.form();
                form.insert("csrf".into(), guard!(cx.csrf()));
                cx.replay = Some((held.then, form));
                return Response::redirect("/2fa");
            }
            let repo = cx.request.field("repo").to_string();
            let next = cx.request.field("next").to_string();
            let used = if method == twofactor::Method::RecoveryCode {
                let left = cx.store.recovery_codes_left(user.id).unwrap_or(0);
                let text = format!(
                    "You used a recovery code; it will not work again. {left} recovery code{} left{}.",
                    if left == 1 { " is" } else { "s are" },
                    if left < 3 {
                        ": make new ones on Manage 2FA"
                    } else {
                        ""
                    }
                );
                Some(notice(if left < 3 { "error" } else { "info" }, &text))
            } else {
                None
            };
            let body = html! {
                @if let Some(used) = used { (used) }
                @if through_link {
                    p {
                        "Your 2FA session is open until " strong id="until" { (format_utc(expires_at)) } ". "
                        "The " code { "2fa verify" } " waiting in your terminal goes on now."
                    }
                } @else {
                    p {
                        "Your 2FA session is open until " strong id="until" { (format_utc(expires_at)) } ". Git operations"
                        @if !repo.is_empty() { " on " (repo) }
                        " work now: run the same git command again."
                    }
                }
                p { a.button href=(safe_next(Some(&next))) { "Continue" } }
            };
            return page(cx, "Verified", body);
        }
        Verified::Wrong { left } if cx.request.field("method") == "security-key" => {
            format!(
                "The key's answer was not accepted. {} your account.",
                messages::more_lock(left, "failed attempt")
            )
        }
        Verified::Wrong { left } => {
            format!(
                "That code is not right. {} your account.",
                messages::more_lock(left, "wrong code")
            )
        }
        Verified::Replayed { left } => {
            format!(
                "That code was already used. Wait for the next one. {} your account.",
                messages::more_lock(left, "wrong code")
            )
        }
        Verified::Locked { until } if cx.request.field("method") == "security-key" => {
            format!(
                "Too many failed attempts: your account is locked until {}.",
                format_utc(until)
            )
        }
        Verified::Locked { until } => {
            format!(
                "Too many wrong codes: your account is locked until {}.",
                format_utc(until)
            )
        }
    };
    verify_form(cx, Some(&error)).with_status(401)
}

/// Rows of "Recent activity" at first, and at most.
const ACTIVITY: u32 = 20;
const MAX_ACTIVITY: u32 = 1000;

pub fn manage(cx: &mut Context) -> Response {
    manage_with(cx, None)
}

pub(super) fn manage_with(cx: &mut Context, message: Option<Markup>) -> Response {
    let user = guard!(cx.full_user());
    let csrf = csrf_field(&guard!(cx.csrf()));
    let until = cx.git_session_until();
    let may_always = cx.config.policy.users_may_always_enforce;
    let with_codes = cx.config.policy.recovery_codes > 0;
    // The newest 20 rows, or as many as "Show older activity" asked for.
    let limit = cx
        .request
        .param("activity")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(ACTIVITY)
        .clamp(ACTIVITY, MAX_ACTIVITY);
    let rows = cx
        .store
        .audit(&AuditFilter {
            user: Some(user.name.clone()),
            repo: None,
            limit,
            ..Default::default()
        })
        .unwrap_or_default();
    let older = rows.len() == limit as usize && limit < MAX_ACTIVITY;
    // One git operation is several requests over HTTP (and a decision per
    // hook over SSH): alike rows in a row, within a minute, are one line.
    let mut shown: Vec<&crate::store::AuditRecord> = Vec::new();
    for (_, r) in &rows {
        let same = shown.last().is_some_and(|last| {
            (
                last.transport.as_str(),
                last.action.as_str(),
                &last.repo,
                last.outcome.as_str(),
            ) == (
                r.transport.as_str(),
                r.action.as_str(),
                &r.repo,
                r.outcome.as_str(),
            ) && last.reason == r.reason
                && last.remote_addr == r.remote_addr
                && last.at - r.at <= 60
        });
        if !same {
            shown.push(r);
        }
    }
    let activity: Vec<Vec<Markup>> = shown
        .iter()
        .map(|r| {
            vec![
                when(format_utc(r.at)),
                html! { (r.transport) },
                html! { (r.action) },
                html! { (r.repo.as_deref().unwrap_or("")) },
                html! { (r.outcome) " (" (r.reason) ")" },
                html! { (r.remote_addr.as_deref().unwrap_or("")) },
            ]
        })
        .collect();
    let columns = ["When", "Via", "What", "Repository", "Result", "From"];
    let body = html! {
        @if let Some(message) = message { (message) }
        section {
            h2 { "2FA session" }
            @if let Some(until) = until {
                p {
                    "You are in a 2FA session until " strong { (format_utc(until)) } ". "
                    "Git operations work until then; logging out of this page does not end it."
                }
                form method="post" action="/2fa/leave" {
                    (csrf)
                    button type="submit" { "Leave the 2FA session" }
                }
            } @else {
                p { "You are not in a 2FA session. " a href=(pages::VERIFY) { "Verify" } " to open one." }
            }
        }
        @if may_always {
            section {
                h2 { "Always use 2FA" }
                @if user.always_2fa {
                    p { "Every git operation of yours needs a 2FA session, on every repository." }
                } @else {
                    p { "Git asks for 2FA only where this host or the repository requires it." }
                }
                form method="post" action="/2fa/always" {
                    (csrf)
                    @if user.always_2fa {
                        input type="hidden" name="always" value="off";
                        button type="submit" { "Stop always using 2FA" }
                    } @else {
                        input type="hidden" name="always" value="on";
                        button type="submit" { "Always use 2FA for my account" }
                    }
                }
            }
        }
        @if with_codes {
            section {
                h2 { "Recovery codes" }
                p { "New codes replace the old ones, which stop working." }
                form method="post" action="/2fa/recovery-codes" {
                    (csrf)
                    button type="submit" { "Make new recovery codes" }
                }
            }
        }
        @if user.has_totp() {
            section {
                h2 { "Authenticator app" }
                p {
                    "A new phone? Scan a new code with its app: the old phone's codes stop working \
                     once the new one's work. Your recovery codes stay."
                }
                form method="post" action="/2fa/app/move" {
                    (csrf)
                    button type="submit" { "Move to a new phone" }
                }
            }
        }
        section {
            h2 { "Security keys and passkeys" }
            @if user.security_keys > 0 {
                p { "You have " (user.security_keys) " security key" @if user.security_keys != 1 { "s" } ". " a href="/2fa/security-keys" { "Manage security keys" } }
            } @else {
                p { "A security key or a passkey verifies you with a touch, and no fake page can relay it. " a href="/2fa/security-keys" { "Add a security key" } }
            }
            @if !user.has_totp() {
                p { "No authenticator app yet. " a href="/2fa/setup" { "Add an authenticator app" } }
            }
        }
        section {
            h2 { "Remove 2FA" }
            p { "Git then refuses what needs 2FA until you set it up again." }
            @if user.security_keys > 0 {
                p { "Removes your security keys too." }
            }
            form method="post" action="/2fa/remove" {
                (csrf)
                @if user.security_keys > 0 {
                    label for="remove-code" { "A code from your app, or a recovery code (or leave it empty after using your key in the last five minutes)" }
                    input type="text" id="remove-code" name="code" autocomplete="one-time-code";
                } @else {
                    label for="remove-code" { "A code from your app, or a recovery code" }
                    input type="text" id="remove-code" name="code" autocomplete="one-time-code" required;
                }
                button.danger type="submit" { "Remove 2FA" }
            }
        }
        h2 { "Recent activity" }
        (table("activity", &columns, &activity, "Nothing yet."))
        @if older {
            p { a #older href={ "/2fa?activity=" ((limit * 4).min(MAX_ACTIVITY)) "#older" } { "Show older activity" } }
        }
    };
    page(cx, "Manage 2FA", body)
}

pub fn leave(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    let record = cx.change_record("logout", "left the 2FA session", None);
    let now = cx.now;
    match cx
        .store
        .audited(record, |store| store.end_sessions_of(user.id, now))
    {
        Ok(_) => manage_with(
            cx,
            Some(notice(
                "ok",
                "You left the 2FA session; you are still logged in.",
            )),
        ),
        Err(e) => cx.unavailable(&e),
    }
}

pub fn always(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    if !cx.config.policy.users_may_always_enforce {
        return Response::error(403, "This host does not let users choose that.");
    }
    let on = cx.request.field("always") == "on";
    if !on {
        guard!(cx.require_recent_code("/2fa"));
    }
    let record = cx.change_record("always-2fa", if on { "on" } else { "off" }, None);
    if let Err(e) = cx
        .store
        .audited(record, |store| store.set_always_2fa(user.id, on))
    {
        return cx.unavailable(&e);
    }
    cx.user = cx.store.user_by_id(user.id).ok().flatten();
    let text = if on {
        "Every git operation of yours now needs 2FA."
    } else {
        "2FA applies where the host or repository requires it."
    };
    manage_with(cx, Some(notice("ok", text)))
}

pub fn regenerate(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    guard!(cx.require_recent_code("/2fa"));
    let origin = origin(cx);
    match twofactor::regenerate_recovery_codes(&mut cx.store, cx.config, &user, &origin, cx.now) {
        Ok(codes) => {
            let body = html! {
                (notice("ok", "New recovery codes; the old ones no longer work."))
                ul.codes id="recovery-codes" { @for code in &codes { li { (code) } } }
                p { "Save them now: they are not shown again. " a href="/2fa" { "Back" } }
            };
            page(cx, "New recovery codes", body)
        }
        Err(e) => cx.unavailable(&e),
    }
}

/// Checks the code the form sent (TOTP or recovery) for `user`, opening a
/// 2FA session when it is right.
fn check_code(cx: &mut Context, user: &crate::store::User) -> Result<Verified, Response> {
    let key = cx.secret_key()?;
    let code = cx.request.field("code").to_string();
    let origin = origin(cx);
    let config = cx.config;
    twofactor::verify(&mut cx.store, &key, config, user, &code, &origin, cx.now)
        .map_err(|e| cx.unavailable(&e))
}

pub fn remove(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    let without_code = cx.request.field("code").trim().is_empty() && user.security_keys > 0;
    if without_code {
        // A user with keys may prove it with a key used just now instead.
        guard!(cx.require_recent_code("/2fa"));
    } else {
        match guard!(check_code(cx, &user)) {
            Verified::Opened { .. } => {}
            _ => {
                return manage_with(
                    cx,
                    Some(notice("error", "That code is not right; 2FA stays on.")),
                )
                .with_status(400);
            }
        }
    }
    // The user's own tokens stay: each was minted with a code of theirs.
    let record = cx.change_record("remove-2fa", "by the user", None);
    let now = cx.now;
    if let Err(e) = cx
        .store
        .audited(record, |store| store.reset_2fa(user.id, false, now))
    {
        return cx.unavailable(&e);
    }
    // The web session went with the rest: say what happened, and where to
    // go on.
    Response::bare(
        200,
        "2FA is removed from your account: codes from your app, your recovery codes and \
         your security keys no longer work, and your 2FA sessions ended. Your access tokens \
         stay. Log in again to set up 2FA, on a new phone if you lost the old one.",
    )
}
