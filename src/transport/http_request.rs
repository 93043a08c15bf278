//! A smart-HTTP git request as a CGI program receives it (untrusted input):
//! method, `PATH_INFO`, `QUERY_STRING` and the `Authorization` header,
//! parsed once into closed types. Dumb HTTP is not served.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::transport::ssh_command::GitService;

/// `Authorization` headers longer than this are refused unread.
pub const MAX_AUTHORIZATION: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET …/info/refs?service=…`: where git shows a refusal's text.
    InfoRefs,
    /// `POST …/git-upload-pack` or `…/git-receive-pack`.
    Rpc,
}

impl Endpoint {
    pub fn suffix(self, service: GitService) -> String {
        match self {
            Endpoint::InfoRefs => "/info/refs".into(),
            Endpoint::Rpc => format!("/git-{}", service.subcommand()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRequest {
    /// The repository part of the path, still to be resolved.
    pub repo: String,
    pub service: GitService,
    pub endpoint: Endpoint,
}

/// Why a request is not one we serve: the status and a line for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    pub status: u16,
    pub message: &'static str,
}

const fn bad(message: &'static str) -> BadRequest {
    BadRequest {
        status: 400,
        message,
    }
}

/// Parses method, `PATH_INFO` and `QUERY_STRING`.
pub fn parse(method: &str, path_info: &str, query: &str) -> Result<GitRequest, BadRequest> {
    if path_info.len() > crate::repo::path::MAX_LEN + 32 {
        return Err(bad("the path is too long"));
    }
    if path_info.contains('%') {
        // The web server decodes the URL; a '%' left over is double-encoded.
        return Err(bad("the path holds an encoded character"));
    }
    let service_of = |name: &str| match name {
        "git-upload-pack" => Some(GitService::UploadPack),
        "git-receive-pack" => Some(GitService::ReceivePack),
        _ => None,
    };
    let (repo, service, endpoint) = match method {
        "GET" => {
            let repo = path_info.strip_suffix("/info/refs").ok_or(BadRequest {
                status: 404,
                message: "only smart HTTP is served (…/info/refs?service=git-upload-pack)",
            })?;
            let service = query
                .strip_prefix("service=")
                .and_then(service_of)
                .ok_or(bad(
                    "info/refs needs ?service=git-upload-pack or ?service=git-receive-pack",
                ))?;
            (repo, service, Endpoint::InfoRefs)
        }
        "POST" => {
            let (repo, name) = path_info
                .rsplit_once('/')
                .ok_or(bad("no service in the path"))?;
            let service = service_of(name).ok_or(BadRequest {
                status: 404,
                message: "no such git service",
            })?;
            (repo, service, Endpoint::Rpc)
        }
        _ => {
            return Err(BadRequest {
                status: 405,
                message: "only GET and POST are served",
            });
        }
    };
    let repo = repo
        .strip_prefix('/')
        .ok_or(bad("the path must start with '/'"))?;
    if repo.starts_with('/') {
        return Err(bad("the path holds '//'"));
    }
    crate::repo::path::parse(repo).map_err(|e| match e {
        crate::repo::path::RepoPathError::Malformed(why) => bad(why),
        crate::repo::path::RepoPathError::NotFound => BadRequest {
            status: 404,
            message: "repository not found",
        },
    })?;
    Ok(GitRequest {
        repo: repo.to_string(),
        service,
        endpoint,
    })
}

/// What the `Authorization` header carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// An access token, where other forges' habits put one: in the
    /// user-name field (with an empty password, or the token again), or as
    /// the password of a conventional user name. Its owner is whoever the
    /// store says; `named` is the user name sent beside it, if it names a
    /// user.
    Token {
        named: Option<String>,
        token: String,
    },
}

/// The user names that other forges' documentation pairs with a token as
/// the password (GitHub's `x-access-token`, GitLab's `oauth2`, Bitbucket's
/// `x-token-auth`, and `git`): with a token, they name nobody.
pub const TOKEN_USER_NAMES: [&str; 4] = ["x-access-token", "oauth2", "x-token-auth", "git"];

/// Whether a string is shaped like a git2fa access token.
fn token_shaped(text: &str) -> bool {
    text.starts_with("g2fa_")
}

/// Parses `Basic base64(user:password)`. Other schemes, bad base64, no
/// colon, non-UTF-8 or oversized values are a bad request.
///
/// An empty header is no credential: web servers configured with
/// `fastcgi_param HTTP_AUTHORIZATION $http_authorization;` (nginx) or
/// `SetEnvIf Authorization "(.*)" HTTP_AUTHORIZATION=$1` (Apache) pass
/// `HTTP_AUTHORIZATION=""` when the client sent none, and RFC 3875 §4.1
/// reads an empty meta-variable as unset. An empty password is no
/// credential either: git sends `user:` when the URL names the user and it
/// has no password yet, and asks for one on the challenge.
pub fn parse_authorization(header: Option<&str>) -> Result<Authorization, BadRequest> {
    let Some(header) = header.filter(|h| !h.trim().is_empty()) else {
        return Ok(Authorization::None);
    };
    if header.len() > MAX_AUTHORIZATION {
        return Err(bad("the Authorization header is too long"));
    }
    let (scheme, value) = header
        .trim()
        .split_once(' ')
        .ok_or(bad("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad("only Basic authentication is accepted"));
    }
    let decoded = STANDARD
        .decode(value.trim())
        .map_err(|_| bad("malformed Authorization header"))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| bad("the user name or password is not UTF-8"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or(bad("malformed Authorization header"))?;
    if user.len() > 64 || password.len() > 1024 || decoded.chars().any(char::is_control) {
        return Err(bad("malformed Authorization header"));
    }
    if token_shaped(user) {
        return Ok(Authorization::Token {
            named: None,
            token: user.to_string(),
        });
    }
    if token_shaped(password) {
        let named = (!user.is_empty() && !TOKEN_USER_NAMES.contains(&user)).then(|| user.into());
        return Ok(Authorization::Token {
            named,
            token: password.to_string(),
        });
    }
    if password.is_empty() {
        return Ok(Authorization::None);
    }
    if user.is_empty() {
        return Err(bad("malformed Authorization header"));
    }
    Ok(Authorization::Basic {
        user: user.to_string(),
        password: password.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_http_requests() {
        let ok = |repo: &str, service, endpoint| {
            Ok(GitRequest {
                repo: repo.into(),
                service,
                endpoint,
            })
        };
        assert_eq!(
            parse("GET", "/team/app.git/info/refs", "service=git-upload-pack"),
            ok("team/app.git", GitService::UploadPack, Endpoint::InfoRefs)
        );
        assert_eq!(
            parse("POST", "/team/app/git-receive-pack", ""),
            ok("team/app", GitService::ReceivePack, Endpoint::Rpc)
        );
    }

    #[test]
    fn hostile_requests() {
        for (method, path, query, status) in [
            ("GET", "/../etc/info/refs", "service=git-upload-pack", 400),
            (
                "GET",
                "/team/%2e%2e/x/info/refs",
                "service=git-upload-pack",
                400,
            ),
            ("GET", "//etc/info/refs", "service=git-upload-pack", 400),
            ("GET", "/a//b/info/refs", "service=git-upload-pack", 400),
            ("GET", "/app.git/HEAD", "", 404),
            ("GET", "/app.git/objects/info/packs", "", 404),
            ("GET", "/app.git/info/refs", "", 400),
            (
                "GET",
                "/app.git/info/refs",
                "service=git-upload-archive",
                400,
            ),
            ("POST", "/app.git/git-upload-archive", "", 404),
            ("PUT", "/app.git/git-receive-pack", "", 405),
            ("GET", "/-x/info/refs", "service=git-upload-pack", 400),
            ("GET", "/a b/info/refs", "service=git-upload-pack", 400),
            ("GET", "/.ssh/info/refs", "service=git-upload-pack", 400),
            ("GET", "app/info/refs", "service=git-upload-pack", 400),
        ] {
            let got = parse(method, path, query);
            assert_eq!(
                got.as_ref().map_err(|e| e.status),
                Err(status),
                "{method} {path}?{query}: {got:?}"
            );
        }
    }

    #[test]
    fn basic_authorization() {
        let header = format!("Basic {}", STANDARD.encode("alice:s3cret:with:colons"));
        assert_eq!(
            parse_authorization(Some(&header)),
            Ok(Authorization::Basic {
                user: "alice".into(),
                password: "s3cret:with:colons".into()
            })
        );
        assert_eq!(parse_authorization(None), Ok(Authorization::None));
        // What web servers pass when the client sent no header, and what
        // git sends before it has a password: no credential, not a bad
        // request.
        for none in [
            String::new(),
            " ".to_string(),
            format!("Basic {}", STANDARD.encode("alice:")),
            format!("Basic {}", STANDARD.encode(":")),
        ] {
            assert_eq!(
                parse_authorization(Some(&none)),
                Ok(Authorization::None),
                "{none:?}"
            );
        }
        // Tokens where other forges' users put them.
        let token = "g2fa_0123456789abcdefghijABCDEFGHIJab123456";
        for (sent, named) in [
            (format!("{token}:"), None),
            (format!("{token}:{token}"), None),
            (format!("{token}:x-oauth-basic"), None),
            (format!("x-access-token:{token}"), None),
            (format!("oauth2:{token}"), None),
            (format!("x-token-auth:{token}"), None),
            (format!("git:{token}"), None),
            (format!(":{token}"), None),
            (format!("alice:{token}"), Some("alice".to_string())),
        ] {
            let header = format!("Basic {}", STANDARD.encode(&sent));
            assert_eq!(
                parse_authorization(Some(&header)),
                Ok(Authorization::Token {
                    named,
                    token: token.into()
                }),
                "{sent}"
            );
        }
        let no_user = format!("Basic {}", STANDARD.encode(":secret"));
        let huge = format!("Basic {}", "A".repeat(MAX_AUTHORIZATION));
        let non_utf8 = format!("Basic {}", STANDARD.encode(b"\xff\xfe:pw"));
        let no_colon = format!("Basic {}", STANDARD.encode("alice"));
        for bad in [
            "Bearer x",
            "Basic !!!",
            "Basic",
            &huge,
            &non_utf8,
            &no_colon,
            &no_user,
        ] {
            assert_eq!(
                parse_authorization(Some(bad)).map_err(|e| e.status),
                Err(400),
                "{bad:.40}"
            );
        }
    }
}
