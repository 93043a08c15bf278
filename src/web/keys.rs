//! SSH keys: add (needs an open 2FA session), list, remove, and mark a
//! security key (`sk-` type) as proving a touch or a PIN.

use crate::system::pages;
use maud::{Markup, html};

use super::context::{Context, guard};
use super::layout::{csrf_field, notice, page, table, when};
use super::response::Response;
use crate::domain::Hardware;
use crate::factor::sshkey::{PublicKey, is_security_key_type};
use crate::system::time::format_utc;

/// What a user reads where only admins mark keys.
const MARKED_BY_ADMINS: &str =
    "On this host an admin marks security keys: ask one (git2fa key mark).";

/// What the page calls each mark.
fn mark_label(hardware: Option<Hardware>) -> &'static str {
    match hardware {
        None => "Not counted (a key like any other)",
        Some(Hardware::Present) => "Touch every time",
        Some(Hardware::Verified) => "PIN every time",
    }
}

/// The form's `hardware` field: "", "present" or "verified"; anything else
/// is `Err`.
fn hardware_field(value: &str) -> Result<Option<Hardware>, ()> {
    match value {
        "" | "none" => Ok(None),
        word => Hardware::parse(word).map(Some).ok_or(()),
    }
}

/// The choices of a mark, `current` selected.
fn mark_options(current: Option<Hardware>) -> Markup {
    html! {
        @for (value, mark) in [("", None), ("present", Some(Hardware::Present)), ("verified", Some(Hardware::Verified))] {
            option value=(value) selected[mark == current] { (mark_label(mark)) }
        }
    }
}

pub fn list(cx: &mut Context, message: Option<Markup>) -> Response {
    let user = guard!(cx.full_user());
    let csrf = csrf_field(&guard!(cx.csrf()));
    let keys = match cx.store.keys(Some(&user.name)) {
        Ok(keys) => keys,
        Err(e) => return cx.unavailable(&e),
    };
    let may_mark = cx.config.policy.users_may_mark_keys;
    let rows: Vec<Vec<Markup>> = keys
        .iter()
        .map(|k| {
            vec![
                html! { "#" (k.id) },
                html! { (k.algorithm) },
                html! { code { (k.fingerprint) } },
                html! { (k.comment) },
                html! {
                    @if is_security_key_type(&k.algorithm) && !may_mark {
                        (mark_label(k.hardware))
                    } @else if is_security_key_type(&k.algorithm) {
                        form.inline method="post" action="/2fa/keys/hardware" {
                            (csrf)
                            input type="hidden" name="id" value=(k.id);
                            select name="hardware" aria-label={ "What a use of key #" (k.id) " proves" } {
                                (mark_options(k.hardware))
                            }
                            button type="submit" aria-label={ "Mark key #" (k.id) } { "Mark" }
                        }
                    } @else {
                        "-"
                    }
                },
                when(format_utc(k.created_at)),
                html! {
                    form.inline method="post" action="/2fa/keys/remove" {
                        (csrf)
                        input type="hidden" name="id" value=(k.id);
                        button.danger type="submit" aria-label={ "Remove key #" (k.id) } { "Remove" }
                    }
                },
            ]
        })
        .collect();
    let columns = [
        "Id",
        "Type",
        "Fingerprint",
        "Comment",
        "Security key",
        "Added",
        "",
    ];
    let body = html! {
        @if let Some(message) = message { (message) }
        (table("keys", &columns, &rows, "You have no SSH keys yet."))
        h2 { "Add a key" }
        form.card method="post" action="/2fa/keys" {
            (csrf)
            label for="key" { "Public key (the line in ~/.ssh/id_ed25519.pub)" }
            // After a refused key, the text stays to be corrected.
            textarea id="key" name="key" required placeholder="ssh-ed25519 AAAA... you@laptop" {
                @if cx.request.path == "/2fa/keys" { (cx.request.field("key")) }
            }
            @if may_mark {
            label for="hardware" { "If it is a security key (sk-ssh-ed25519@openssh.com, sk-ecdsa-…), what each use of it proves" }
            select id="hardware" name="hardware" {
                (mark_options(None))
            }
            p.hint {
                "A security key made with " code { "ssh-keygen -t ed25519-sk -O verify-required" }
                " asks for its PIN at every use: mark it \"PIN every time\". Made without "
                code { "-O verify-required" } ", it asks for a touch: mark it \"Touch every time\". "
                "Where this host counts such keys as the second factor, a push with one needs no other 2FA; "
                "they work through the host's OpenSSH, which checks the touch and the PIN."
            }
            } @else {
                p.hint { "Security keys are marked as such by an admin of this host." }
            }
            button type="submit" { "Add key" }
        }
    };
    page(cx, "SSH keys", body)
}

pub fn add(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    if cx.git_session_until().is_none() {
        return Response::redirect(&pages::verify_then(pages::KEYS));
    }
    guard!(cx.require_recent_code("/2fa/keys"));
    let key = match PublicKey::parse(cx.request.field("key")) {
        Ok(key) => key,
        Err(e) => {
            let text = format!("That is not a public key we accept: {e}.");
            return list(cx, Some(notice("error", &text))).with_status(400);
        }
    };
    let hardware = match hardware_field(cx.request.field("hardware")) {
        Ok(hardware) => hardware,
        Err(()) => {
            return list(
                cx,
                Some(notice("error", "Choose what the key proves from the list.")),
            )
            .with_status(400);
        }
    };
    if hardware.is_some() && !cx.config.policy.users_may_mark_keys {
        return list(cx, Some(notice("error", MARKED_BY_ADMINS))).with_status(403);
    }
    if hardware.is_some() && !key.is_security_key() {
        let text = format!(
            "Only a security key (sk-…) can be marked as proving a touch or a PIN; this is a {} key.",
            key.algorithm
        );
        return list(cx, Some(notice("error", &text))).with_status(400);
    }
    let fingerprint = key.fingerprint();
    match cx.store.key_by_fingerprint(&fingerprint) {
        Ok(None) => {}
        Ok(Some(_)) => {
            return list(cx, Some(notice("error", "That key is already registered.")))
                .with_status(409);
        }
        Err(e) => return cx.unavailable(&e),
    }
    let mut record = cx.change_record("key-add", &fingerprint, None);
    record.factor = hardware.map(|h| h.factor().into());
    let now = cx.now;
    let result = cx.store.audited(record, |store| {
        store.add_key(
            user.id,
            &key.algorithm,
            &key.blob_base64(),
            &fingerprint,
            &key.comment,
            hardware,
            now,
        )
    });
    match result {
        Ok(id) => {
            cx.request.form.remove("key");
            let text = format!("Key #{id} added: {fingerprint}");
            list(cx, Some(notice("ok", &text)))
        }
        Err(e) => cx.unavailable(&e),
    }
}

pub fn remove(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    guard!(cx.require_recent_code("/2fa/keys"));
    let id: i64 = cx.request.field("id").parse().unwrap_or(-1);
    let key = match cx.store.key(id) {
        Ok(Some(k)) if k.user == user.name => k,
        Ok(_) => return list(cx, Some(notice("error", "No such key of yours."))).with_status(404),
        Err(e) => return cx.unavailable(&e),
    };
    let mut record = cx.change_record("key-remove", &key.fingerprint, None);
    record.key_id = Some(id);
    let now = cx.now;
    if let Err(e) = cx.store.audited(record, |store| store.remove_key(id, now)) {
        return cx.unavailable(&e);
    }
    let text = format!("Key #{id} removed.");
    list(cx, Some(notice("ok", &text)))
}

pub fn mark(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    if cx.git_session_until().is_none() {
        return Response::redirect(&pages::verify_then(pages::KEYS));
    }
    if !cx.config.policy.users_may_mark_keys {
        return list(cx, Some(notice("error", MARKED_BY_ADMINS))).with_status(403);
    }
    guard!(cx.require_recent_code("/2fa/keys/hardware"));
    let id: i64 = cx.request.field("id").parse().unwrap_or(-1);
    let key = match cx.store.key(id) {
        Ok(Some(k)) if k.user == user.name => k,
        Ok(_) => return list(cx, Some(notice("error", "No such key of yours."))).with_status(404),
        Err(e) => return cx.unavailable(&e),
    };
    let Ok(hardware) = hardware_field(cx.request.field("hardware")) else {
        return list(
            cx,
            Some(notice("error", "Choose what the key proves from the list.")),
        )
        .with_status(400);
    };
    if !is_security_key_type(&key.algorithm) {
        let text = format!(
            "Key #{id} is a {} key: only a security key (sk-…) can be marked.",
            key.algorithm
        );
        return list(cx, Some(notice("error", &text))).with_status(400);
    }
    let word = hardware.map_or("none", Hardware::as_str);
    let mut record = cx.change_record("key-mark", word, None);
    record.key_id = Some(id);
    record.factor = hardware.map(|h| h.factor().into());
    match cx
        .store
        .audited(record, |store| store.set_key_hardware(id, hardware))
    {
        Ok(true) => {}
        Ok(false) => {
            return list(cx, Some(notice("error", "No such key of yours."))).with_status(404);
        }
        Err(e) => return cx.unavailable(&e),
    }
    let text = format!("Key #{id}: {}.", mark_label(hardware));
    list(cx, Some(notice("ok", &text)))
}
