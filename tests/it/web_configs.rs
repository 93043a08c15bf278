//! Git over HTTP through web-server configurations as admins write them:
//! from git-http-backend(1), from common nginx guides, and ours. Whatever
//! the configuration passes for a request without credentials (nothing, or
//! an empty `HTTP_AUTHORIZATION`), git gets its challenge, then works with
//! a token, in the URL or from a credential helper, and no wrong password
//! is counted.

use std::path::{Path, PathBuf};

use crate::harness::apache::{self, Apache};
use crate::harness::fixture::Fixture;
use crate::harness::nginx::{self, Nginx};
use crate::harness::{Host, Run, run};

/// alice, enrolled, with a write token for `team/app`, which has one
/// commit and the git2fa hooks and requires 2FA for everything.
fn host() -> (Fixture, String, PathBuf) {
    let host = Host::new()
        .user("alice")
        .enrolled()
        .repo("team/app")
        .hooks();
    let work = host.work().to_path_buf();
    host.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let token = host.token("alice", "team/app", "write", &[]);
    (host, token, work)
}

/// The status line and headers of `GET path` with no Authorization.
fn anonymous_get(port: u16, path: &str) -> String {
    crate::harness::http::get(port, path).head
}

/// What a user does with git through the web server on `port`, checked as
/// they would check it; `audit` reads the audit log.
fn exercise(host: &Host, port: u16, token: &str, work: &Path, audit: &dyn Fn() -> String) {
    let home = host.dir.path().display().to_string();
    let git = |args: &[&str]| run("git", args, work, &[("HOME", home.clone())], "");

    // No credentials: the challenge, not a bad request.
    let head = anonymous_get(port, "/git/team/app.git/info/refs?service=git-upload-pack");
    assert!(
        head.starts_with("HTTP/1.1 401") || head.starts_with("HTTP/1.0 401"),
        "{head}"
    );
    assert!(
        head.contains("WWW-Authenticate: Basic realm=\"git2fa\""),
        "{head}"
    );

    // The token in the URL.
    let with_token = format!("http://alice:{token}@127.0.0.1:{port}/git/team/app.git");
    git(&["ls-remote", &with_token]).ok();
    std::fs::write(work.join("README"), "through the web server\n").unwrap();
    git(&["commit", "--quiet", "-am", "change"]).ok();
    git(&["push", "--quiet", &with_token, "main"]).ok();

    // The user in the URL, the token from a credential helper (the form
    // the token page prints): many fetches, none counted as a wrong
    // password.
    let user_only = format!("http://alice@127.0.0.1:{port}/git/team/app.git");
    let helper =
        format!("credential.helper=!f() {{ echo username=alice; echo password={token}; }}; f");
    for _ in 0..12 {
        let fetched = git(&["-c", &helper, "fetch", "--quiet", &user_only, "main"]);
        assert_eq!(fetched.code, 0, "{fetched:?}");
    }
    let audit = audit();
    assert!(!audit.contains("wrong-password"), "{audit}");
    assert!(!audit.contains("throttled"), "{audit}");
    assert!(audit.contains(" http alice read allow "), "{audit}");
}

#[track_caller]
fn ok(run: Run) -> Run {
    run.ok()
}

/// A common nginx block: our location, plus the line many guides add.
#[test]
fn nginx_passing_http_authorization_explicitly() {
    if !nginx::available() {
        return;
    }
    let (host, token, work) = host();
    let location = nginx::our_location().replace(
        "include fastcgi_params;",
        "include fastcgi_params;\n    fastcgi_param HTTP_AUTHORIZATION $http_authorization;",
    );
    assert!(location.contains("$http_authorization"));
    let nginx = Nginx::start_with(&host, &location);
    exercise(&host, nginx.port, &token, &work, &|| {
        host.git2fa(&["audit", "--limit", "100"]).ok().stdout
    });
}

/// The regex location many guides give for git-http-backend, with only
/// `include fastcgi_params;`.
#[test]
fn nginx_with_only_fastcgi_params() {
    if !nginx::available() {
        return;
    }
    let (host, token, work) = host();
    let location = r"location ~ ^/git(/.*)$ {
    client_max_body_size 0;
    include fastcgi_params;
    fastcgi_param SCRIPT_FILENAME /usr/local/bin/git2fa-http;
    fastcgi_param PATH_INFO $1;
    fastcgi_param GIT2FA_CONFIG /etc/git2fa/config.toml;
    fastcgi_pass unix:/run/fcgiwrap.socket;
}";
    let nginx = Nginx::start_with(&host, location);
    exercise(&host, nginx.port, &token, &work, &|| {
        host.git2fa(&["audit", "--limit", "100"]).ok().stdout
    });
}

/// git-http-backend(1)'s Apache block (mod_cgi, mod_alias, mod_env) with
/// git2fa-http in its place, and the Authorization header passed the old
/// way: `SetEnvIf`, which sets an empty value when the header is absent.
#[test]
fn apache_mod_cgi_with_setenvif() {
    through_apache(
        r#"SetEnv GIT2FA_CONFIG /etc/git2fa/config.toml
SetEnvIf Authorization "(.*)" HTTP_AUTHORIZATION=$1
ScriptAlias /git/ /usr/local/bin/git2fa-http/
<Location /git/>
    Require all granted
</Location>"#,
    );
}

/// The same with `CGIPassAuth On` (Apache 2.4.13 and later).
#[test]
fn apache_mod_cgi_with_cgipassauth() {
    through_apache(
        r#"SetEnv GIT2FA_CONFIG /etc/git2fa/config.toml
ScriptAlias /git/ /usr/local/bin/git2fa-http/
<Location /git/>
    CGIPassAuth On
    Require all granted
</Location>"#,
    );
}

/// `install/apache-git2fa.conf` as shipped: the recipe of the admin guide.
#[test]
fn apache_with_our_example() {
    let ours = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("install/apache-git2fa.conf"),
    )
    .unwrap();
    through_apache(&ours);
}

/// Apache serving `site`, exercised as a user would.
fn through_apache(site: &str) {
    if !apache::available() {
        return;
    }
    let (host, token, work) = host();
    let apache = Apache::start(&host, site);
    exercise(&host, apache.port, &token, &work, &|| {
        ok(apache::git2fa_as_www_data(
            &host,
            &["audit", "--limit", "100"],
        ))
        .stdout
    });
}
