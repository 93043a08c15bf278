//! Personal access tokens: create (shown once), list, revoke. Creating one
//! needs an open 2FA session: the token carries the second factor.

use crate::system::pages;
use maud::{Markup, html};

use super::context::{Context, guard};
use super::layout::{csrf_field, notice, page, table, when};
use super::response::Response;
use crate::authz::decision::Permission;
use crate::factor::token;
use crate::system::names::check_label;
use crate::system::time::format_utc;

pub fn list(cx: &mut Context, message: Option<Markup>) -> Response {
    let user = guard!(cx.full_user());
    let csrf = csrf_field(&guard!(cx.csrf()));
    let tokens = match cx.store.tokens(Some(&user.name)) {
        Ok(tokens) => tokens,
        Err(e) => return cx.unavailable(&e),
    };
    let rows: Vec<Vec<Markup>> = tokens
        .iter()
        .map(|t| {
            let state = html! {
                @if t.revoked_at.is_some() {
                    "revoked"
                } @else if t.session_id.is_some() && t.session_until.is_none_or(|at| at <= cx.now) {
                    "ended with its 2FA session"
                } @else if t.expires_at.is_some_and(|at| at <= cx.now) {
                    "expired"
                } @else {
                    form.inline method="post" action="/2fa/tokens/revoke" {
                        (csrf)
                        input type="hidden" name="id" value=(t.id);
                        button.danger type="submit" aria-label={ "Revoke token #" (t.id) } { "Revoke" }
                    }
                }
            };
            vec![
                html! { "#" (t.id) },
                html! {
                    (t.name)
                    @if t.without_2fa { " (minted without 2FA)" }
                    @if t.oauth_client.is_some() { " (oauth: signed in through the browser, ends with the 2FA session)" }
                },
                html! { (t.permission.as_str()) },
                html! { (t.repos.join(", ")) },
                when(t.expires_at.map_or("never".into(), format_utc)),
                when(t.last_used_at.map_or("never".into(), format_utc)),
                state,
            ]
        })
        .collect();
    let columns = [
        "Id",
        "Name",
        "Permission",
        "Repositories",
        "Expires",
        "Last used",
        "",
    ];
    let max = cx.config.tokens.max_expiry_days;
    let in_session = cx.git_session_until().is_some();
    // After a refused form, what the user typed stays in it.
    let refused = cx.request.method == "POST" && cx.request.path == "/2fa/tokens";
    let typed = |name: &str| refused.then(|| cx.request.field(name).to_string());
    let days = typed("days").unwrap_or(cx.config.tokens.default_expiry_days.to_string());
    let write = typed("permission").as_deref() == Some("write");
    let body = html! {
        @if let Some(message) = message { (message) }
        p { "Over HTTPS, git takes a token where it asks for your password." }
        (table("tokens", &columns, &rows, "You have no tokens yet."))
        h2 { "New token" }
        @if !in_session {
            (notice("info", "Creating a token needs an open 2FA session: you will be asked for a code."))
        }
        form.card method="post" action="/2fa/tokens" {
            (csrf)
            label for="name" { "Name" }
            input type="text" id="name" name="name" placeholder="laptop" value=[typed("name")] required;
            label for="repos" { "Repositories (patterns, separated by spaces: team/app team/*)" }
            input type="text" id="repos" name="repos" value=[typed("repos")] required;
            label for="permission" { "Permission" }
            select id="permission" name="permission" {
                option value="read" { "read (clone, fetch)" }
                option value="write" selected[write] { "write (and push)" }
            }
            label for="days" {
                "Expires after (days"
                @if max == 0 { ", 0 for never" } @else { ", at most " (max) }
                ")"
            }
            @if max == 0 {
                input type="number" id="days" name="days" min="0" value=(days);
            } @else {
                input type="number" id="days" name="days" min="1" max=(max) value=(days);
            }
            button type="submit" { "Create token" }
        }
    };
    page(cx, "Personal access tokens", body)
}

pub fn create(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    if cx.git_session_until().is_none() {
        return Response::redirect(&pages::verify_then(pages::TOKENS));
    }
    // A token skips 2FA for its lifetime: minting one is sensitive.
    guard!(cx.require_recent_code("/2fa/tokens"));
    let name = cx.request.field("name").trim().to_string();
    let repos: Result<Vec<String>, String> = cx
        .request
        .field("repos")
        .split([' ', ','])
        .filter(|p| !p.is_empty())
        .map(token::normalise_pattern)
        .collect();
    let permission = Permission::parse(cx.request.field("permission"));
    let days: Option<u32> = cx.request.field("days").trim().parse().ok();
    let max = cx.config.tokens.max_expiry_days;
    let problem = match (&repos, permission, days) {
        _ if check_label(&name).is_err() => {
            Some("Give the token a name (1 to 100 characters).".to_string())
        }
        (Err(e), _, _) => Some(e.clone()),
        (Ok(r), _, _) if r.is_empty() => Some("Name at least one repository.".into()),
        (_, None, _) => Some("Choose read or write.".into()),
        (_, _, None) => Some("The expiry must be a number of days.".into()),
        (_, _, Some(0)) if max != 0 => Some(format!("Tokens must expire here, within {max} days.")),
        (_, _, Some(d)) if max != 0 && d > max => {
            Some(format!("Tokens expire within {max} days at most."))
        }
        _ => None,
    };
    // Two live tokens of one name cannot be told apart in a listing.
    let problem = problem.or_else(|| {
        let tokens = cx.store.tokens(Some(&user.name)).unwrap_or_default();
        tokens
            .iter()
            .any(|t| {
                t.name == name
                    && t.revoked_at.is_none()
                    && t.expires_at.is_none_or(|at| at > cx.now)
            })
            .then(|| {
                format!("You have a token named \"{name}\" already: give this one another name.")
            })
    });
    if let Some(problem) = problem {
        return list(cx, Some(notice("error", &problem))).with_status(400);
    }
    let (repos, permission, days) = (
        repos.unwrap_or_default(),
        permission.unwrap_or(Permission::Read),
        days.unwrap_or(0),
    );
    let expires_at = (days > 0).then(|| cx.now + i64::from(days) * 86_400);
    let secret = match token::generate() {
        Ok(secret) => secret,
        Err(e) => return cx.unavailable(&e),
    };
    let record = cx.change_record("token-create", &name, None);
    let now = cx.now;
    let id = match cx.store.audited(record, |store| {
        store.add_token(
            user.id,
            &name,
            &token::hash(&secret),
            &repos,
            permission,
            expires_at,
            false,
            now,
        )
    }) {
        Ok(id) => id,
        Err(e) => return cx.unavailable(&e),
    };
    let example = repos
        .iter()
        .find(|r| !r.contains('*'))
        .cloned()
        .unwrap_or_else(|| "REPOSITORY".into());
    // Patterns may name repositories still to come; one that names none
    // yet may be a typo, so the page says so.
    let names: Vec<String> = crate::repo::path::find_all(&cx.config.repos_root)
        .unwrap_or_default()
        .iter()
        .filter_map(|dir| dir.strip_prefix(&cx.config.repos_root).ok())
        .map(|below| {
            let below = below.to_string_lossy();
            below.strip_suffix(".git").unwrap_or(&below).to_string()
        })
        .collect();
    let unmatched: Vec<&String> = repos
        .iter()
        .filter(|pattern| !names.iter().any(|n| crate::repo::glob::matches(pattern, n)))
        .collect();
    let body = html! {
        (notice("ok", &format!("Token #{id} created.")))
        @if !unmatched.is_empty() {
            (notice("info", &format!(
                "No repository on this host matches {} yet: the token will work for one that comes, \
                 but check the spelling.",
                unmatched.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
        p { "Copy it now: it is shown only this once." }
        code.secret id="token" { (secret) }
        p { "When git asks for the password of " strong { (user.name) } ", paste the token. For example:" }
        code.secret { "git clone " (clone_base(&cx.config.public_url, &user.name)) "/git/" (example) ".git" }
        p {
            "Keep it out of URLs and scripts: a credential helper ("
            code { "git config --global credential.helper store" }
            ", or your system's keychain) remembers it for you."
        }
        p { a.button href="/2fa/tokens" { "Back to your tokens" } }
    };
    page(cx, "Your new token", body)
}

pub fn revoke(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    let id: i64 = cx.request.field("id").parse().unwrap_or(-1);
    match cx.store.token(id) {
        Ok(Some(t)) if t.user == user.name => {}
        Ok(_) => {
            return list(cx, Some(notice("error", "No such token of yours."))).with_status(404);
        }
        Err(e) => return cx.unavailable(&e),
    }
    let mut record = cx.change_record("token-revoke", &format!("token #{id}"), None);
    record.token_id = Some(id);
    let now = cx.now;
    if let Err(e) = cx
        .store
        .audited(record, |store| store.revoke_token(id, now))
    {
        return cx.unavailable(&e);
    }
    let text = format!("Token #{id} is revoked.");
    list(cx, Some(notice("ok", &text)))
}

/// `https://alice@git.example.com`: the user in the URL, never the token.
fn clone_base(public_url: &str, user: &str) -> String {
    match public_url.split_once("://") {
        Some((scheme, host)) => format!("{scheme}://{user}@{host}"),
        None => public_url.to_string(),
    }
}
