//! Setting up the authenticator app in the web page: the wizard (get an
//! app, scan the code, save the recovery codes, confirm with a code), and
//! "Move to a new phone", the same steps for a new secret.

use maud::{Markup, html};

use super::context::{Context, guard};
use super::layout::{csrf_field, notice, page};
use super::qr;
use super::response::Response;
use super::security_keys;
use super::twofa::{manage_with, origin};
use crate::authz::twofactor;
use crate::factor::totp;
use crate::system::time::format_utc;

fn pending_context(user_id: i64) -> Vec<u8> {
    format!("git2fa pending enrolment v1 user {user_id}").into_bytes()
}

/// The enrolment in progress in this web session: the secret, the
/// recovery codes to show and their hashes.
struct Pending {
    secret: Vec<u8>,
    codes: Vec<String>,
    hashes: Vec<String>,
}

fn pending(cx: &Context, user_id: i64) -> Result<Option<Pending>, Response> {
    let Some(session) = &cx.session else {
        return Ok(None);
    };
    let (Some(secret), Some(codes)) = (&session.pending_secret, &session.pending_codes) else {
        return Ok(None);
    };
    let key = cx.secret_key()?;
    let context = pending_context(user_id);
    let secret = key.open(&context, secret).map_err(|e| cx.unavailable(&e))?;
    let codes = key.open(&context, codes).map_err(|e| cx.unavailable(&e))?;
    let codes = String::from_utf8(codes).unwrap_or_default();
    let (shown, hashes) = codes.split_once("\n--\n").unwrap_or(("", ""));
    Ok(Some(Pending {
        secret,
        codes: shown.lines().map(str::to_string).collect(),
        hashes: hashes.lines().map(str::to_string).collect(),
    }))
}

fn steps(current: usize, with_codes: bool) -> Markup {
    let mut names = vec!["Get an app", "Scan the code"];
    if with_codes {
        names.push("Save recovery codes");
    }
    names.push("Confirm");
    html! {
        p.steps {
            "Step " (current) " of " (names.len()) ": "
            @for (i, name) in names.iter().enumerate() {
                @if i > 0 { " \u{2192} " }
                @if i + 1 == current { strong { (name) } } @else { (name) }
            }
        }
    }
}

pub fn setup_intro(cx: &mut Context) -> Response {
    let user = guard!(cx.logged_in());
    if user.has_totp() {
        return Response::redirect("/2fa");
    }
    if user.is_enrolled() {
        // Adding an app beside a key is a sensitive change.
        guard!(cx.full_user());
        guard!(cx.require_recent_code("/2fa/setup"));
    }
    let csrf = guard!(cx.csrf());
    let body = html! {
        (steps(1, cx.config.policy.recovery_codes > 0))
        section {
            p {
                "Git on this host asks for a second factor: a 6-digit code from an \
                 authenticator app on your phone. Install one of these if you have none:"
            }
            ul { @for app in &cx.config.web.authenticator_apps { li { (app) } } }
        }
        form method="post" action="/2fa/setup/start" {
            (csrf_field(&csrf))
            button type="submit" { "I have an app: next" }
        }
        @if !user.is_enrolled() {
            section {
                h2 { "Or a security key or passkey" }
                p {
                    "A security key (such as a YubiKey) or a passkey on your phone or computer \
                     can be your second factor instead of an app: "
                    a #use-key href="/2fa/security-keys" { "set up 2FA with a security key" } "."
                }
            }
        }
    };
    page(cx, "Set up two-factor authentication", body)
}

pub fn setup_start(cx: &mut Context) -> Response {
    let user = guard!(cx.logged_in());
    guard!(cx.check_csrf());
    if user.has_totp() {
        return Response::redirect("/2fa");
    }
    if user.is_enrolled() {
        guard!(cx.full_user());
        guard!(cx.require_recent_code("/2fa/setup"));
    }
    // Back in the wizard and on again: the secret the app may have
    // scanned already stays (a new one would make its codes fail).
    if guard!(pending(cx, user.id)).is_some() {
        return Response::redirect("/2fa/setup/scan");
    }
    let key = guard!(cx.secret_key());
    let made = totp::generate_secret().and_then(|secret| {
        Ok((
            secret,
            twofactor::new_recovery_codes(cx.config.policy.recovery_codes)?,
        ))
    });
    let (secret, (shown, hashes)) = match made {
        Ok(made) => made,
        Err(e) => return cx.unavailable(&e),
    };
    let codes = format!("{}\n--\n{}", shown.join("\n"), hashes.join("\n"));
    keep_pending(cx, &key, user.id, (&secret, codes.as_bytes()))
}

/// "Move to a new phone": a new secret for the app, set up like the first
/// (scan, confirm with a code from the new phone), replacing the old one
/// only when confirmed. A sensitive change: it needs a recent code.
pub fn move_start(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    if !user.has_totp() {
        return Response::redirect("/2fa/setup");
    }
    guard!(cx.require_recent_code("/2fa"));
    if user.locked_until.is_some_and(|until| until > cx.now) {
        return manage_with(
            cx,
            Some(notice(
                "error",
                "Your account is locked after wrong codes; move the app once the lock has ended.",
            )),
        )
        .with_status(409);
    }
    if guard!(pending(cx, user.id)).is_some() {
        return Response::redirect("/2fa/setup/scan");
    }
    let key = guard!(cx.secret_key());
    let secret = match totp::generate_secret() {
        Ok(secret) => secret,
        Err(e) => return cx.unavailable(&e),
    };
    // No new recovery codes: the ones the user holds stay.
    keep_pending(cx, &key, user.id, (&secret, b"\n--\n"))
}

/// Keeps a set-up under way in this web session, sealed (the secret and
/// the codes it shows), and goes on to scanning.
fn keep_pending(
    cx: &mut Context,
    key: &crate::factor::crypto::SecretKey,
    user_id: i64,
    (secret, codes): (&[u8], &[u8]),
) -> Response {
    let context = pending_context(user_id);
    let sealed = key
        .seal(&context, secret)
        .and_then(|s| Ok((s, key.seal(&context, codes)?)));
    let (sealed_secret, sealed_codes) = match sealed {
        Ok(sealed) => sealed,
        Err(e) => return cx.unavailable(&e),
    };
    let id = cx.session.as_ref().map(|s| s.id).unwrap_or_default();
    if let Err(e) = cx
        .store
        .set_web_pending(&id, Some(&sealed_secret), Some(&sealed_codes))
    {
        return cx.unavailable(&e);
    }
    Response::redirect("/2fa/setup/scan")
}

fn require_pending(cx: &Context) -> Result<(crate::store::User, Pending), Response> {
    let user = cx.logged_in()?;
    // A user with an app moves it to a new phone all the way in (the move
    // began with a recent code, `move_start`).
    // A user with a key adds an app all the way in (the set-up began with
    // a recent code, `setup_start`). An app set up half-way with the
    // password alone before the key was added cannot be finished: adding
    // the key dropped it (`Store::add_security_key`), and this session is
    // not past 2FA.
    if user.is_enrolled() {
        cx.full_user()?;
        // Its secret joins or replaces a second factor: each step needs a
        // code from the last five minutes, as starting did, so that a web
        // session left open can neither read nor finish a set-up.
        cx.require_recent_code(&cx.request.path)?;
    }
    match pending(cx, user.id)? {
        Some(p) => Ok((user, p)),
        None => Err(Response::redirect("/2fa/setup")),
    }
}

pub fn setup_scan(cx: &mut Context) -> Response {
    let (user, pending) = guard!(require_pending(cx));
    let uri = totp::otpauth_uri(&cx.config.totp.issuer, &user.name, &pending.secret);
    let Some(svg) = qr::svg(&uri) else {
        return cx.unavailable(&"the otpauth URI does not fit in a QR code");
    };
    let key = totp::encode_secret(&pending.secret);
    let grouped: Vec<String> = key
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let moving = user.has_totp();
    let with_codes = !moving && cx.config.policy.recovery_codes > 0;
    let next = if with_codes {
        "/2fa/setup/codes"
    } else {
        "/2fa/setup/confirm"
    };
    let body = html! {
        (steps(2, with_codes))
        section {
            @if moving {
                p { "Scan this QR code with the authenticator app on your new phone. \
                     Until you confirm, codes from the old phone go on working." }
            } @else {
                p { "Scan this QR code with your authenticator app. On a phone, tap it to open the app." }
            }
            a.qr href=(uri) id="qr" { (svg) }
            p { "Cannot scan? Type this key into the app (time-based, 6 digits, 30 seconds):" }
            code.secret id="key" { (grouped.join(" ")) }
        }
        p { a.button href=(next) { "Next" } }
    };
    page(cx, "Scan the code", body)
}

pub fn setup_codes(cx: &mut Context) -> Response {
    let (_, pending) = guard!(require_pending(cx));
    if pending.codes.is_empty() {
        return Response::redirect("/2fa/setup/confirm");
    }
    let body = html! {
        (steps(3, true))
        section {
            p {
                "If you lose your phone, each of these codes lets you in once. \
                 Save them somewhere safe now: they are shown only during this set-up."
            }
            ul.codes id="recovery-codes" { @for code in &pending.codes { li { (code) } } }
            p { a href="/2fa/setup/codes.txt" { "Download them as a text file" } }
        }
        p { a.button href="/2fa/setup/confirm" { "I saved them: next" } }
    };
    page(cx, "Save your recovery codes", body)
}

pub fn setup_codes_download(cx: &mut Context) -> Response {
    let (user, pending) = guard!(require_pending(cx));
    let text = security_keys::codes_text(&user.name, cx.config, &pending.codes);
    Response::attachment("git2fa-recovery-codes.txt", text)
}

pub fn setup_confirm_form(cx: &mut Context, error: Option<&str>) -> Response {
    let (user, _) = guard!(require_pending(cx));
    let csrf = guard!(cx.csrf());
    let moving = user.has_totp();
    let with_codes = !moving && cx.config.policy.recovery_codes > 0;
    let body = html! {
        (steps(if with_codes { 4 } else { 3 }, with_codes))
        @if let Some(error) = error { (notice("error", error)) }
        form.card method="post" action="/2fa/setup/confirm" {
            (csrf_field(&csrf))
            label for="code" { "The 6-digit code your app shows now" }
            input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus;
            @if moving {
                button type="submit" { "Use the new phone" }
            } @else {
                button type="submit" { "Turn on 2FA" }
            }
        }
    };
    page(cx, "Confirm", body)
}

pub fn setup_confirm(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let (user, pending) = guard!(require_pending(cx));
    let code = cx.request.field("code").to_string();
    let Some(step) = totp::matching_step(&pending.secret, cx.now, cx.config.totp.skew, &code)
    else {
        return setup_confirm_form(
            cx,
            Some("That code is not the one the app shows now. Check the app and try again."),
        )
        .with_status(400);
    };
    let key = guard!(cx.secret_key());
    let origin = origin(cx);
    let (web_session, pending_sealed) = match &cx.session {
        Some(session) => (
            session.id,
            session.pending_secret.clone().unwrap_or_default(),
        ),
        None => return Response::redirect("/2fa/setup"),
    };
    let setup = twofactor::Setup {
        web_session: &web_session,
        pending_sealed: &pending_sealed,
        secret: &pending.secret,
        recovery_hashes: &pending.hashes,
        step,
    };
    let moving = user.has_totp();
    let confirm = if moving {
        twofactor::move_app_confirmed
    } else {
        twofactor::enroll_confirmed
    };
    let result = confirm(
        &mut cx.store,
        &key,
        cx.config,
        &user,
        &setup,
        &origin,
        cx.now,
    );
    match result {
        Ok(_) => {}
        Err(twofactor::TwoFactorError::MovedWithoutSession) => {
            let body = html! {
                (notice("error", "Your authenticator app moved to the new phone: the old phone's codes no longer work. No 2FA session was opened (the account is locked after wrong codes, or that code was used already): verify with a code from the new phone."))
                p { a.button href="/2fa/verify" { "Verify" } }
            };
            return page(cx, "Moved, not verified", body).with_status(409);
        }
        Err(twofactor::TwoFactorError::AlreadyEnrolled) => {
            let body = html! {
                (notice("error", "The app was not set up: your account's second factors changed while you set it up (a security key or app was added, in another tab or window). The recovery codes this set-up showed do not work."))
                p { a.button href="/2fa" { "See your 2FA settings" } }
            };
            return page(cx, "Set-up interrupted", body).with_status(409);
        }
        Err(e) => return cx.unavailable(&e),
    }
    // The new session has no enrolment in progress: the old one, with
    // its sealed secret, is deleted.
    guard!(cx.step_up());
    let until = cx.now + cx.config.policy.session_ttl;
    if moving {
        let body = html! {
            (notice("ok", "Your authenticator app moved to the new phone: its codes work now, and the old phone's no longer do. Your recovery codes and security keys stay as they were."))
            p { "A 2FA session is open until " (format_utc(until)) "." }
            p { a.button href="/2fa" { "Manage 2FA" } }
        };
        return page(cx, "Moved to the new phone", body);
    }
    let body = html! {
        (notice("ok", "Two-factor authentication is on."))
        p { "A 2FA session is open until " (format_utc(until)) ": git operations work now." }
        p { a.button href="/2fa" { "Manage 2FA" } }
    };
    page(cx, "2FA is on", body)
}
