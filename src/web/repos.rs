//! The repositories whose `git2fa.toml` names the user an owner, with their
//! requirement; owners change it here when the host allows.

use maud::{Markup, html};

use super::context::{Context, guard};
use super::layout::{csrf_field, notice, page, table};
use super::response::Response;
use crate::repo;
use crate::repo::policy::{RepoPolicy, Require};

/// (name, directory, policy) of the repositories this user owns.
fn owned(
    cx: &Context,
    user: &str,
) -> Result<Vec<(String, std::path::PathBuf, RepoPolicy)>, Response> {
    let root = cx
        .config
        .repos_root
        .canonicalize()
        .map_err(|e| cx.unavailable(&e))?;
    let dirs = repo::path::find_all(&root).map_err(|e| cx.unavailable(&e))?;
    Ok(dirs
        .into_iter()
        .filter_map(|dir| {
            let policy = RepoPolicy::load(&dir).ok()?;
            let below = dir.strip_prefix(&root).ok()?.to_str()?.to_string();
            let name = below.strip_suffix(".git").unwrap_or(&below).to_string();
            policy.is_owner(user).then_some((name, dir, policy))
        })
        .collect())
}

pub fn list(cx: &mut Context, message: Option<Markup>) -> Response {
    let user = guard!(cx.full_user());
    let csrf = csrf_field(&guard!(cx.csrf()));
    let repos = guard!(owned(cx, &user.name));
    let may_flag = cx.config.policy.repo_owners_may_flag;
    let choices = [
        ("off", "not required"),
        ("push", "required to push"),
        ("all", "required for everything"),
    ];
    let rows: Vec<Vec<Markup>> = repos
        .iter()
        .map(|(name, _, policy)| {
            let mut row = vec![html! { (name) }, html! { (requirement(policy)) }];
            if may_flag {
                row.push(html! {
                    form.row method="post" action="/2fa/repos" {
                        (csrf)
                        input type="hidden" name="repo" value=(name);
                        select name="require" aria-label={ "2FA for " (name) } {
                            @for (value, label) in choices {
                                option value=(value) selected[policy.require.as_str() == value] { (label) }
                            }
                        }
                        button type="submit" { "Save" }
                    }
                });
            }
            row
        })
        .collect();
    let columns: &[&str] = if may_flag {
        &["Repository", "2FA", "Change"]
    } else {
        &["Repository", "2FA"]
    };
    let body = html! {
        @if let Some(message) = message { (message) }
        (table("repos", columns, &rows, "No repository names you as an owner."))
    };
    page(cx, "Your repositories", body)
}

/// What a repository requires, in words, with its protected refs.
fn requirement(policy: &RepoPolicy) -> String {
    match policy.require {
        Require::Off => "not required".into(),
        Require::All => "required for everything".into(),
        Require::Push if policy.protected_refs.is_empty() => "required to push".into(),
        Require::Push => format!("required to push to {}", policy.protected_refs.join(", ")),
    }
}

pub fn flag(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let user = guard!(cx.full_user());
    if !cx.config.policy.repo_owners_may_flag {
        return Response::error(
            403,
            "On this host only admins change repository requirements.",
        );
    }
    guard!(cx.require_recent_code("/2fa/repos"));
    let Some(require) = Require::parse(cx.request.field("require")) else {
        return list(cx, Some(notice("error", "Choose off, push or all."))).with_status(400);
    };
    let name = cx.request.field("repo").to_string();
    let repos = guard!(owned(cx, &user.name));
    let Some((_, dir, _)) = repos.iter().find(|(n, _, _)| *n == name) else {
        return list(cx, Some(notice("error", "You do not own that repository."))).with_status(403);
    };
    if let Err(e) = repo::policy::set_requirement(dir, require, None) {
        log::error!("web page: {e}");
        return list(
            cx,
            Some(notice(
                "error",
                "The repository's git2fa.toml could not be changed; it may have an error.",
            )),
        )
        .with_status(409);
    }
    cx.audit("repo-flag", "ok", require.as_str(), Some(&name));
    let now = match require {
        Require::Off => "is no longer required",
        Require::Push => "is now required to push",
        Require::All => "is now required for everything",
    };
    let text = format!("{name}: 2FA {now}.");
    list(cx, Some(notice("ok", &text)))
}
