//! Security keys and passkeys: the page that lists, adds and removes them
//! (also the set-up wizard's way for a user with a key alone), and the
//! key's half of verify. The ceremony itself runs in the browser, by the
//! script `/webauthn.js`: a form with a `data-webauthn` attribute carries
//! the options, and its field `credential` the key's answer.

use crate::system::pages;
use maud::{Markup, html};

use super::context::{Context, guard};
use super::layout::{csrf_field, notice, page, table, when};
use super::response::Response;
use crate::authz::decision::Transport;
use crate::authz::security_keys as key_factor;
use crate::authz::twofactor::{Origin, Verified};
use crate::factor::webauthn::{self, Ceremony, Purpose, Refused, RelyingParty, link_hash};
use crate::store::{AddedKey, RemovedKey, TakenCeremony, User};
use crate::system::time::format_utc;

/// The script, served at `/webauthn.js` (the CSP allows no inline script).
pub const SCRIPT: &str = include_str!("webauthn.js");

/// The longest name a key may have.
const MAX_NAME: usize = 64;

const MAX_KEYS: usize = key_factor::MAX_KEYS as usize;

fn too_many() -> String {
    format!("You have {MAX_KEYS} security keys, the most one account may have: remove one first.")
}

fn origin(cx: &Context) -> Origin {
    Origin {
        transport: Transport::Web,
        key_id: None,
        remote_addr: Some(cx.request.remote_addr.clone()),
    }
}

/// Said where a key would be used, for a browser without JavaScript.
fn needs_script() -> Markup {
    html! {
        noscript {
            p.notice.info { "Using a security key needs JavaScript, which is off in this browser. Everything else on this page works without it." }
        }
    }
}

/// Keeps `ceremony` in the web session, beside those of its other tabs.
fn keep(cx: &mut Context, ceremony: &Ceremony) -> Result<(), Response> {
    let id = cx.session.as_ref().map(|s| s.id).unwrap_or_default();
    cx.store
        .add_web_ceremony(&id, &ceremony.challenge, &ceremony.to_json())
        .map_err(|e| cx.unavailable(&e))
}

/// Keeps a ceremony just started: the options for the page's form, or
/// the notice that keys are unavailable (`instead`: what the user can do).
fn kept(
    cx: &mut Context,
    started: Result<(String, Ceremony), String>,
    what: &str,
    instead: &str,
) -> Result<String, Markup> {
    let unavailable = || {
        notice(
            "error",
            &format!("Security keys are unavailable just now; {instead}."),
        )
    };
    let (options, ceremony) = started.map_err(|e| {
        log::error!("security key {what}: {e}");
        unavailable()
    })?;
    keep(cx, &ceremony).map_err(|_| unavailable())?;
    Ok(options)
}

/// Takes the ceremony the browser's `answer` was made for, once: the
/// page's own, whatever other tabs of the session started since. An
/// answer to a ceremony taken before (the same answer again) does not
/// hold; one whose ceremony is gone (expired, or pushed out by newer
/// ones) was never checked.
fn take(
    cx: &mut Context,
    purpose: Purpose,
    user: &User,
    answer: &str,
) -> Result<Result<Ceremony, Refused>, Response> {
    let challenge = match webauthn::answer_challenge(answer) {
        Ok(challenge) => challenge,
        Err(refused) => return Ok(Err(refused)),
    };
    let id = cx.session.as_ref().map(|s| s.id).unwrap_or_default();
    let kept = cx
        .store
        .take_web_ceremony(&id, &challenge)
        .map_err(|e| cx.unavailable(&e))?;
    Ok(match kept {
        TakenCeremony::Found(text) => Ceremony::parse(&text, purpose, user.id, cx.now),
        TakenCeremony::Used => Err(Refused::Invalid {
            detail: "an answer to a challenge answered before (a replay)".into(),
        }),
        TakenCeremony::Unknown => Err(Refused::NoCeremony),
    })
}

/// Checks a key's name: what to store, or what is wrong with it.
fn key_name(typed: &str) -> Result<String, &'static str> {
    let name = typed.trim();
    if name.is_empty() {
        return Err("Give the key a name, such as \"YubiKey on my keyring\".");
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err("A key's name is at most 64 characters, on one line.");
    }
    Ok(name.to_string())
}

pub fn list(cx: &mut Context, message: Option<Markup>) -> Response {
    let user = guard!(cx.logged_in());
    if user.is_enrolled() {
        guard!(cx.full_user());
    }
    let csrf = guard!(cx.csrf());
    let keys = match cx.store.security_keys(user.id) {
        Ok(keys) => keys,
        Err(e) => return cx.unavailable(&e),
    };
    let rows: Vec<Vec<Markup>> = keys
        .iter()
        .map(|k| {
            vec![
                html! { (k.name) },
                when(format_utc(k.created_at)),
                match k.last_used_at {
                    Some(at) => when(format_utc(at)),
                    None => html! { "never" },
                },
                html! {
                    form.inline method="post" action="/2fa/security-keys/remove" {
                        (csrf_field(&csrf))
                        input type="hidden" name="id" value=(k.id);
                        button.danger type="submit" name="remove-security-key" aria-label={ "Remove " (k.name) } { "Remove" }
                    }
                },
            ]
        })
        .collect();
    let columns = ["Name", "Added", "Last used", ""];
    let add = add_form(cx, &user, &keys, &csrf);
    let title = if user.is_enrolled() {
        "Security keys"
    } else {
        "Set up 2FA with a security key"
    };
    let body = html! {
        @if let Some(message) = message { (message) }
        @if user.is_enrolled() {
            (table("security-keys", &columns, &rows, "You have no security keys yet."))
            h2 { "Add a security key or passkey" }
        } @else {
            p {
                "Git on this host asks for a second factor. A security key (such as a YubiKey) \
                 or a passkey (on your phone or computer) can be yours: you touch it, or unlock it, \
                 when you verify. Your recovery codes are shown once it is added."
            }
            p { "Rather use an authenticator app? " a href="/2fa/setup" { "Set up an app instead" } "." }
        }
        (add)
    };
    page(cx, title, body)
}

/// The form that adds a key, with the ceremony's options; or why a key
/// cannot be added now.
fn add_form(
    cx: &mut Context,
    user: &User,
    keys: &[crate::store::SecurityKey],
    csrf: &str,
) -> Markup {
    let rp = match RelyingParty::new(&cx.config.public_url) {
        Ok(rp) => rp,
        Err(why) => return unavailable_here(&why),
    };
    if keys.len() >= MAX_KEYS {
        return notice("info", &too_many());
    }
    if user.is_enrolled() && !cx.recent_code() {
        return html! {
            p {
                "Adding a key needs a code or a key used in the last five minutes. "
                a href=(pages::verify_then("/2fa/security-keys")) { "Verify again" } " first."
            }
        };
    }
    let started = rp.start_registration(
        key_factor::key_user(user),
        &key_factor::stored_keys(keys),
        cx.now,
    );
    let options = match kept(cx, started, "registration", "try again later") {
        Ok(options) => options,
        Err(unavailable) => return unavailable,
    };
    // After a refused try, the name typed stays (a key added clears it).
    let typed_name = (cx.request.path == "/2fa/security-keys" && cx.request.method == "POST")
        .then(|| cx.request.field("name").to_string())
        .filter(|name| !name.is_empty());
    html! {
        form.card #add-key method="post" action="/2fa/security-keys" data-webauthn=(options) {
            (csrf_field(csrf))
            input type="hidden" name="credential" value="";
            label for="key-name" { "A name for the key" }
            input type="text" id="key-name" name="name" maxlength=(MAX_NAME) required placeholder="YubiKey on my keyring" value=[typed_name];
            button type="submit" name="add-security-key" value="1" { "Add security key" }
            p.hint { "Your browser then asks you to touch the key, or to unlock the passkey." }
        }
        (needs_script())
    }
}

fn unavailable_here(why: &str) -> Markup {
    notice(
        "info",
        &format!("Security keys are unavailable on this host: {why}."),
    )
}

pub fn add(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.logged_in());
    if user.is_enrolled() {
        guard!(cx.full_user());
        guard!(cx.require_recent_code("/2fa/security-keys"));
    }
    let rp = match RelyingParty::new(&cx.config.public_url) {
        Ok(rp) => rp,
        Err(why) => return list(cx, Some(unavailable_here(&why))).with_status(400),
    };
    let name = match key_name(cx.request.field("name")) {
        Ok(name) => name,
        Err(why) => return list(cx, Some(notice("error", why))).with_status(400),
    };
    match cx.store.security_keys(user.id) {
        Ok(keys) if keys.len() >= MAX_KEYS => {
            return list(cx, Some(notice("error", &too_many()))).with_status(400);
        }
        // Two keys of one name cannot be told apart when one is lost.
        Ok(keys) if keys.iter().any(|k| k.name == name) => {
            let text =
                format!("You have a key named \"{name}\" already: give this one another name.");
            return list(cx, Some(notice("error", &text))).with_status(400);
        }
        Ok(_) => {}
        Err(e) => return cx.unavailable(&e),
    }
    let answer = cx.request.field("credential").to_string();
    let made = guard!(take(cx, Purpose::Register, &user, &answer))
        .and_then(|ceremony| rp.finish_registration(&ceremony, &answer));
    let key = match made {
        Ok(key) => key,
        Err(refused) => {
            let text = match &refused {
                Refused::NoAnswer(why) => {
                    format!("The key was not added: {}.", no_answer(cx.config, why))
                }
                Refused::NoCeremony => {
                    "That request expired or was used already. Try again.".to_string()
                }
                Refused::Invalid { detail } | Refused::Cloned { detail } => {
                    log::warn!("security key registration of {}: {detail}", user.name);
                    "The browser's answer was not accepted; the key was not added. Try again."
                        .to_string()
                }
            };
            return list(cx, Some(notice("error", &text))).with_status(400);
        }
    };
    let origin = origin(cx);
    let registered =
        key_factor::register_key(&mut cx.store, cx.config, &user, &name, key, &origin, cx.now);
    let registered = match registered {
        Ok(Ok(registered)) => registered,
        Ok(Err(AddedKey::TooMany)) => {
            return list(cx, Some(notice("error", &too_many()))).with_status(400);
        }
        Ok(Err(_)) => {
            return list(cx, Some(notice("error", "That key is registered already.")))
                .with_status(400);
        }
        Err(e) => return cx.unavailable(&e),
    };
    cx.user = cx.store.user_by_id(user.id).ok().flatten();
    cx.request.form.remove("name");
    match registered.first {
        None => list(
            cx,
            Some(notice("ok", &format!("Security key \"{name}\" added."))),
        ),
        Some((codes, _session)) => {
            // Using the key was the second factor: the web session steps
            // up as after a first code.
            guard!(cx.step_up());
            let until = cx.now + cx.config.policy.session_ttl;
            let body = html! {
                (notice("ok", "Two-factor authentication is on."))
                p { "A 2FA session is open until " (format_utc(until)) ": git operations work now." }
                @if !codes.is_empty() {
                    section {
                        h2 { "Your recovery codes" }
                        p {
                            "If you lose the key, each of these codes lets you in once. \
                             Save them somewhere safe now: they are not shown again."
                        }
                        ul.codes id="recovery-codes" { @for code in &codes { li { (code) } } }
                        // Nothing of them is kept to serve later: the file
                        // is the page's own text.
                        p {
                            a #codes-download download="git2fa-recovery-codes.txt"
                                href={ "data:text/plain;charset=utf-8," (crate::system::url::url_component(&codes_text(&user.name, cx.config, &codes))) } {
                                "Download them as a text file"
                            }
                        }
                    }
                }
                p { a.button href="/2fa" { "Manage 2FA" } }
            };
            page(cx, "2FA is on", body)
        }
    }
}

/// The text of a recovery-codes file.
pub fn codes_text(user: &str, config: &crate::system::config::Config, codes: &[String]) -> String {
    format!(
        "git2fa recovery codes for {user} at {}\nEach code works once.\n\n{}\n",
        config.public_url,
        codes.join("\n")
    )
}

pub fn remove(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    guard!(cx.require_recent_code("/2fa/security-keys"));
    let Ok(id) = cx.request.field("id").parse::<i64>() else {
        return list(cx, Some(notice("error", "No such key."))).with_status(400);
    };
    let name = cx
        .store
        .security_keys(user.id)
        .ok()
        .and_then(|keys| keys.into_iter().find(|k| k.id == id))
        .map(|k| k.name);
    let record = cx.change_record("security-key-remove", &format!("webauthn key #{id}"), None);
    match cx
        .store
        .audited(record, |store| store.remove_security_key(user.id, id))
    {
        Ok(RemovedKey::Removed) => {
            cx.user = cx.store.user_by_id(user.id).ok().flatten();
            let text = format!(
                "Security key \"{}\" removed; it no longer verifies you.",
                name.unwrap_or_default()
            );
            list(cx, Some(notice("ok", &text)))
        }
        Ok(RemovedKey::NoSuchKey) => {
            list(cx, Some(notice("error", "No such key."))).with_status(400)
        }
        Ok(RemovedKey::LastFactor) => list(
            cx,
            Some(notice(
                "error",
                "This key is your only second factor. Add another key or an authenticator app first, \
                 or turn 2FA off with \"Remove 2FA\" on Manage 2FA.",
            )),
        )
        .with_status(400),
        Err(e) => cx.unavailable(&e),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key's half of the verify page, for a user with keys: a button
/// that verifies with one in one touch. `link` is the one-time link's
/// token this page was opened with, if any.
/// `page`: the link, CSRF token, next page and repository the verify page
/// carries; `held`: the hidden fields of a held change.
pub fn verify_part(
    cx: &mut Context,
    user: &User,
    page: (Option<&str>, &str, &str, &str),
    held: &Markup,
) -> Markup {
    let (link, csrf, next, repo) = page;
    if user.security_keys == 0 {
        return html! {};
    }
    let rp = match RelyingParty::new(&cx.config.public_url) {
        Ok(rp) => rp,
        Err(why) => return unavailable_here(&why),
    };
    let keys = match cx.store.security_keys(user.id) {
        Ok(keys) => keys,
        Err(e) => {
            log::error!("security keys of {}: {e}", user.name);
            return notice(
                "error",
                "Security keys are unavailable just now; use a code.",
            );
        }
    };
    let hash = link.map(link_hash);
    let started = rp.start_authentication(
        key_factor::key_user(user),
        &key_factor::stored_keys(&keys),
        hash.map(|h| hex(&h)),
        cx.now,
    );
    let options = match kept(cx, started, "verify", "use a code") {
        Ok(options) => options,
        Err(unavailable) => return unavailable,
    };
    html! {
        form.card #security-key method="post" action=(pages::VERIFY) data-webauthn=(options) {
            (csrf_field(csrf))
            input type="hidden" name="method" value="security-key";
            input type="hidden" name="credential" value="";
            input type="hidden" name="next" value=(next);
            input type="hidden" name="repo" value=(repo);
            input type="hidden" name="link" value=(link.unwrap_or(""));
            (held)
            p { "Verify with your security key or passkey:" }
            button type="submit" name="use-security-key" value="1" autofocus { "Use security key" }
        }
        (needs_script())
    }
}

/// Checks the key's answer posted to verify: a 2FA session opens when it
/// holds (bound to the waiting SSH command when the page came from a
/// one-time link). `Err` is the page to show instead.
pub fn verify_answer(cx: &mut Context, user: &User) -> Result<KeyVerify, Response> {
    let rp = RelyingParty::new(&cx.config.public_url).map_err(|why| {
        Response::error(
            400,
            &format!("Security keys are unavailable on this host: {why}."),
        )
    })?;
    let answer = cx.request.field("credential").to_string();
    let ceremony = take(cx, Purpose::Verify, user, &answer)?;
    // The link, if the ceremony came from one: still unused, and this
    // user's.
    let mut origin = origin(cx);
    let mut link = None;
    if let Ok(Some(hash)) = ceremony.as_ref().map(|c| c.link.clone()) {
        let bytes: Option<[u8; 32]> = (0..32)
            .map(|i| {
                hash.get(2 * i..2 * i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .and_then(|v| v.try_into().ok());
        let found = match bytes {
            Some(b) => cx
                .store
                .verify_link(&b, cx.now)
                .map_err(|e| cx.unavailable(&e))?
                .map(|l| (b, l)),
            None => None,
        };
        match found {
            Some((b, l)) if l.user_id == user.id => {
                origin.key_id = l.key_id;
                origin.remote_addr = l.remote_addr.clone();
                link = Some(b);
            }
            _ => {}
        }
    }
    let keys = cx
        .store
        .security_keys(user.id)
        .map_err(|e| cx.unavailable(&e))?;
    let checked = ceremony
        .and_then(|c| rp.finish_authentication(&c, &answer, &key_factor::stored_keys(&keys)));
    match checked {
        // No answer is no attempt: a cancelled prompt, a browser without
        // JavaScript.
        Err(Refused::NoAnswer(why)) => {
            return Ok(KeyVerify::NoAnswer(no_answer(cx.config, &why)));
        }
        // Nor is an answer to a page whose ceremony is gone (older than
        // five minutes, replaced by a page opened since, or answered
        // already): nothing was checked. Audited, not counted.
        Err(Refused::NoCeremony) => {
            cx.audit("verify", "fail", "stale-webauthn", None);
            return Ok(KeyVerify::NoAnswer(
                "that page had expired, or a newer page replaced it; touch your key again".into(),
            ));
        }
        _ => {}
    }
    let verified = key_factor::verify_key(&mut cx.store, cx.config, user, checked, &origin, cx.now)
        .map_err(|e| cx.unavailable(&e))?;
    let mut through_link = false;
    if let (Verified::Opened { session_id, .. }, Some(hash)) = (&verified, link) {
        // The session is bound to the waiting command's key and address;
        // this row, written with the link's use, keeps the browser's.
        let key = origin
            .key_id
            .map_or(String::new(), |k| format!(" of SSH key #{k}"));
        let record = cx.change_record(
            "verify-link",
            &format!("completed the waiting 2fa verify{key}"),
            None,
        );
        let (session_id, now) = (*session_id, cx.now);
        through_link = cx
            .store
            .audited(record, |store| {
                store.use_verify_link(&hash, session_id, now)
            })
            .map_err(|e| cx.unavailable(&e))?;
    }
    Ok(KeyVerify::Checked {
        verified,
        through_link,
    })
}

/// What a key's answer to verify came to.
pub enum KeyVerify {
    Checked {
        verified: Verified,
        through_link: bool,
    },
    /// The browser sent no answer: nothing was tried.
    NoAnswer(String),
}

/// Why no key answered, with where keys work when the browser refused
/// them at this address.
fn no_answer(config: &crate::system::config::Config, why: &str) -> String {
    if why == crate::factor::webauthn::WRONG_ADDRESS {
        format!("{why}: open {}/2fa", config.public_url)
    } else {
        why.to_string()
    }
}

/// What the verify page says about the link it was opened with.
pub fn link_notice(cx: &Context, user: &User, token: &str) -> Markup {
    match cx.store.verify_link(&link_hash(token), cx.now) {
        Ok(Some(link)) if link.user_id == user.id => {
            // Who asked, so that a link someone else sent is recognised:
            // touching the key would open the session for their command.
            let key = link
                .key_id
                .and_then(|id| cx.store.key(id).ok().flatten())
                .map(|k| (k.id, k.fingerprint));
            let asked = link.expires_at - crate::factor::webauthn::LINK_TTL;
            html! {
                p { "Touch your key to finish the " code { "2fa verify" } " waiting in your terminal. \
                     The link works once, until " (format_utc(link.expires_at)) "." }
                p.hint #link-origin {
                    "It was asked for at " (format_utc(asked))
                    @if let Some(addr) = &link.remote_addr { " from " (addr) }
                    // The fingerprint as code, which may wrap anywhere: one
                    // word of about 50 characters is wider than a phone.
                    @if let Some((id, fingerprint)) = &key {
                        ", with SSH key #" (id) " (" code { (fingerprint) } ")"
                    }
                    ". If that was not you, do not touch your key: the 2FA session would be for whoever ran it."
                }
            }
        }
        Ok(Some(_)) => notice(
            "error",
            "This verify link is for another account. Log out, and log in as the account that ran 2fa verify.",
        ),
        Ok(None) => notice(
            "error",
            "This verify link is used or expired. Run 2fa verify again for a new one.",
        ),
        Err(e) => {
            log::error!("verify link: {e}");
            notice("error", "This verify link cannot be checked just now.")
        }
    }
}
