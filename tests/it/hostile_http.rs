//! `git2fa-http` fed hostile CGI requests directly: each is refused with
//! 400, 403 or 404 and starts no git. A path that names no repository is a
//! 403, as a private repository's. The config's `git_bin` records being run.

use std::process::{Command, Stdio};

use crate::harness::{HTTP_BIN, Host};
use crate::hostile_shell::recording_host;

struct Answer {
    status: u16,
    body: String,
}

fn cgi(host: &Host, method: &str, path: &str, query: &str, auth: Option<&[u8]>) -> Answer {
    use std::os::unix::ffi::OsStrExt;
    let mut command = Command::new(HTTP_BIN);
    command
        .env_clear()
        .env("GIT2FA_CONFIG", &host.config)
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", std::ffi::OsStr::from_bytes(path.as_bytes()))
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        // No User-Agent (as curl -A '' or a script sends): the contract's
        // text/plain answers, as to git's command line.
        .stdin(Stdio::null());
    if let Some(auth) = auth {
        command.env("HTTP_AUTHORIZATION", std::ffi::OsStr::from_bytes(auth));
    }
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .strip_prefix("Status: ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Answer { status, body }
}

fn basic(credentials: &[u8]) -> Vec<u8> {
    use base64::Engine;
    [
        b"Basic ".as_slice(),
        base64::engine::general_purpose::STANDARD
            .encode(credentials)
            .as_bytes(),
    ]
    .concat()
}

#[test]
fn hostile_requests_start_nothing() {
    let (host, marker) = recording_host();
    host.bare_repo("../repos-evil/x.git");
    std::os::unix::fs::symlink(host.dir.path().join("repos-evil"), host.root.join("evil")).unwrap();
    let good = basic(b"alice:correct horse battery");
    let q = "service=git-upload-pack";
    let huge = [b"Basic ".as_slice(), &vec![b'A'; 20_000]].concat();
    let cases: Vec<(&str, String, &str, Vec<u8>, u16)> = vec![
        ("GET", "/../outside/info/refs".into(), q, good.clone(), 400),
        (
            "GET",
            "/team/%2e%2e/%2e%2e/x/info/refs".into(),
            q,
            good.clone(),
            400,
        ),
        (
            "GET",
            "/team//app.git/info/refs".into(),
            q,
            good.clone(),
            400,
        ),
        ("GET", "//etc/info/refs".into(), q, good.clone(), 400),
        // The root's sibling whose name extends the root's, by absolute path.
        (
            "GET",
            format!(
                "{}/info/refs",
                host.dir.path().join("repos-evil/x.git").display()
            ),
            q,
            good.clone(),
            403,
        ),
        ("GET", "/evil/x.git/info/refs".into(), q, good.clone(), 403),
        ("GET", "/team/a..b/info/refs".into(), q, good.clone(), 400),
        ("GET", "/team/app.git/HEAD".into(), "", good.clone(), 404),
        (
            "GET",
            "/team/app.git/info/refs".into(),
            "",
            good.clone(),
            400,
        ),
        (
            "DELETE",
            "/team/app.git/git-receive-pack".into(),
            "",
            good.clone(),
            405,
        ),
        ("GET", "/team/app.git/info/refs".into(), q, huge, 400),
        (
            "GET",
            "/team/app.git/info/refs".into(),
            q,
            b"Basic !!notbase64".to_vec(),
            400,
        ),
        (
            "GET",
            "/team/app.git/info/refs".into(),
            q,
            b"Digest username=alice".to_vec(),
            400,
        ),
        (
            "GET",
            "/team/app.git/info/refs".into(),
            q,
            basic(b"\xffalice:pw"),
            400,
        ),
        (
            "GET",
            "/team/app.git/info/refs".into(),
            q,
            b"Basic \xff\xfe".to_vec(),
            400,
        ),
        ("GET", "/nope.git/info/refs".into(), q, good.clone(), 403),
    ];
    for (method, path, query, auth, status) in cases {
        let answer = cgi(&host, method, &path, query, Some(&auth));
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert!(
            answer.body.starts_with("git2fa: "),
            "{method} {path}: {}",
            answer.body
        );
        assert!(!marker.exists(), "{method} {path} started a process");
    }
    // A path that is not UTF-8 is refused too.
    let answer = cgi(
        &host,
        "GET",
        "/team/app\u{fffd}.git/info/refs",
        q,
        Some(&good),
    );
    assert_eq!(answer.status, 400);
    // The control: a good request starts the (fake) git http-backend.
    let answer = cgi(&host, "GET", "/team/app.git/info/refs", q, Some(&good));
    assert_eq!(
        answer.status, 0,
        "git's own answer, not ours: {}",
        answer.body
    );
    let dir = host.root.join("team/app.git").canonicalize().unwrap();
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        format!("-c core.hooksPath={}/hooks http-backend\n", dir.display())
    );
}

#[test]
fn a_token_that_fails_its_checksum_is_refused_before_the_store() {
    let (host, _marker) = recording_host();
    let token = git2fa::factor::token::generate().unwrap();
    let mut typo = token.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    // The store is unreadable: a well-formed token needs it, a broken one
    // is refused without it.
    // (Its WAL, kept between processes, goes too: it would still hold
    // the pages.)
    std::fs::write(host.store_path(), "not a database at all, just text").unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", host.store_path().display()));
    }
    let broken = cgi(
        &host,
        "GET",
        "/team/app.git/info/refs",
        "service=git-upload-pack",
        Some(&basic(format!("alice:{typo}").as_bytes())),
    );
    assert_eq!(broken.status, 401, "{}", broken.body);
    assert!(
        broken
            .body
            .starts_with("git2fa: team/app.git: the access token is not a valid git2fa token"),
        "{}",
        broken.body
    );
    let whole = cgi(
        &host,
        "GET",
        "/team/app.git/info/refs",
        "service=git-upload-pack",
        Some(&basic(format!("alice:{token}").as_bytes())),
    );
    assert_eq!(whole.status, 403, "{}", whole.body);
    assert!(
        whole.body.starts_with("git2fa: 2FA check unavailable"),
        "{}",
        whole.body
    );
}

// Attack: requests refused before the decision (a path that climbs out of
// the repositories, a malformed request or token) left no audit row, so a
// probe went unseen; rows without a bound, though, let one address fill
// the disk. Each such refusal now writes one row, at most
// MAX_REFUSALS_PER_ADDRESS per address in a window, then one row saying
// the rest go unrecorded; a token typed as the user name is never stored.
#[test]
fn refusals_before_the_decision_are_audited_within_a_bound() {
    let (host, marker) = recording_host();
    let token = git2fa::factor::token::generate().unwrap();
    let mut typo = token.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let q = "service=git-upload-pack";
    let climb = cgi(
        &host,
        "GET",
        "/team/../../etc.git/info/refs",
        q,
        Some(&basic(b"alice:pw")),
    );
    assert_eq!(climb.status, 400, "{}", climb.body);
    let odd = cgi(
        &host,
        "GET",
        "/team/app.git/info/refs",
        q,
        Some(b"Basic !!!"),
    );
    assert_eq!(odd.status, 400, "{}", odd.body);
    let broken = cgi(
        &host,
        "GET",
        "/team/app.git/info/refs",
        q,
        Some(&basic(format!("{typo}:{typo}").as_bytes())),
    );
    assert_eq!(broken.status, 401, "{}", broken.body);
    let audit = host.git2fa(&["audit", "--limit", "10"]).ok().stdout;
    let lines: Vec<&str> = audit.lines().collect();
    assert!(
        lines[2].contains(
            " http - http-request refuse bad-request addr=127.0.0.1 detail=contains '..'"
        ),
        "{audit}"
    );
    assert!(
        lines[1]
            .contains(" http - http-request refuse bad-request repo=team/app.git addr=127.0.0.1"),
        "{audit}"
    );
    assert!(
        lines[0].contains(
            " http - http-request refuse token-malformed repo=team/app.git addr=127.0.0.1"
        ),
        "{audit}"
    );
    assert!(
        !audit.contains(&typo[..20]),
        "the token was stored: {audit}"
    );

    // A flood from one address: the bound, then one row, then nothing.
    let max = git2fa::store::MAX_REFUSALS_PER_ADDRESS as usize;
    for _ in 0..max + 20 {
        cgi(
            &host,
            "GET",
            "/x/../y.git/info/refs",
            q,
            Some(&basic(b"alice:pw")),
        );
    }
    let rows = host
        .git2fa(&["audit", "--json", "--since", "0"])
        .ok()
        .stdout
        .lines()
        .filter(|l| l.contains("\"http-request\""))
        .count();
    assert_eq!(
        rows,
        max + 1,
        "{max} refusals and the row that says the rest go unrecorded"
    );
    let audit = host.git2fa(&["audit", "--limit", "1"]).ok().stdout;
    assert!(audit.contains("refusals-unrecorded"), "{audit}");
    assert!(!marker.exists(), "git ran");
}
