//! The gate every transport goes through: gather the facts (store, repository
//! file), call the pure `decision::decide`, write the audit row. Any error on
//! the way is a refusal ("2FA check unavailable"), never an allow.

use crate::authz::decision::{
    self, Credential, Decision, Facts, Operation, Refusal, RequiredBy, SessionFacts, Transport,
    UserFacts,
};
use crate::authz::messages::{self, MessageContext};
use crate::factor::token;
use crate::repo::path::RepoPath;
use crate::repo::policy::{PushedRefs, RepoPolicy};
use crate::store::{AuditRecord, Store};
use crate::system::config::Config;

/// The repository a request names.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Found(&'a RepoPath),
    /// No repository by this name (as typed, normalised): decided as one
    /// that nobody may read, so that its answer is that of a private
    /// repository, whatever the credential.
    Missing(&'a str),
}

impl Target<'_> {
    pub fn name(&self) -> &str {
        match self {
            Target::Found(repo) => &repo.name,
            Target::Missing(name) => name,
        }
    }
}

/// The repository a git client named, as the SSH and HTTP transports
/// resolve it: found below the root, or missing (then decided as one
/// nobody may read, so that its answer is a private repository's).
#[derive(Debug)]
pub enum Named {
    Found(RepoPath),
    Missing(String),
}

impl Named {
    /// Resolves `typed`; only a malformed path is an error (the transport
    /// refuses it as such: it tells nothing about what exists).
    pub fn resolve(root: &std::path::Path, typed: &str) -> Result<Named, &'static str> {
        use crate::repo;
        use crate::repo::path::RepoPathError;
        match repo::path::resolve(root, typed) {
            Ok(repo) => Ok(Named::Found(repo)),
            Err(RepoPathError::Malformed(why)) => Err(why),
            Err(RepoPathError::NotFound) => Ok(Named::Missing(
                repo::path::name_of(root, typed).unwrap_or_else(|_| typed.to_string()),
            )),
        }
    }

    pub fn target(&self) -> Target<'_> {
        match self {
            Named::Found(repo) => Target::Found(repo),
            Named::Missing(name) => Target::Missing(name),
        }
    }

    /// What a service does to it. A push's refs are not known yet: the
    /// repository's hooks will check protected refs one by one; without
    /// them, any push may touch one.
    pub fn operation(&self, write: bool) -> Operation {
        match (self, write) {
            (_, false) => Operation::Read,
            (Named::Found(repo), true) if crate::repo::hooks::hooks_installed(&repo.dir) => {
                Operation::Write(PushedRefs::CheckedByHook)
            }
            (_, true) => Operation::Write(PushedRefs::Unknown),
        }
    }

    /// What the transport does with `decision` about what it named: start
    /// git in the repository, or say the refusal (its audit row is
    /// written). The decision never allows a missing repository; were it
    /// to, the operation is refused as "2FA check unavailable" (fail closed).
    pub fn next<'a>(&'a self, decision: &'a Decision) -> Next<'a> {
        match (decision, self) {
            (Decision::Allow(_), Named::Found(repo)) => Next::Git(repo),
            (Decision::Refuse(refusal), _) => Next::Refuse(refusal),
            (Decision::Allow(_), Named::Missing(name)) => {
                log::error!("2FA check unavailable: the missing repository {name} was allowed");
                Next::Refuse(&ALLOWED_MISSING)
            }
        }
    }
}

/// What a transport does after the gate.
#[derive(Debug)]
pub enum Next<'a> {
    /// Start git in this repository.
    Git(&'a RepoPath),
    /// Say this refusal.
    Refuse(&'a Refusal),
}

static ALLOWED_MISSING: Refusal = Refusal::CheckUnavailable { location: None };

/// One request for a git operation.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The user the credential names (`None` for an unknown key).
    pub user: Option<&'a str>,
    pub credential: Credential,
    pub repo: Target<'a>,
    pub operation: Operation,
    pub transport: Transport,
    pub key_id: Option<i64>,
    pub remote_addr: Option<&'a str>,
}

impl Request<'_> {
    /// What the messages about this request name.
    pub fn message_context<'c>(&'c self, config: &'c Config) -> MessageContext<'c> {
        MessageContext {
            config,
            repo: self.repo.name(),
            user: self.user,
            operation: &self.operation,
            transport: self.transport,
        }
    }
}

/// A decision with what explains it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub decision: Decision,
    /// Why 2FA applied, when the facts got that far.
    pub required_by: Option<RequiredBy>,
    /// The internal cause of a `CheckUnavailable`, for the log and the
    /// audit row only.
    pub detail: Option<String>,
}

impl Outcome {
    fn check_unavailable(location: Option<String>, detail: String) -> Outcome {
        log::error!("2FA check unavailable: {detail}");
        Outcome {
            decision: Decision::Refuse(Refusal::CheckUnavailable { location }),
            required_by: None,
            detail: Some(detail),
        }
    }
}

/// Decides without writing anything (what `git2fa explain` shows).
pub fn evaluate(config: &Config, store: &Store, request: &Request, now: i64) -> Outcome {
    let repo_policy = match request.repo {
        Target::Missing(_) => RepoPolicy::nobody(),
        Target::Found(repo) => match RepoPolicy::load(&repo.dir) {
            Ok(policy) => policy,
            Err(e) => {
                let location = match e.line {
                    Some(line) => format!("the git2fa.toml of {}, line {line}", repo.name),
                    None => format!("the git2fa.toml of {}", repo.name),
                };
                return Outcome::check_unavailable(Some(location), e.to_string());
            }
        },
    };
    let (user, sessions) = match request
        .user
        .map(|name| user_facts(store, name, now))
        .transpose()
    {
        Ok(found) => found.flatten().unzip(),
        Err(e) => return Outcome::check_unavailable(None, e.to_string()),
    };
    let sessions: Vec<SessionFacts> = sessions.unwrap_or_default();
    let facts = Facts {
        config,
        now,
        repo: request.repo.name(),
        repo_policy: &repo_policy,
        operation: &request.operation,
        credential: &request.credential,
        user: user.as_ref(),
        sessions: &sessions,
        key_id: request.key_id,
        remote_addr: request.remote_addr,
    };
    Outcome {
        decision: decision::decide(&facts),
        required_by: decision::required_by(&facts),
        // The admin's audit log tells the two apart; the user's answer
        // does not.
        detail: matches!(request.repo, Target::Missing(_))
            .then(|| "no such repository".to_string()),
    }
}

/// Decides and appends the audit row. If the row cannot be written, the
/// operation is refused: an unaudited allow is not an allow.
pub fn authorize(config: &Config, store: &mut Store, request: &Request, now: i64) -> Outcome {
    let outcome = evaluate(config, store, request, now);
    let record = audit_record(request, &outcome, now);
    match store.append_audit(&record) {
        Ok(()) => outcome,
        Err(e) => Outcome::check_unavailable(None, format!("cannot write the audit row: {e}")),
    }
}

/// What `authorize_or_wait` came to.
#[derive(Debug)]
pub enum Authorized {
    Decided(Outcome),
    /// Refused for now, with its audit row, and the user told so: the
    /// caller waits up to this long for a 2FA session, asking
    /// `allowed_now` now and then (`WAIT_POLL`), then decides once more
    /// with `authorize`.
    Wait(std::time::Duration),
}

/// How often a waiting operation looks for the session.
pub const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Decides with its audit row, as `authorize`; when the refusal is one a
/// verify fixes and `[policy] wait_for_verify` is set, first tells the user
/// (`say`, the lines of `messages::waiting`) and asks the caller to wait.
/// The waiting itself is the caller's, so that a server can wait without
/// holding a thread.
pub fn authorize_or_wait(
    config: &Config,
    store: &mut Store,
    request: &Request,
    say: &mut dyn FnMut(&[String]),
) -> Authorized {
    let outcome = authorize(config, store, request, crate::system::time::now());
    let wait = config.policy.wait_for_verify;
    match &outcome.decision {
        Decision::Refuse(refusal) if wait > 0 && refusal.fixed_by_verifying() => {
            say(&messages::waiting(
                refusal,
                &request.message_context(config),
            ));
            Authorized::Wait(std::time::Duration::from_secs(wait as u64))
        }
        _ => Authorized::Decided(outcome),
    }
}

/// Whether `request` would be allowed now; writes nothing (a waiting
/// operation's look for its session).
pub fn allowed_now(config: &Config, store: &Store, request: &Request) -> bool {
    evaluate(config, store, request, crate::system::time::now())
        .decision
        .is_allowed()
}

/// `authorize_or_wait` for a caller that may sleep on its thread (a shim
/// or hook process; serve's hook socket, a few questions at most): waits
/// here, polling without writing, until the decision allows or the wait
/// ends; then decides once more, with its audit row.
pub fn authorize_waiting(
    config: &Config,
    store: &mut Store,
    request: &Request,
    say: &mut dyn FnMut(&[String]),
) -> Outcome {
    let wait = match authorize_or_wait(config, store, request, say) {
        Authorized::Decided(outcome) => return outcome,
        Authorized::Wait(wait) => wait,
    };
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(WAIT_POLL);
        if allowed_now(config, store, request) {
            break;
        }
    }
    authorize(config, store, request, crate::system::time::now())
}

fn user_facts(
    store: &Store,
    name: &str,
    now: i64,
) -> Result<Option<(UserFacts, Vec<SessionFacts>)>, crate::store::StoreError> {
    let Some(user) = store.user(name)? else {
        return Ok(None);
    };
    let sessions = store.open_sessions(user.id, now)?;
    let facts = UserFacts {
        enrolled: user.is_enrolled(),
        name: user.name,
        enabled: user.enabled,
        always_2fa: user.always_2fa,
        locked_until: user.locked_until,
    };
    Ok(Some((facts, sessions)))
}

/// Turns a token string from a password field into a credential: checksum
/// first (no store access for a mistyped token), then one indexed lookup.
/// A token of another user than `user` is unknown to `user`.
pub fn token_credential(
    store: &Store,
    user: &str,
    presented: &str,
) -> Result<Credential, crate::store::StoreError> {
    if !token::is_well_formed(presented) {
        return Ok(Credential::MalformedToken);
    }
    Ok(match store.token_by_hash(&token::hash(presented))? {
        Some(found) if found.user == user => {
            Credential::Token(crate::authz::decision::TokenFacts::of(&found))
        }
        _ => Credential::UnknownToken,
    })
}

fn audit_record(request: &Request, outcome: &Outcome, now: i64) -> AuditRecord {
    let refs = match &request.operation {
        Operation::Write(PushedRefs::Known(refs)) => Some(refs.join(" ")),
        _ => None,
    };
    let token_id = match &request.credential {
        Credential::Token(token) => Some(token.id),
        _ => None,
    };
    AuditRecord {
        at: now,
        user: request.user.map(str::to_string),
        transport: request.transport.as_str().into(),
        repo: Some(request.repo.name().to_string()),
        action: request.operation.as_str().into(),
        refs,
        outcome: if outcome.decision.is_allowed() {
            "allow"
        } else {
            "refuse"
        }
        .into(),
        reason: outcome.decision.code().into(),
        credential: Some(request.credential.kind().into()),
        key_id: request.key_id,
        token_id,
        remote_addr: request.remote_addr.map(str::to_string),
        detail: outcome.detail.clone(),
        factor: match request.credential {
            Credential::SshKey {
                hardware: Some(hardware),
                ..
            } => Some(hardware.factor().into()),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::decision::Allowed;

    #[test]
    fn an_allow_for_a_missing_repository_is_refused() {
        // Fail closed: were the decision ever to allow a repository that
        // does not exist, no git would start on a path nobody checked.
        let missing = Named::Missing("ghost".into());
        let allowed = Decision::Allow(Allowed::NotRequired);
        assert!(matches!(
            missing.next(&allowed),
            Next::Refuse(Refusal::CheckUnavailable { location: None })
        ));
        let refused = Decision::Refuse(Refusal::NoSession);
        assert!(matches!(
            missing.next(&refused),
            Next::Refuse(Refusal::NoSession)
        ));
        let found = Named::Found(RepoPath {
            dir: "/srv/git/app.git".into(),
            name: "app".into(),
        });
        assert!(matches!(found.next(&allowed), Next::Git(repo) if repo.name == "app"));
    }
}
