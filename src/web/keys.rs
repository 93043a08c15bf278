//! SSH keys: add (needs an open 2FA session), list, remove.

use super::html::{csrf_field, esc, notice, page, table, when};
use super::page::{Context, Response, guard};
use crate::sshkey::PublicKey;
use crate::time::format_utc;

pub fn list(cx: &mut Context, message: Option<String>) -> Response {
    let user = guard!(cx.full_user());
    let csrf = csrf_field(&guard!(cx.csrf()));
    let keys = match cx.store.keys(Some(&user.name)) {
        Ok(keys) => keys,
        Err(e) => return cx.unavailable(&e),
    };
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                format!("#{}", k.id),
                esc(&k.algorithm),
                format!("<code>{}</code>", esc(&k.fingerprint)),
                esc(&k.comment),
                when(format_utc(k.created_at)),
                format!(
                    "<form method=\"post\" action=\"/2fa/keys/remove\" class=\"inline\">{csrf}\
                     <input type=\"hidden\" name=\"id\" value=\"{}\"><button type=\"submit\" class=\"danger\" aria-label=\"Remove key #{}\">Remove</button></form>",
                    k.id, k.id
                ),
            ]
        })
        .collect();
    let table = table(
        "keys",
        &["Id", "Type", "Fingerprint", "Comment", "Added", ""],
        &rows,
        "You have no SSH keys yet.",
    );
    let body = format!(
        "{message}{table}\
         <h2>Add a key</h2><form method=\"post\" action=\"/2fa/keys\" class=\"card\">{csrf}\
         <label for=\"key\">Public key (the line in ~/.ssh/id_ed25519.pub)</label>\
         <textarea id=\"key\" name=\"key\" required placeholder=\"ssh-ed25519 AAAA... you@laptop\"></textarea>\
         <button type=\"submit\">Add key</button></form>",
        message = message.unwrap_or_default()
    );
    page(cx, "SSH keys", &body)
}

pub fn add(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    if cx.git_session_until().is_none() {
        return Response::redirect("/2fa/verify?next=/2fa/keys");
    }
    guard!(cx.require_recent_code("/2fa/keys"));
    let key = match PublicKey::parse(cx.request.field("key")) {
        Ok(key) => key,
        Err(e) => {
            return list(
                cx,
                Some(notice(
                    "error",
                    &format!("That is not a public key we accept: {e}."),
                )),
            )
            .with_status(400);
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
    let result = cx.store.add_key(
        user.id,
        &key.algorithm,
        &key.blob_base64(),
        &fingerprint,
        &key.comment,
        cx.now,
    );
    match result {
        Ok(id) => {
            cx.audit("key-add", "ok", &fingerprint, None);
            list(
                cx,
                Some(notice("ok", &format!("Key #{id} added: {fingerprint}"))),
            )
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
    if let Err(e) = cx.store.remove_key(id, cx.now) {
        return cx.unavailable(&e);
    }
    cx.audit("key-remove", "ok", &key.fingerprint, None);
    list(cx, Some(notice("ok", &format!("Key #{id} removed."))))
}
