//! SSH keys: add (needs an open 2FA session), list, remove.

use crate::system::pages;
use maud::{Markup, html};

use super::context::{Context, guard};
use super::layout::{csrf_field, notice, page, table, when};
use super::response::Response;
use crate::factor::sshkey::PublicKey;
use crate::system::time::format_utc;

pub fn list(cx: &mut Context, message: Option<Markup>) -> Response {
    let user = guard!(cx.full_user());
    let csrf = csrf_field(&guard!(cx.csrf()));
    let keys = match cx.store.keys(Some(&user.name)) {
        Ok(keys) => keys,
        Err(e) => return cx.unavailable(&e),
    };
    let rows: Vec<Vec<Markup>> = keys
        .iter()
        .map(|k| {
            vec![
                html! { "#" (k.id) },
                html! { (k.algorithm) },
                html! { code { (k.fingerprint) } },
                html! { (k.comment) },
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
    let columns = ["Id", "Type", "Fingerprint", "Comment", "Added", ""];
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
    let fingerprint = key.fingerprint();
    match cx.store.key_by_fingerprint(&fingerprint) {
        Ok(None) => {}
        Ok(Some(_)) => {
            return list(cx, Some(notice("error", "That key is already registered.")))
                .with_status(409);
        }
        Err(e) => return cx.unavailable(&e),
    }
    let record = cx.change_record("key-add", &fingerprint, None);
    let now = cx.now;
    let result = cx.store.audited(record, |store| {
        store.add_key(
            user.id,
            &key.algorithm,
            &key.blob_base64(),
            &fingerprint,
            &key.comment,
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
