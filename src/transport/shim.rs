//! The small programs git runs per operation: `git2fa-shell`,
//! `git2fa-hook` and `git2fa-http`. Each reads the config, asks the
//! resident `git2fa serve` (`transport::ask`), and starts git or prints the
//! refusal as it answers. When serve does not answer, each hands the
//! operation to `git2fa` under its own name, which decides directly
//! (`shell::entry::main`, `hook::main`, `cgi::main`): the same rules, the same
//! answers.
//!
//! What these programs link is what this module and `ask` reach: the
//! config, the wire format, starting git. The store, the async runtime,
//! TLS and WebAuthn are in `git2fa` only, so each git operation starts a
//! small program (`docs/decisions.md`, "Decisions by the resident serve").

use std::ffi::OsString;
use std::process::ExitCode;

use crate::authz::messages::check_unavailable;
use crate::system::config::Config;
use crate::transport::ask::{self, Answer, Message};
use crate::transport::cgi::{self, CgiRequest};
use crate::transport::hook::{self, HookKind};
use crate::transport::{identity, shell, ssh_command};

/// The program's arguments, as they came.
fn args_os() -> Vec<OsString> {
    std::env::args_os().skip(1).collect()
}

/// `git2fa-shell`: a git command goes to serve; everything else (`2fa
/// verify` reads a code, the greeting, help) is handed over at once.
pub fn shell_main() -> ExitCode {
    crate::system::syslog::init("git2fa-shell");
    crate::system::syslog::refuse_on_panic(shell::entry::refuse_after_panic);
    let command = shell::entry::original_command();
    let hand_over = || match ask::hand_over("git2fa-shell", &args_os(), None) {
        Ok(code) => code,
        Err(cause) => shell::entry::refuse_with(&check_unavailable(None, &cause), &command),
    };
    if !ssh_command::is_git_command(&command) {
        return hand_over();
    }
    let args: Vec<String> = match std::env::args().skip(1).collect::<Vec<_>>() {
        args if !args.is_empty() => args,
        _ => return hand_over(),
    };
    let Ok(args) = shell::entry::parse_args(&args) else {
        return hand_over();
    };
    let Ok(config) = Config::load(&Config::locate(
        args.config.as_deref().map(std::path::Path::new),
    )) else {
        return hand_over();
    };
    let mut request = Message::request("ssh", &config)
        .with("key-id", args.key_id.to_string())
        .with("fingerprint", args.fingerprint)
        .with("command", command.as_str());
    if let Some(hardware) = args.hardware {
        request.push("hardware", hardware.as_str());
    }
    let addr = identity::ssh_client_addr(std::env::var("SSH_CONNECTION").ok().as_deref());
    if let Some(addr) = addr {
        request.push("addr", addr);
    }
    if let Ok(protocol) = std::env::var("GIT_PROTOCOL") {
        request.push("protocol", protocol);
    }
    match ask::ask_waiting(&config, request) {
        Ok(Answer::Run { invocation, max }) => shell::entry::run_git(&invocation, max, &command),
        Ok(Answer::Exit(code)) => ExitCode::from(code),
        Ok(Answer::Wait(_) | Answer::Open(_)) => hand_over(),
        Err(why) => {
            ask::log_unanswered(&why);
            hand_over()
        }
    }
}

/// `git2fa-hook`: pre-receive sends every pushed ref in one request;
/// `update` costs one round trip when pre-receive decided the push.
pub fn hook_main() -> ExitCode {
    crate::system::syslog::init("git2fa-hook");
    crate::system::syslog::refuse_on_panic(hook::refuse_after_panic);
    let say = hook::say;
    let hand_over = |args: &[OsString], input: Option<&[u8]>| match ask::hand_over(
        "git2fa-hook",
        args,
        input,
    ) {
        Ok(code) => code,
        Err(cause) => {
            say(&check_unavailable(None, &cause));
            ExitCode::from(1)
        }
    };
    let argv: Vec<String> = match std::env::args_os().map(OsString::into_string).collect() {
        Ok(argv) => argv,
        Err(_) => return hand_over(&args_os(), None),
    };
    let Ok((config_path, kind, args)) = hook::parse_args(argv) else {
        return hand_over(&args_os(), None);
    };
    // Handed over with the kind spelled out (this program may have been
    // started as `pre-receive` or `update`).
    let mut full: Vec<OsString> = Vec::new();
    if let Some(path) = &config_path {
        full.extend(["--config".into(), path.clone().into_os_string()]);
    }
    full.push(kind.name().into());
    full.extend(args.iter().map(OsString::from));
    let Ok(config) = Config::load(&Config::locate(config_path.as_deref())) else {
        return hand_over(&full, None);
    };
    let (input, names) = match hook::pushed(kind, &args) {
        Ok(pushed) => pushed,
        // As `git2fa-hook` refuses input that is not git's, and records it.
        Err(cause) => {
            hook::audit_refused_push(&config, &cause);
            say(&check_unavailable(None, &cause.to_string()));
            return ExitCode::from(1);
        }
    };
    let git_dir = hook::git_dir();
    // Another account's push: the daemon on `[daemon] socket` decides.
    match hook::asks_daemon(&config) {
        Ok(None) => {}
        Ok(Some(socket)) => {
            let asked = hook::repo_for(&config, &git_dir)
                .and_then(|repo| hook::ask_daemon(&socket, kind, repo.dir, names, &args));
            return match asked {
                Ok(true) => chained(&git_dir, kind, &args, &input),
                Ok(false) => ExitCode::from(1),
                Err(cause) => {
                    say(&check_unavailable(None, &cause.to_string()));
                    ExitCode::from(1)
                }
            };
        }
        Err(cause) => {
            say(&check_unavailable(None, &cause.to_string()));
            return ExitCode::from(1);
        }
    }
    let mut request = Message::request("hook", &config)
        .with("hook", kind.name())
        .with("dir", ask::absolute(&git_dir).to_string_lossy());
    for name in names {
        request.push("ref", name);
    }
    for arg in &args {
        request.push("arg", arg.as_str());
    }
    // Each ref's change, `OLD NEW REF`: what a pre-receive decision
    // covers, and what an `update` hook asks about.
    match (kind, args.as_slice()) {
        (HookKind::PreReceive, _) => {
            for line in String::from_utf8_lossy(&input).lines() {
                request.push("change", line);
            }
        }
        (HookKind::Update, [refname, old, new]) => {
            request.push("change", format!("{old} {new} {refname}"))
        }
        (HookKind::Update, _) => {}
    }
    for name in [
        identity::USER,
        identity::TRANSPORT,
        identity::KEY_ID,
        identity::TOKEN_ID,
        identity::REMOTE_ADDR,
        identity::HARDWARE,
        "REMOTE_USER",
        "REMOTE_ADDR",
    ] {
        if let Ok(value) = std::env::var(name) {
            request.push("env", format!("{name}={value}"));
        }
    }
    let input_for_hand_over = (kind == HookKind::PreReceive).then_some(input.as_slice());
    match ask::ask_waiting(&config, request) {
        Ok(Answer::Exit(0)) => chained(&git_dir, kind, &args, &input),
        Ok(Answer::Exit(code)) => ExitCode::from(code),
        Ok(_) => hand_over(&full, input_for_hand_over),
        Err(why) => {
            ask::log_unanswered(&why);
            hand_over(&full, input_for_hand_over)
        }
    }
}

/// Runs the repository's own hook after an allow.
fn chained(git_dir: &std::path::Path, kind: HookKind, args: &[String], input: &[u8]) -> ExitCode {
    match hook::run_chained(git_dir, kind, args, input) {
        Ok(code) => code,
        Err(cause) => {
            hook::say(&check_unavailable(None, &cause.to_string()));
            ExitCode::from(1)
        }
    }
}

/// `git2fa-http`: the CGI request goes to serve; git http-backend replaces
/// this process when it allows.
pub fn http_main() -> ExitCode {
    crate::system::syslog::init("git2fa-http");
    crate::system::syslog::refuse_on_panic(cgi::refuse_after_panic);
    let hand_over = || match ask::hand_over("git2fa-http", &args_os(), None) {
        Ok(code) => code,
        Err(cause) => {
            let response = cgi::refuse_unavailable(&cause);
            let _ = response.write_to(&mut std::io::stdout().lock());
            ExitCode::SUCCESS
        }
    };
    let Ok(cgi) = CgiRequest::from_env() else {
        return hand_over();
    };
    let Ok(config) = Config::load(&Config::locate(None)) else {
        return hand_over();
    };
    let mut request = Message::request("http", &config)
        .with("method", cgi.method.as_str())
        .with("path", cgi.path_info.as_str())
        .with("query", cgi.query.as_str());
    for (name, value) in [
        ("authorization", &cgi.authorization),
        ("addr", &cgi.remote_addr),
        ("content-type", &cgi.content_type),
        ("content-length", &cgi.content_length),
        ("content-encoding", &cgi.content_encoding),
        ("protocol", &cgi.git_protocol),
        ("user-agent", &cgi.user_agent),
    ] {
        if let Some(value) = value {
            request.push(name, value.as_str());
        }
    }
    match ask::ask_waiting(&config, request) {
        Ok(Answer::Run { invocation, .. }) => {
            crate::system::syslog::panic_point("http-before-exec");
            let error = invocation.exec();
            let cause = format!("cannot start {}: {error}", invocation.git_bin.display());
            let _ = cgi::refuse_unavailable(&cause).write_to(&mut std::io::stdout().lock());
            ExitCode::from(1)
        }
        Ok(Answer::Exit(code)) => ExitCode::from(code),
        Ok(_) => hand_over(),
        Err(why) => {
            ask::log_unanswered(&why);
            hand_over()
        }
    }
}

/// The CGI request as serve reads it back from a request.
pub fn cgi_request(request: &Message) -> CgiRequest {
    let get = |name: &str| request.get(name).map(str::to_string);
    CgiRequest {
        method: get("method").unwrap_or_default(),
        path_info: get("path").unwrap_or_default(),
        query: get("query").unwrap_or_default(),
        authorization: get("authorization"),
        remote_addr: get("addr"),
        content_type: get("content-type"),
        content_length: get("content-length"),
        content_encoding: get("content-encoding"),
        git_protocol: get("protocol"),
        user_agent: get("user-agent"),
    }
}
