//! `git2fa-hook`, run by git as `pre-receive` and `update`. It learns who
//! pushes from the shim's `GIT2FA_*` variables, else `REMOTE_USER` when the
//! config trusts it, else the Unix account running it; decides with the
//! refs in hand; and runs the repository's own hook, chained, when allowed.
//!
//! With both hooks installed, `pre-receive` checks everything but protected
//! refs and `update` checks each ref, so only the protected refs are refused.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::authz::decision::{Credential, Decision, Operation, Refusal, Transport};
use crate::authz::gate::{self, Request, Target};
use crate::authz::messages;
use crate::repo::hooks::{self, CHAINED_SUFFIX};
use crate::repo::path::RepoPath;
use crate::repo::policy::{PushedRefs, RepoPolicy};
use crate::store::{Location, Store};
use crate::system::config::Config;
use crate::system::time::now;
use crate::transport::identity::Identity;

/// At most this much of pre-receive's input is read (a line per ref).
const MAX_INPUT: u64 = 4 << 20;
/// A push with a token that expires within this many seconds says so.
const TOKEN_WARNING: i64 = 7 * 86_400;

use super::hook_question::{self, Question};
pub use super::hook_question::{HookError, HookKind};

/// What a refusal or error prints: `remote:` lines on the git user's screen.
pub fn say(lines: &[String]) {
    let mut err = std::io::stderr().lock();
    for line in lines {
        let _ = writeln!(err, "{line}");
    }
}

fn refuse_unavailable(cause: &str) -> ExitCode {
    say(&messages::check_unavailable(None, &cause));
    ExitCode::from(1)
}

/// What the hook prints when it panics (the cause goes to the log).
pub fn refuse_after_panic() {
    eprintln!(
        "git2fa: internal error, so the push was refused.\nTell an admin of this host; the cause is in their log."
    );
}

/// `[--config PATH] pre-receive|update [ARGS]` after the program's name
/// (`argv`, whole): the config's path, the hook, its arguments. The kind
/// may also come from the name it was started as.
pub fn parse_args(
    mut args: Vec<String>,
) -> Result<(Option<PathBuf>, HookKind, Vec<String>), String> {
    let argv0 = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    let mut config_path = None;
    if args.first().map(String::as_str) == Some("--config") {
        args.remove(0);
        if args.is_empty() {
            return Err("--config needs a path".into());
        }
        config_path = Some(PathBuf::from(args.remove(0)));
    }
    let invoked_as = Path::new(&argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let kind = match (invoked_as, args.first().map(String::as_str)) {
        (_, Some("pre-receive")) => {
            args.remove(0);
            HookKind::PreReceive
        }
        (_, Some("update")) => {
            args.remove(0);
            HookKind::Update
        }
        ("pre-receive", _) => HookKind::PreReceive,
        ("update", _) => HookKind::Update,
        _ => return Err("git2fa-hook: say pre-receive or update".into()),
    };
    Ok((config_path, kind, args))
}

/// `git2fa-hook [--config PATH] pre-receive|update [ARGS]`, deciding here
/// (`transport::shim` is the small program that asks `git2fa serve`
/// first).
pub fn main() -> ExitCode {
    crate::system::syslog::init("git2fa-hook");
    crate::system::syslog::refuse_on_panic(refuse_after_panic);
    let (config_path, kind, args) = match parse_args(std::env::args().collect()) {
        Ok(parsed) => parsed,
        Err(why) => return refuse_unavailable(&why),
    };
    let config = match Config::load(&Config::locate(config_path.as_deref())) {
        Ok(config) => config,
        Err(e) => return refuse_unavailable(&e.to_string()),
    };
    match run(&config, kind, &args) {
        Ok(code) => code,
        Err(cause) => {
            audit_refused_push(&config, &cause);
            refuse_unavailable(&cause.to_string())
        }
    }
}

/// The row of a push refused before its decision for what it was given
/// (a repository outside `repos_root`, input or an identity git and the
/// shims do not send), within the bound per address; best effort, the
/// refusal stands. Failures of the host (the store, a socket, a file) are
/// in the log, not here.
pub(crate) fn audit_refused_push(config: &Config, cause: &HookError) {
    if !matches!(cause, HookError::Malformed(_)) {
        return;
    }
    // The shims' identity, believed only from the store's own account (as
    // `identify_as` does): another account names whom it likes.
    let from_shim = runs_as_store_owner(config).unwrap_or(false);
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| from_shim && !v.is_empty())
    };
    let clip = |text: String| crate::domain::clipped(&text);
    let transport = match env("GIT2FA_TRANSPORT").as_deref() {
        Some("ssh") => Transport::Ssh,
        Some("http") => Transport::Http,
        _ => Transport::Local,
    };
    let record = crate::store::AuditRecord {
        at: crate::system::time::now(),
        user: env("GIT2FA_USER").map(clip),
        transport: transport.as_str().into(),
        repo: Some(clip(
            std::path::absolute(git_dir())
                .unwrap_or_else(|_| git_dir())
                .display()
                .to_string(),
        )),
        action: "write".into(),
        outcome: "refuse".into(),
        reason: "hook-input".into(),
        remote_addr: env("GIT2FA_REMOTE_ADDR").map(clip),
        detail: Some(clip(cause.to_string())),
        ..Default::default()
    };
    let written = Store::connect(&Location::of(config)).and_then(|mut s| s.append_refusal(&record));
    if let Err(e) = written {
        log::warn!("cannot write the audit row of a refused push: {e}");
    }
}

/// The repository git runs the hook in: `GIT_DIR`, else here.
pub fn git_dir() -> PathBuf {
    std::env::var_os("GIT_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The hook's input (pre-receive's lines; nothing for update) and the refs
/// it names.
pub fn pushed(kind: HookKind, args: &[String]) -> Result<(Vec<u8>, Vec<String>), HookError> {
    let mut input = Vec::new();
    let names = match kind {
        HookKind::PreReceive => {
            std::io::stdin()
                .take(MAX_INPUT + 1)
                .read_to_end(&mut input)
                .map_err(HookError::io("reading pre-receive's input"))?;
            ref_names(&input)?
        }
        HookKind::Update => match args {
            [refname, _old, _new] => vec![refname.clone()],
            _ => return Err(malformed("update: expected REF OLD NEW")),
        },
    };
    Ok((input, names))
}

/// The refs of pre-receive's input, `OLD NEW REF` lines.
fn ref_names(input: &[u8]) -> Result<Vec<String>, HookError> {
    // Every ref is checked, or none is: a cut list would leave refs
    // unchecked here and in the chained hook.
    if input.len() as u64 > MAX_INPUT {
        return Err(malformed("pre-receive input is over 4 MiB"));
    }
    let text =
        std::str::from_utf8(input).map_err(|_| malformed("pre-receive input is not UTF-8"))?;
    text.lines()
        .map(|line| match line.split(' ').collect::<Vec<_>>()[..] {
            [_old, _new, refname] if refname.starts_with("refs/") => Ok(refname.to_string()),
            _ => Err(malformed(format!(
                "pre-receive input line is not OLD NEW REF: {line:?}"
            ))),
        })
        .collect()
}

fn run(config: &Config, kind: HookKind, args: &[String]) -> Result<ExitCode, HookError> {
    let git_dir = git_dir();
    let repo = repo_for(config, &git_dir)?;
    let (input, names) = pushed(kind, args)?;
    let allowed = match asks_daemon(config)? {
        Some(socket) => ask_daemon(&socket, kind, repo.dir.clone(), names, args)?,
        None => {
            let mut store = Store::connect(&Location::of(config))?;
            let pusher = identify(config, &store, &|name| std::env::var(name).ok())?;
            let push = Push {
                kind,
                refs: PushedRefs::Known(names),
                repo: &repo,
                pusher,
                args,
                update_follows: true,
            };
            decide(config, &mut store, push, &mut |line| {
                say(&[line.to_string()])
            })
        }
    };
    if allowed {
        run_chained(&git_dir, kind, args, &input)
    } else {
        Ok(ExitCode::from(1))
    }
}

/// Asks the daemon about a push of another account than the store's
/// owner; its lines for the user go to stderr as they come.
pub fn ask_daemon(
    socket: &Path,
    kind: HookKind,
    repo_dir: PathBuf,
    refs: Vec<String>,
    args: &[String],
) -> Result<bool, HookError> {
    let question = Question {
        kind,
        repo_dir,
        refs,
        args: args.to_vec(),
    };
    hook_question::ask(socket, &question, &mut |line| say(&[line.to_string()]))
}

/// The daemon's socket when this hook must ask it: the config names one and
/// this process runs as another account than the one owning `data_dir`
/// (which alone can read the store).
pub fn asks_daemon(config: &Config) -> Result<Option<PathBuf>, HookError> {
    let Some(socket) = &config.daemon.socket else {
        return Ok(None);
    };
    Ok((!runs_as_store_owner(config)?).then(|| socket.clone()))
}

/// Whether this process runs as the account that owns `data_dir`, the one
/// account that can read the store (the shims and `git2fa serve` run as
/// it). Other accounts' hooks ask the daemon, and their `GIT2FA_*`
/// variables count for nothing.
fn runs_as_store_owner(config: &Config) -> Result<bool, HookError> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&config.data_dir)
        .map_err(HookError::io(config.data_dir.display().to_string()))?
        .uid();
    Ok(owner == nix::unistd::getuid().as_raw())
}

/// Who pushes, and with what credential.
#[derive(Debug, Clone)]
pub(crate) struct Pusher {
    pub user: String,
    pub transport: Transport,
    pub credential: Credential,
    pub key_id: Option<i64>,
    pub remote_addr: Option<String>,
}

/// A push to decide: which hook, where, which refs, by whom.
#[derive(Debug, Clone)]
pub(crate) struct Push<'a> {
    pub kind: HookKind,
    pub repo: &'a RepoPath,
    pub refs: PushedRefs,
    pub pusher: Pusher,
    /// The hook's arguments (update's REF OLD NEW).
    pub args: &'a [String],
    /// Whether `update` will run after this pre-receive, so that protected
    /// refs may be left to it: true where git2fa's hooks run as the
    /// store's owner; the daemon cannot tell what a pusher's account runs.
    pub update_follows: bool,
}

/// Decides a push, with its audit row, waiting for a verify when the
/// policy says so; the lines for the user go to `say`. The daemon runs
/// this too, for the account the kernel named. `true` allows it.
pub(crate) fn decide(
    config: &Config,
    store: &mut Store,
    push: Push,
    say: &mut dyn FnMut(&str),
) -> bool {
    let refs = operation_refs(config, store, &push);
    let request = push.request(refs);
    let outcome = gate::authorize_waiting(config, store, &request, &mut |lines| {
        for line in lines {
            say(line);
        }
    });
    finish(config, &push, &request, &outcome.decision, say)
}

/// What a push decided without waiting on this thread came to.
#[derive(Debug)]
pub(crate) enum Step {
    /// Allowed; `whole` when every pushed ref was decided (pre-receive's
    /// one decision for the push), so `update` need not decide again.
    Allowed {
        whole: bool,
    },
    Refused,
    /// Refused for now and the user told where to verify: the caller
    /// waits up to this long, polling `allowed_now`, then decides again
    /// without waiting.
    Wait(std::time::Duration),
}

/// `decide`, for a caller that waits itself (`git2fa serve`, which holds
/// no thread while a push waits).
pub(crate) fn decide_step(
    config: &Config,
    store: &mut Store,
    push: Push,
    may_wait: bool,
    say: &mut dyn FnMut(&str),
) -> Step {
    let refs = operation_refs(config, store, &push);
    let whole = matches!(refs, PushedRefs::Known(_));
    let request = push.request(refs);
    let outcome = if may_wait {
        let authorized = gate::authorize_or_wait(config, store, &request, &mut |lines| {
            for line in lines {
                say(line);
            }
        });
        match authorized {
            gate::Authorized::Decided(outcome) => outcome,
            gate::Authorized::Wait(wait) => return Step::Wait(wait),
        }
    } else {
        gate::authorize(config, store, &request, now())
    };
    match finish(config, &push, &request, &outcome.decision, say) {
        true => Step::Allowed { whole },
        false => Step::Refused,
    }
}

/// Whether the push would be allowed now; writes nothing (a waiting
/// push's look for its session).
pub(crate) fn allowed_now(config: &Config, store: &mut Store, push: &Push) -> bool {
    let refs = operation_refs(config, store, push);
    gate::allowed_now(config, store, &push.request(refs))
}

/// The refs a hook decides on. pre-receive decides the whole push once,
/// naming every ref, and `update` need not decide again; except when some
/// pushed refs are protected (or in `require_hardware_key`) and the whole
/// push would be refused: then,
/// with `update` to follow, pre-receive decides all but the protected refs
/// and leaves each protected ref to `update`, so that only those are
/// refused.
fn operation_refs(config: &Config, store: &Store, push: &Push) -> PushedRefs {
    let leave_protected = match (&push.kind, &push.refs) {
        (HookKind::PreReceive, PushedRefs::Known(names))
            if push.update_follows && hooks::hooks_installed(&push.repo.dir) =>
        {
            // Within the budget of pattern matching the decision keeps.
            // Refs that need a hardware key are protected the same way.
            let known = PushedRefs::Known(names.clone());
            let protected = RepoPolicy::load(&push.repo.dir).is_ok_and(|policy| {
                (!policy.protected_refs.is_empty() && policy.requires_for_push(&known))
                    || policy
                        .hardware_refs(&config.policy.require_hardware_key, &known)
                        .is_some()
            });
            protected && !gate::allowed_now(config, store, &push.request(push.refs.clone()))
        }
        _ => false,
    };
    match leave_protected {
        true => PushedRefs::CheckedByHook,
        false => push.refs.clone(),
    }
}

impl Push<'_> {
    fn request(&self, refs: PushedRefs) -> Request<'_> {
        Request {
            user: Some(&self.pusher.user),
            credential: self.pusher.credential.clone(),
            repo: Target::Found(self.repo),
            operation: Operation::Write(refs),
            transport: self.pusher.transport,
            key_id: self.pusher.key_id,
            remote_addr: self.pusher.remote_addr.as_deref(),
        }
    }
}

/// Says what a decision means to the pusher: a token's coming expiry on an
/// allow, the refusal's lines otherwise. `true` allows.
fn finish(
    config: &Config,
    push: &Push,
    request: &Request,
    decision: &Decision,
    say: &mut dyn FnMut(&str),
) -> bool {
    if let (Decision::Allow(_), Credential::Token(token), HookKind::PreReceive) =
        (decision, &request.credential, push.kind)
        && let Some(at) = token.expires_at.filter(|&at| at - now() <= TOKEN_WARNING)
    {
        say(&format!(
            "git2fa: note: access token #{} expires on {}; create a new one at {}",
            token.id,
            crate::system::time::format_utc(at),
            crate::system::pages::tokens_url(&config.public_url)
        ));
    }
    match decision {
        Decision::Allow(_) => true,
        Decision::Refuse(refusal) => {
            for line in refusal_lines(config, push.kind, request, refusal, push.args) {
                say(&line);
            }
            false
        }
    }
}

/// Who pushes, and with what credential.
///
/// The identity a shim hands over (`GIT2FA_*`, or `REMOTE_USER` when
/// trusted) counts only when the hook runs as the account that owns the
/// store: the shims run as that account, and a local user pushing under
/// another account could set those variables to anything.
///
/// `var` reads the hook's environment (the process's own, or a table's in
/// the tests).
pub(crate) fn identify(
    config: &Config,
    store: &Store,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Pusher, HookError> {
    let from_shim = runs_as_store_owner(config)?;
    identify_as(config, store, var, from_shim, nix::unistd::getuid())
}

/// `identify` for a hook whose account is `uid`, which is the store's
/// owner when `from_shim` (`git2fa serve` answering a hook of this host).
pub(crate) fn identify_as(
    config: &Config,
    store: &Store,
    var: &dyn Fn(&str) -> Option<String>,
    from_shim: bool,
    uid: nix::unistd::Uid,
) -> Result<Pusher, HookError> {
    let handed_over = if from_shim {
        Identity::from_env(var).map_err(HookError::Malformed)?
    } else {
        None
    };
    if let Some(identity) = handed_over {
        let credential = match (identity.transport, identity.key_id, identity.token_id) {
            (Transport::Ssh, Some(key_id), _) => match store.key(key_id)? {
                // No more than the key's mark now, whatever the shim said.
                Some(key) if key.user == identity.user => Credential::SshKey {
                    key_id,
                    hardware: identity.hardware.min(key.hardware),
                },
                _ => Credential::UnknownKey,
            },
            (Transport::Http, _, Some(token_id)) => match store.token(token_id)? {
                Some(token) if token.user == identity.user => {
                    Credential::Token(crate::authz::decision::TokenFacts::of(&token))
                }
                _ => Credential::UnknownToken,
            },
            // git2fa-http checked the password before git started.
            (Transport::Http, _, None) => Credential::Password { valid: true },
            _ => return Err(malformed("GIT2FA_TRANSPORT=ssh without GIT2FA_KEY_ID")),
        };
        return Ok(Pusher {
            user: identity.user,
            transport: identity.transport,
            credential,
            key_id: identity.key_id,
            remote_addr: identity.remote_addr,
        });
    }
    if from_shim
        && config.http.trust_remote_user
        && let Some(user) = var("REMOTE_USER")
    {
        return Ok(Pusher {
            user,
            transport: Transport::Http,
            credential: Credential::TrustedRemoteUser,
            key_id: None,
            remote_addr: var("REMOTE_ADDR"),
        });
    }
    Pusher::unix_account(uid)
}

/// The repository the hook runs in, which must be inside `repos_root`.
pub(crate) fn repo_for(config: &Config, git_dir: &Path) -> Result<RepoPath, HookError> {
    let dir = git_dir
        .canonicalize()
        .map_err(HookError::io(git_dir.display().to_string()))?;
    let root = config
        .repos_root
        .canonicalize()
        .map_err(HookError::io(config.repos_root.display().to_string()))?;
    let below = dir
        .strip_prefix(&root)
        .ok()
        .and_then(Path::to_str)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            malformed(format!(
                "{} is not below repos_root {}",
                dir.display(),
                root.display()
            ))
        })?;
    let name = below.strip_suffix(".git").unwrap_or(below).to_string();
    Ok(RepoPath { dir, name })
}

fn refusal_lines(
    config: &Config,
    kind: HookKind,
    request: &Request,
    refusal: &Refusal,
    args: &[String],
) -> Vec<String> {
    let cx = request.message_context(config);
    let mut lines = Vec::new();
    if let (HookKind::Update, Some(refname)) = (kind, args.first()) {
        lines.push(format!("git2fa: refused {refname}:"));
    }
    lines.extend(refusal.lines(&cx));
    lines
}

/// Runs the hook that was there before ours, if any; its exit code counts.
pub fn run_chained(
    git_dir: &Path,
    kind: HookKind,
    args: &[String],
    input: &[u8],
) -> Result<ExitCode, HookError> {
    crate::system::syslog::panic_point("hook-after-allow");
    let chained = git_dir
        .join("hooks")
        .join(format!("{}{CHAINED_SUFFIX}", kind.name()));
    if !chained.exists() {
        return Ok(ExitCode::SUCCESS);
    }
    let status = crate::transport::exec::run_hook(&chained, args, input)
        .map_err(HookError::io(chained.display().to_string()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)),
        None => ExitCode::from(1),
    })
}

fn malformed(what: impl Into<String>) -> HookError {
    HookError::Malformed(what.into())
}

impl Pusher {
    /// The Unix account `uid`, as the hook's process or the kernel names
    /// it: the credential is the account itself.
    pub(crate) fn unix_account(uid: nix::unistd::Uid) -> Result<Pusher, HookError> {
        let user = nix::unistd::User::from_uid(uid)
            .map_err(HookError::errno(format!("looking up uid {uid}")))?
            .ok_or_else(|| malformed(format!("uid {uid} has no account name")))?;
        Ok(Pusher {
            user: user.name,
            transport: Transport::Local,
            credential: Credential::UnixUser,
            key_id: None,
            remote_addr: None,
        })
    }
}
