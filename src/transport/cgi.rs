//! `git2fa-http`, a CGI program in front of `git http-backend` (nginx with
//! fcgiwrap, Apache). It authenticates (token or password), decides, and
//! either execs `git http-backend` or answers with the refusal: 401 only for
//! a missing or wrong credential, 403 for everything else, the explanation
//! as `text/plain` (git shows it as `remote:` lines).

use std::io::Write;
use std::process::ExitCode;

use crate::authz::decision::{Credential, Operation, Refusal, Transport};
use crate::authz::gate::{self, Named, Next, Request};
use crate::authz::messages::{self, MessageContext};
use crate::authz::password::{self, PasswordCheck};
use crate::factor::token;
use crate::store::{Location, Store, StoreError};
use crate::system::config::Config;
use crate::system::time::now;
use crate::transport::exec::{GitInvocation, valid_git_protocol};
use crate::transport::http_request::{self, Authorization, BadRequest, GitRequest};
use crate::transport::identity::Identity;

/// The CGI variables git2fa-http reads. A variable that is not UTF-8 is a
/// bad request.
#[derive(Debug, Clone, Default)]
pub struct CgiRequest {
    pub method: String,
    pub path_info: String,
    pub query: String,
    pub authorization: Option<String>,
    pub remote_addr: Option<String>,
    pub content_type: Option<String>,
    pub content_length: Option<String>,
    pub content_encoding: Option<String>,
    pub git_protocol: Option<String>,
    /// `User-Agent`: which client asks (what it shows of a refusal).
    pub user_agent: Option<String>,
}

impl CgiRequest {
    pub fn from_env() -> Result<CgiRequest, BadRequest> {
        let var = |name: &str| -> Result<Option<String>, BadRequest> {
            match std::env::var_os(name) {
                None => Ok(None),
                Some(value) => value.into_string().map(Some).map_err(|_| BadRequest {
                    status: 400,
                    message: "a request value is not UTF-8",
                }),
            }
        };
        Ok(CgiRequest {
            method: var("REQUEST_METHOD")?.unwrap_or_default(),
            path_info: var("PATH_INFO")?.unwrap_or_default(),
            query: var("QUERY_STRING")?.unwrap_or_default(),
            authorization: var("HTTP_AUTHORIZATION")?,
            remote_addr: var("REMOTE_ADDR")?,
            content_type: var("CONTENT_TYPE")?,
            content_length: var("CONTENT_LENGTH")?,
            content_encoding: var("HTTP_CONTENT_ENCODING")?,
            git_protocol: var("HTTP_GIT_PROTOCOL")?,
            user_agent: var("HTTP_USER_AGENT")?,
        })
    }
}

/// What to answer.
#[must_use]
#[derive(Debug)]
pub enum Response {
    /// Hand the request to `git http-backend`.
    Git(GitInvocation),
    Text {
        status: u16,
        lines: Vec<String>,
        challenge: bool,
    },
    /// A refusal for a client that shows nothing of a 403's text (libgit2,
    /// JGit, dulwich): a 200 advertisement of `service` holding one `ERR`
    /// pkt-line with the whole explanation, which each of them prints.
    Advertised {
        service: crate::transport::ssh_command::GitService,
        lines: Vec<String>,
    },
    /// A request of Git LFS, which git2fa does not serve: 501 with
    /// `LFS_MESSAGE` as git-lfs's JSON error.
    Lfs,
}

/// The JSON body of the answer to git-lfs.
pub fn lfs_body() -> String {
    format!("{{\"message\":\"{LFS_MESSAGE}\"}}\n")
}

/// Whether the client prints nothing of a 403's body, only an `ERR` line:
/// libgit2 (`git/2.0 (libgit2 1.5.0)`), JGit, dulwich, go-git. Any other
/// (git's command line, curl, none) gets the contract's `text/plain` 403.
pub fn prints_only_err_line(user_agent: Option<&str>) -> bool {
    user_agent.is_some_and(|ua| {
        ua.contains("libgit2")
            || ua.starts_with("JGit/")
            || ua.contains("dulwich")
            || ua.starts_with("go-git/")
    })
}

/// The body of an `Advertised` refusal (gitprotocol-http(5): the service
/// line, a flush, then git's pkt-lines; an `ERR` line ends the exchange).
pub fn advertised_body(
    service: crate::transport::ssh_command::GitService,
    lines: &[String],
) -> Vec<u8> {
    let head = format!("# service=git-{}\n", service.subcommand());
    let mut body = format!("{:04x}{head}0000", head.len() + 4).into_bytes();
    body.extend(crate::transport::shell::err_pkt_line(&messages::one_line(
        lines,
    )));
    body
}

impl Response {
    fn text(status: u16, line: impl Into<String>) -> Response {
        Response::Text {
            status,
            lines: vec![line.into()],
            challenge: false,
        }
    }

    /// The CGI response for a refusal or a bad request.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let (status, lines, challenge) = match self {
            Response::Git(_) => return Ok(()),
            Response::Lfs => {
                write!(
                    out,
                    "Status: 501 Not Implemented\r\nContent-Type: application/vnd.git-lfs+json\r\nCache-Control: no-store\r\n\r\n{}",
                    lfs_body()
                )?;
                return out.flush();
            }
            Response::Advertised { service, lines } => {
                write!(
                    out,
                    "Status: 200 OK\r\nContent-Type: application/x-git-{}-advertisement\r\nCache-Control: no-store\r\n\r\n",
                    service.subcommand()
                )?;
                out.write_all(&advertised_body(*service, lines))?;
                return out.flush();
            }
            Response::Text {
                status,
                lines,
                challenge,
            } => (status, lines, challenge),
        };
        let reason = match status {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Service Unavailable",
        };
        write!(
            out,
            "Status: {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
        )?;
        if *challenge {
            write!(
                out,
                "WWW-Authenticate: Basic realm=\"git2fa\", charset=\"UTF-8\"\r\n"
            )?;
        }
        write!(out, "\r\n")?;
        for line in lines {
            writeln!(out, "{line}")?;
        }
        out.flush()
    }
}

fn bad_request(e: BadRequest) -> Response {
    Response::text(e.status, format!("git2fa: {}", e.message))
}

/// The check failed: 403 with the words every transport uses.
pub fn refuse_unavailable(cause: &dyn std::fmt::Display) -> Response {
    Response::Text {
        status: 403,
        lines: messages::check_unavailable(None, cause),
        challenge: false,
    }
}

/// What git-lfs reads of an answer to its requests (`…/info/lfs/…`): the
/// JSON `message`, which it prints (`batch response: …`) whatever the
/// status; a text body would have it print "Repository or object not
/// found" with the remote's URL.
pub const LFS_MESSAGE: &str = "git2fa: this host does not serve Git LFS (large files); the repository's git history works as usual. Ask an admin of this host where large files go.";

/// Whether a request is for Git LFS's API (`<repo>/info/lfs/…`).
fn is_lfs(path_info: &str) -> bool {
    path_info.contains("/info/lfs/") || path_info.ends_with("/info/lfs")
}

/// Decides one request.
pub fn handle(config: &Config, cgi: &CgiRequest) -> Response {
    if is_lfs(&cgi.path_info) {
        return Response::Lfs;
    }
    let request = match http_request::parse(&cgi.method, &cgi.path_info, &cgi.query) {
        Ok(request) => request,
        Err(e) => {
            cgi.audit_early(config, None, None, "bad-request", e.message);
            return bad_request(e);
        }
    };
    let authorization = match http_request::parse_authorization(cgi.authorization.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            cgi.audit_early(config, None, Some(&request.repo), "bad-request", e.message);
            return bad_request(e);
        }
    };
    let anonymous = || {
        // git asks anonymously first and sends credentials on the 401.
        refusal_response(
            config,
            (&request, cgi),
            None,
            &Operation::Read,
            &Refusal::MissingCredential,
        )
    };
    // The store, once a credential needs it (an anonymous request does not).
    let mut opened: Option<Store> = None;
    let (user, secret) = match authorization {
        Authorization::None => return anonymous(),
        // JGit's command line sends the password `null` when the URL names
        // the user and has none: no credential, not a wrong password.
        Authorization::Basic { password, .. }
            if password == "null"
                && cgi
                    .user_agent
                    .as_deref()
                    .is_some_and(|ua| ua.starts_with("JGit/")) =>
        {
            return anonymous();
        }
        Authorization::Basic { user, password } => (user, password),
        Authorization::Token {
            named: Some(user),
            token,
        } => (user, token),
        Authorization::Token { named: None, token } => {
            match token_owner(config, &mut opened, &request, cgi, &token) {
                Ok(owner) => (owner, token),
                Err(response) => return *response,
            }
        }
    };
    // Before the repository is resolved, as for a missing one.
    let operation_guess =
        Named::Missing(request.repo.clone()).operation(request.service.is_write());
    // A mistyped token is refused before the store is touched.
    if token::looks_like_token(&secret) && !token::is_well_formed(&secret) {
        cgi.audit_early(
            config,
            Some(&user),
            Some(&request.repo),
            "token-malformed",
            "a token that fails its checksum",
        );
        return refusal_response(
            config,
            (&request, cgi),
            Some(&user),
            &operation_guess,
            &Refusal::TokenMalformed,
        );
    }
    let mut store = match opened.map_or_else(|| Store::connect(&Location::of(config)), Ok) {
        Ok(store) => store,
        Err(e) => return refuse_unavailable(&e),
    };
    let t = now();
    let credential = match credential(
        config,
        &mut store,
        &user,
        &secret,
        cgi.remote_addr.as_deref(),
        t,
    ) {
        Ok(Some(c)) => c,
        Ok(None) => return cgi.busy(config, &mut store, &request, t),
        Err(cause) => return refuse_unavailable(&cause),
    };
    // A credential helper that signed in through the browser sends the
    // user name it likes (Git Credential Manager's `OAUTH-USER`): an OAuth
    // token is its owner's, whatever the name beside it. Looked up only
    // when the token is not the named user's.
    let (user, credential) = match credential {
        Credential::UnknownToken => match oauth_token(&store, &secret) {
            Ok(Some(found)) => (
                found.user.clone(),
                Credential::Token(crate::authz::decision::TokenFacts::of(&found)),
            ),
            Ok(None) => (user, Credential::UnknownToken),
            Err(e) => return refuse_unavailable(&e),
        },
        other => (user, other),
    };
    // A missing repository is decided as one nobody may read: with a
    // wrong credential it is a 401, with a good one a 403, exactly as for a
    // private repository.
    let named = match Named::resolve(&config.repos_root, &request.repo) {
        Ok(named) => named,
        Err(why) => {
            cgi.audit_early(config, Some(&user), None, "bad-path", why);
            return Response::text(400, format!("git2fa: {why}"));
        }
    };
    let target = named.target();
    let operation = named.operation(request.service.is_write());
    let token_id = match &credential {
        Credential::Token(token) => Some(token.id),
        _ => None,
    };
    let gate_request = Request {
        user: Some(&user),
        credential,
        repo: target,
        operation,
        transport: Transport::Http,
        key_id: None,
        remote_addr: cgi.remote_addr.as_deref(),
    };
    let outcome = gate::authorize(config, &mut store, &gate_request, t);
    match named.next(&outcome.decision) {
        Next::Git(repo) => {
            if let Some(id) = token_id
                && let Err(e) = store.touch_token(id, t)
            {
                log::warn!("cannot record the use of token #{id}: {e}");
            }
            let identity = Identity {
                user: user.clone(),
                transport: Transport::Http,
                key_id: None,
                token_id,
                remote_addr: cgi.remote_addr.clone(),
                hardware: None,
            };
            match backend(config, &repo.dir, &request, cgi, &identity) {
                Ok(invocation) => Response::Git(invocation),
                Err(cause) => refuse_unavailable(&cause),
            }
        }
        Next::Refuse(refusal) => refusal_response(
            config,
            (
                &GitRequest {
                    repo: target.name().to_string(),
                    ..request.clone()
                },
                cgi,
            ),
            Some(&user),
            &gate_request.operation,
            refusal,
        ),
    }
}

/// Establishes the credential: a token by one indexed lookup, a password by
/// the slow hash, unless too many wrong ones came lately; `None` when every
/// password hash of the server is under way.
fn credential(
    config: &Config,
    store: &mut Store,
    user: &str,
    secret: &str,
    remote_addr: Option<&str>,
    now: i64,
) -> Result<Option<Credential>, StoreError> {
    if token::looks_like_token(secret) {
        return gate::token_credential(store, user, secret).map(Some);
    }
    let checked = password::check(
        store,
        &config.policy,
        (user, secret),
        remote_addr.unwrap_or("unknown"),
        now,
        |_| true,
    )?;
    Ok(match checked {
        PasswordCheck::Throttled { until } => Some(Credential::ThrottledPassword { until }),
        PasswordCheck::Wrong => Some(Credential::Password { valid: false }),
        PasswordCheck::Right(_) => Some(Credential::Password { valid: true }),
        PasswordCheck::Busy => None,
    })
}

/// `git http-backend` for this request, with the CGI variables it needs and
/// nothing else from the client.
fn backend(
    config: &Config,
    repo_dir: &std::path::Path,
    request: &GitRequest,
    cgi: &CgiRequest,
    identity: &Identity,
) -> std::io::Result<GitInvocation> {
    let root = config.repos_root.canonicalize().map_err(|e| {
        std::io::Error::new(e.kind(), format!("{}: {e}", config.repos_root.display()))
    })?;
    let below = repo_dir.strip_prefix(&root).map_err(|_| {
        std::io::Error::other(format!(
            "{} is outside the root {}",
            repo_dir.display(),
            root.display()
        ))
    })?;
    let path_info = format!(
        "/{}{}",
        below.display(),
        request.endpoint.suffix(request.service)
    );
    let mut vars = vec![
        ("GATEWAY_INTERFACE".to_string(), "CGI/1.1".to_string()),
        ("REQUEST_METHOD".into(), cgi.method.clone()),
        ("PATH_INFO".into(), path_info),
        ("QUERY_STRING".into(), cgi.query.clone()),
    ];
    if let Some(addr) = &cgi.remote_addr {
        vars.push(("REMOTE_ADDR".into(), addr.clone()));
    }
    if let Some(content_type) = cgi
        .content_type
        .as_ref()
        .filter(|v| v.starts_with("application/x-git-"))
    {
        vars.push(("CONTENT_TYPE".into(), content_type.clone()));
    }
    if let Some(length) = cgi
        .content_length
        .as_ref()
        .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
    {
        vars.push(("CONTENT_LENGTH".into(), length.clone()));
    }
    if let Some(encoding) = cgi
        .content_encoding
        .as_ref()
        .filter(|v| matches!(v.as_str(), "gzip" | "x-gzip"))
    {
        vars.push(("HTTP_CONTENT_ENCODING".into(), encoding.clone()));
    }
    if let Some(protocol) = cgi.git_protocol.as_ref().filter(|v| valid_git_protocol(v)) {
        vars.push(("HTTP_GIT_PROTOCOL".into(), protocol.clone()));
    }
    Ok(GitInvocation::http_backend(
        config, &root, repo_dir, vars, identity,
    ))
}

/// `token` when it is a well-formed OAuth token in the store.
fn oauth_token(store: &Store, token: &str) -> Result<Option<crate::store::Token>, StoreError> {
    if !token::is_well_formed(token) {
        return Ok(None);
    }
    Ok(store
        .token_by_hash(&token::hash(token))?
        .filter(|found| found.oauth_client.is_some()))
}

/// The owner of a token sent without a user name (in the user-name field,
/// or beside a conventional one); a token that is malformed or unknown is
/// refused with no user named, and audited without it.
fn token_owner(
    config: &Config,
    opened: &mut Option<Store>,
    request: &GitRequest,
    cgi: &CgiRequest,
    token: &str,
) -> Result<String, Box<Response>> {
    let guess = Named::Missing(request.repo.clone()).operation(request.service.is_write());
    let refuse = |refusal: Refusal, reason: &str, detail: &str| {
        cgi.audit_early(config, None, Some(&request.repo), reason, detail);
        Box::new(refusal_response(
            config,
            (request, cgi),
            None,
            &guess,
            &refusal,
        ))
    };
    if !token::is_well_formed(token) {
        return Err(refuse(
            Refusal::TokenMalformed,
            "token-malformed",
            "a token that fails its checksum",
        ));
    }
    let store = match opened {
        Some(store) => store,
        None => match Store::connect(&Location::of(config)) {
            Ok(store) => opened.insert(store),
            Err(e) => return Err(Box::new(refuse_unavailable(&e))),
        },
    };
    let found = store.token_by_hash(&token::hash(token));
    match found {
        Ok(Some(found)) => Ok(found.user),
        Ok(None) => Err(refuse(
            Refusal::TokenUnknown,
            "token-unknown",
            "a token the store does not know",
        )),
        Err(e) => Err(Box::new(refuse_unavailable(&e))),
    }
}

/// The refusal as the client shows it: the explanation as `text/plain`
/// (401 or 403) for the git command line; for other clients, a 403 at
/// `info/refs` becomes an advertisement whose `ERR` line they print.
fn refusal_response(
    config: &Config,
    (request, cgi): (&GitRequest, &CgiRequest),
    user: Option<&str>,
    operation: &Operation,
    refusal: &Refusal,
) -> Response {
    let cx = MessageContext {
        config,
        repo: &request.repo,
        user,
        operation,
        transport: Transport::Http,
    };
    let status = refusal.http_status();
    let lines = refusal.lines(&cx);
    if status == 403
        && request.endpoint == http_request::Endpoint::InfoRefs
        && prints_only_err_line(cgi.user_agent.as_deref())
    {
        return Response::Advertised {
            service: request.service,
            lines,
        };
    }
    Response::Text {
        status,
        lines,
        challenge: status == 401,
    }
}

/// What git2fa-http prints when it panics (the cause goes to the log).
pub fn refuse_after_panic() {
    print!(
        "Status: 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ngit2fa: internal error, so the request was refused.\n"
    );
}

/// The CGI entry point, deciding here (`transport::shim` is the small
/// program that asks `git2fa serve` first).
pub fn main() -> ExitCode {
    crate::system::syslog::init("git2fa-http");
    crate::system::syslog::refuse_on_panic(refuse_after_panic);
    let response = match CgiRequest::from_env() {
        Err(e) => bad_request(e),
        Ok(cgi) => match Config::load(&Config::locate(None)) {
            Ok(config) => handle(&config, &cgi),
            Err(e) => refuse_unavailable(&e.to_string()),
        },
    };
    let mut out = std::io::stdout().lock();
    match response {
        Response::Git(invocation) => {
            crate::system::syslog::panic_point("http-before-exec");
            let error = invocation.exec();
            let _ = refuse_unavailable(&format!(
                "cannot start {}: {error}",
                invocation.git_bin.display()
            ))
            .write_to(&mut out);
            ExitCode::from(1)
        }
        text => {
            let _ = text.write_to(&mut out);
            ExitCode::SUCCESS
        }
    }
}

mod early;
#[cfg(test)]
mod tests;
