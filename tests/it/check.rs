//! `git2fa check` on hosts broken the ways admins break them: each is a
//! problem (exit 1, one `problem:` line that says what to do), and a sound
//! host passes. The host's account is a real system account made for the
//! test (as the package makes `git`), since a host run by root hides what
//! a git account gets wrong.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{BIN, HOOK_BIN, Host, Run, SHELL_BIN, e2e_available, throwaway, unix_user};

/// A system account for one test, removed afterwards.
struct Account {
    name: String,
    home: PathBuf,
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

fn account(host: &Host) -> Account {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("g2c{}x{n}", std::process::id());
    let home = host.dir.path().join("home");
    let out = Command::new("useradd")
        .args(["--system", "--shell", "/bin/sh", "--home-dir"])
        .arg(&home)
        .arg(&name)
        .output()
        .expect("useradd (Debian package passwd)");
    assert!(out.status.success(), "useradd: {out:?}");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    Account { name, home }
}

/// A sound host run by its own account: hooks in place, binaries where
/// sshd will run them (a root-owned copy), an sshd configuration with our
/// snippet, the embedded SSH server off.
struct Sound {
    host: Host,
    account: Account,
    bin_dir: PathBuf,
    sshd_config: PathBuf,
}

impl Drop for Sound {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.bin_dir);
    }
}

fn sound() -> Option<Sound> {
    if !e2e_available(
        unix_user() == "root",
        "root (to make a system account)",
        "(none: run the tests as root)",
    ) || !e2e_available(
        Path::new("/usr/sbin/sshd").exists(),
        "/usr/sbin/sshd",
        "openssh-server",
    ) {
        return None;
    }
    std::fs::create_dir_all("/run/sshd").unwrap();
    let host = Host::with_policy("", "[ssh]\nlisten = \"\"\n");
    let account = account(&host);
    let bin_dir = PathBuf::from(format!(
        "/run/git2fa-check-{}-{}",
        std::process::id(),
        account.name
    ));
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::set_permissions(&bin_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for bin in [BIN, SHELL_BIN, HOOK_BIN] {
        std::fs::copy(bin, bin_dir.join(Path::new(bin).file_name().unwrap())).unwrap();
    }
    host.bare_repo("team/app.git");
    host.git2fa(&[
        "install-hooks",
        &host.root.display().to_string(),
        "--hook-bin",
        &bin_dir.join("git2fa-hook").display().to_string(),
    ])
    .ok();
    // The host's files are the account's, as the package makes them.
    {
        std::fs::set_permissions(host.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new("chown")
            .args(["-R", &format!("{}:", account.name)])
            .args([&host.root, &host.data, &host.config, &account.home])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let host_key = host.dir.path().join("ssh_host_ed25519_key");
    crate::harness::sshd::keygen(&host_key);
    let snippet = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("install/sshd_config.conf"),
    )
    .unwrap()
    .replace("Match User git", &format!("Match User {}", account.name))
    .replace(
        "AuthorizedKeysCommandUser git",
        &format!("AuthorizedKeysCommandUser {}", account.name),
    )
    .replace("/usr/local/bin/", &format!("{}/", bin_dir.display()))
    .replace(
        "/etc/git2fa/config.toml",
        &host.config.display().to_string(),
    );
    let sshd_config = host.dir.path().join("sshd_config");
    std::fs::write(
        &sshd_config,
        format!("HostKey {}\nUsePAM no\n{snippet}", host_key.display()),
    )
    .unwrap();
    Some(Sound {
        host,
        account,
        bin_dir,
        sshd_config,
    })
}

impl Sound {
    fn check(&self) -> Run {
        self.host.git2fa(&[
            "check",
            "--sshd-config",
            &self.sshd_config.display().to_string(),
        ])
    }

    /// `check` exits 1 with one problem, which says `what`.
    #[track_caller]
    fn one_problem(&self, what: &str) {
        let run = self.check();
        assert_eq!(run.code, 1, "{run:?}");
        let problems: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("problem: "))
            .collect();
        assert_eq!(problems.len(), 1, "{run:?}");
        assert!(problems[0].contains(what), "{what:?} not in {problems:?}");
        assert_eq!(run.stderr, "git2fa: 1 problem found\n");
    }
}

#[test]
fn a_sound_host_passes() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let run = s.check();
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        &format!("ok: sshd asks git2fa for {}'s keys", s.account.name),
        "ok: the git2fa binaries and their directories are root's alone",
        &format!("ok: {} logs in with /bin/sh", s.account.name),
        "ok: every repository has the git2fa hooks, and they can run",
        "ok: git_bin ",
    ] {
        assert!(run.stdout.contains(line), "{line:?}:\n{}", run.stdout);
    }
}

// Attack: a line left in the git account's own ~/.ssh/authorized_keys, with
// no git2fa-shell forced command, gave `ssh git@host 'cat
// /var/lib/git2fa/secret.key'` a shell that read the key; check said all
// was well.
#[test]
fn a_key_in_the_git_account_s_own_authorized_keys_is_a_shell() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let file = s.account.home.join(".ssh/authorized_keys");
    std::fs::write(
        &file,
        format!(
            "# the admin's old key\n{} admin@laptop\n",
            crate::harness::ED25519_PUBLIC
        ),
    )
    .unwrap();
    s.one_problem(&format!(
        "{}:2 gives a shell as {}",
        file.display(),
        s.account.name
    ));
    // Forced through git2fa-shell, the same key is no shell.
    std::fs::write(
        &file,
        format!(
            "command=\"/usr/local/bin/git2fa-shell --key-id 1 --fingerprint SHA256:x\",restrict {}\n",
            crate::harness::ED25519_PUBLIC
        ),
    )
    .unwrap();
    assert_eq!(s.check().code, 0);
    // Copied by hand with a hardware claim but not the option that makes
    // sshd check it: git2fa-shell would count a touch or PIN nobody gave.
    std::fs::write(
        &file,
        format!(
            "command=\"/usr/local/bin/git2fa-shell --key-id 1 --fingerprint SHA256:x --hardware verified\",restrict {}\n",
            crate::harness::ED25519_PUBLIC
        ),
    )
    .unwrap();
    s.one_problem(&format!(
        "{}:1 written by hand, claims a security key's touch or PIN",
        file.display()
    ));
}

#[test]
fn sshd_that_does_not_ask_git2fa_for_keys() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let text = std::fs::read_to_string(&s.sshd_config).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.contains("AuthorizedKeysCommand"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&s.sshd_config, without).unwrap();
    s.one_problem(&format!(
        "sshd does not ask git2fa for {}'s keys",
        s.account.name
    ));
}

#[test]
fn hook_stubs_that_run_a_missing_binary_or_config() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    // The binary the stubs name is gone (moved without install-hooks again).
    std::fs::rename(s.bin_dir.join("git2fa-hook"), s.bin_dir.join("moved")).unwrap();
    s.one_problem("runs ");
    std::fs::rename(s.bin_dir.join("moved"), s.bin_dir.join("git2fa-hook")).unwrap();
    assert_eq!(s.check().code, 0);
    // The config the stubs name moved: every push would fail.
    let elsewhere = s.host.config.with_extension("moved");
    std::fs::rename(&s.host.config, &elsewhere).unwrap();
    let run = Command::new(BIN)
        .args([
            "--config",
            &elsewhere.display().to_string(),
            "check",
            "--sshd-config",
        ])
        .arg(&s.sshd_config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("names the config "), "{stdout}");
}

#[test]
fn a_store_owned_by_another_account() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let out = Command::new("chown")
        .args(["nobody:", &s.host.store_path().display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    // (The account cannot open it either: that is a problem line too.)
    let run = s.check();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "{} belongs to nobody, not to {}",
            s.host.store_path().display(),
            s.account.name
        )),
        "{run:?}"
    );
}

#[test]
fn a_git_bin_that_is_not_there() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let text = std::fs::read_to_string(&s.host.config).unwrap();
    let git = crate::harness::git_path().display().to_string();
    std::fs::write(
        &s.host.config,
        text.replace(
            &format!("git_bin = {git:?}"),
            "git_bin = \"/usr/lib/nothing/git\"",
        ),
    )
    .unwrap();
    s.one_problem("git_bin /usr/lib/nothing/git is not an executable file");
}

#[test]
fn a_git_account_that_cannot_run_the_forced_command() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    for shell in ["/usr/sbin/nologin", "/usr/bin/git-shell"] {
        let out = Command::new("usermod")
            .args(["-s", shell, &s.account.name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        s.one_problem(&format!("the login shell of {} is {shell}", s.account.name));
    }
}

#[test]
fn binaries_others_can_write() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    std::fs::set_permissions(&s.bin_dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    s.one_problem(&format!(
        "{} can be written by others than root",
        s.bin_dir.display()
    ));
}

#[test]
fn a_daemon_socket_nobody_answers() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let socket = s.host.dir.path().join("hook.sock");
    let mut text = std::fs::read_to_string(&s.host.config).unwrap();
    text.push_str(&format!("[daemon]\nsocket = {socket:?}\n"));
    std::fs::write(&s.host.config, text).unwrap();
    s.one_problem(&format!(
        "nothing answers on [daemon] socket {}",
        socket.display()
    ));
    let run = s.check();
    assert!(run.stdout.contains("note: [daemon] socket is set: pushes by Unix accounts are checked by hooks, which a user who can write a repository can skip"), "{}", run.stdout);
}

// Attack: config.toml left writable by everyone (mode 0666): any local
// account sets git_bin to a program of its own, which git2fa then runs as
// git for the next operation, with the store and secret.key in reach.
#[test]
fn a_config_others_may_write() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    std::fs::set_permissions(&s.host.config, std::fs::Permissions::from_mode(0o666)).unwrap();
    s.one_problem(&format!(
        "config {c} has mode 666: any local account may change it, and git_bin runs as git for every operation; run chmod 644 {c} and chown root:root {c}",
        c = s.host.config.display()
    ));
}

#[test]
fn trusting_remote_user_is_named() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let mut text = std::fs::read_to_string(&s.host.config).unwrap();
    text.push_str("[http]\ntrust_remote_user = true\n");
    std::fs::write(&s.host.config, text).unwrap();
    let run = s.check();
    assert!(
        run.stdout.contains(
            "note: [http] trust_remote_user = true: the hooks take the pusher from REMOTE_USER"
        ) && run
            .stdout
            .contains("else set it to false and use git2fa-http"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_repository_git_will_not_serve_as_the_account() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let repo = s.host.root.join("team/app.git");
    let out = Command::new("chown")
        .args(["-R", "root:"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(out.status.success());
    s.one_problem(&format!(
        "{r} is not {n}'s: git refuses such a repository (\"detected dubious ownership\") when git2fa runs it as {n}; run chown -R {n}: {r}",
        r = repo.display(),
        n = s.account.name
    ));
}

// Attack: PasswordAuthentication yes for the git account, which has a
// password: `ssh git@host` with the password gets git's login shell
// (/bin/sh), past git2fa-shell, with the store in reach.
#[test]
fn password_logins_to_the_git_account() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let text = std::fs::read_to_string(&s.sshd_config).unwrap();
    std::fs::write(
        &s.sshd_config,
        text.replace("PasswordAuthentication no", "PasswordAuthentication yes"),
    )
    .unwrap();
    // Without a password, nothing gets in that way.
    assert_eq!(s.check().code, 0);
    let hash = Command::new("openssl")
        .args(["passwd", "-6", "a password"])
        .output()
        .unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap();
    let out = Command::new("usermod")
        .args(["-p", hash.trim(), &s.account.name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    s.one_problem(&format!(
        "sshd accepts passwords for {n} and the account has one: a password log-in gets a shell as {n}, past git2fa; run passwd -l {n} and set PasswordAuthentication no",
        n = s.account.name
    ));
    // Refused from this host, taken from everywhere else: still a problem.
    std::fs::write(
        &s.sshd_config,
        text.replace(
            "UsePAM no\n",
            "UsePAM no\nMatch Address 127.0.0.1\n    PasswordAuthentication no\n",
        )
        .replace("    PasswordAuthentication no\n    Kbd", "    Kbd"),
    )
    .unwrap();
    s.one_problem(&format!(
        "sshd accepts passwords for {n} and the account has one",
        n = s.account.name
    ));
}

#[test]
fn a_data_dir_owned_by_root_is_given_back_to_the_account() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    let out = Command::new("chown")
        .arg("root:")
        .arg(&s.host.data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let run = s.check();
    assert_eq!(run.code, 1, "{run:?}");
    let line = format!(
        "problem: data_dir {} belongs to root, the store or repositories to {n}; git2fa runs as the account that owns data_dir; run chown -R {n}:{n} {} {}",
        s.host.data.display(),
        s.host.data.display(),
        s.host.root.display(),
        n = s.account.name
    );
    assert!(run.stdout.contains(&line), "{line}\n{}", run.stdout);
    assert!(!run.stdout.contains("chown -R root"), "{}", run.stdout);
}

/// `check` with the web server configuration `kind` (nginx or Apache)
/// in `file`.
fn check_with(s: &Sound, kind: &str, file: &Path) -> Run {
    s.host.git2fa(&[
        "check",
        "--sshd-config",
        &s.sshd_config.display().to_string(),
        &format!("--{kind}-config"),
        &file.display().to_string(),
    ])
}

#[test]
fn web_server_blocks_that_miss_paths_of_the_page() {
    if !throwaway::enter() {
        return;
    }
    let Some(s) = sound() else { return };
    if !crate::harness::nginx::available() || !crate::harness::apache::available() {
        return;
    }
    let dir = s.host.dir.path();
    let nginx = |block: &str| {
        let file = dir.join("nginx.conf");
        std::fs::write(
            &file,
            format!(
                "pid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\nevents {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:1;\n{block}\n }}\n}}\n",
                d = dir.display()
            ),
        )
        .unwrap();
        check_with(&s, "nginx", &file)
    };
    let git_block = crate::harness::shipped("nginx-git2fa.conf").replace(
        "include fastcgi_params;",
        "include /etc/nginx/fastcgi_params;",
    );
    let good = nginx(&(crate::harness::shipped("nginx-git2fa-web.conf") + &git_block));
    assert_eq!(good.code, 0, "{good:?}");
    for line in [
        "ok: nginx passes every path of the web page to git2fa serve (127.0.0.1:8080)",
        "ok: nginx runs git2fa-http for git over HTTPS at /git/",
    ] {
        assert!(good.stdout.contains(line), "{line}\n{}", good.stdout);
    }
    // Attack: a location that runs git http-backend itself (the usual
    // nginx recipe for smart HTTP) next to git2fa's: every repository is
    // read and pushed there with no second factor and no audit row.
    let bypass = nginx(&format!(
        "{git_block}\n  location ~ ^/plain(/.*)$ {{\n    include /etc/nginx/fastcgi_params;\n    \
         fastcgi_pass unix:/run/fcgiwrap.socket;\n    \
         fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;\n    \
         fastcgi_param GIT_PROJECT_ROOT {};\n    fastcgi_param PATH_INFO $1;\n  }}",
        s.host.root.display()
    ));
    assert_eq!(bypass.code, 1, "{bypass:?}");
    assert!(
        bypass.stdout.contains("problem: nginx runs git http-backend itself at ~ ^/plain(/.*)$: git over HTTPS there is not checked by git2fa (no second factor, no tokens, no audit); include /etc/git2fa/nginx/git.conf (git2fa-http) in its place"),
        "{}",
        bypass.stdout
    );
    // git2fa-http under Debian's shared fcgiwrap runs as www-data.
    let shared = nginx(&git_block.replace(
        "unix:/run/git2fa-fcgiwrap.sock",
        "unix:/run/fcgiwrap.socket",
    ));
    assert_eq!(shared.code, 1, "{shared:?}");
    assert!(
        shared.stdout.contains("problem: nginx gives git2fa-http to Debian's shared fcgiwrap (/run/fcgiwrap.socket), which runs it as www-data"),
        "{}",
        shared.stdout
    );
    // The page passed to an upstream: where it leads is not known.
    let file = dir.join("nginx-upstream.conf");
    std::fs::write(
        &file,
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\nevents {{}}\nhttp {{\n \
             upstream pages {{ server 127.0.0.1:8080; }}\n server {{\n  listen 127.0.0.1:1;\n  \
             location / {{\n   proxy_pass http://pages;\n  }}\n }}\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let upstream = check_with(&s, "nginx", &file);
    assert!(
        upstream.stdout.contains(
            "note: nginx passes / to http://pages on to servers check cannot follow: not checked"
        ),
        "{}",
        upstream.stdout
    );
    // The block the guide once gave: no /webauthn.js, no /.
    let old = crate::harness::shipped("nginx-git2fa-web.conf")
        .replace("|webauthn\\.js", "")
        .replace("|\\.well-known/oauth-authorization-server", "");
    let old = old[old.find("location ~").unwrap()..].to_string();
    let run = nginx(&old);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("problem: nginx passes part of the web page to git2fa serve (127.0.0.1:8080) but not /, /webauthn.js, /.well-known/oauth-authorization-server (without /webauthn.js security keys do nothing)"),
        "{}",
        run.stdout
    );

    let apache = |modules: &[&str]| {
        let file = dir.join("httpd.conf");
        let modules: String = modules
            .iter()
            .map(|m| format!("LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"))
            .collect();
        std::fs::write(
            &file,
            format!(
                "ServerRoot /etc/apache2\nServerName 127.0.0.1\n{modules}Listen 127.0.0.1:1\n\
                 PidFile {d}/httpd.pid\nErrorLog {d}/httpd-error.log\nMutex file:{d}\n{}\n",
                crate::harness::shipped("apache-git2fa-web.conf"),
                d = dir.display()
            ),
        )
        .unwrap();
        check_with(&s, "apache", &file)
    };
    let good = apache(&["mpm_prefork", "authz_core", "proxy", "proxy_http"]);
    assert_eq!(good.code, 0, "{good:?}");
    assert!(
        good.stdout
            .contains("ok: Apache passes every path of the web page to git2fa serve"),
        "{}",
        good.stdout
    );
    // git-http-backend(1)'s own Apache examples, with no git2fa in front:
    // for git2fa's repositories a problem, for others a note.
    let file = dir.join("httpd.conf");
    let text = std::fs::read_to_string(&file).unwrap();
    let backend = |root: &str, alias: &str| {
        std::fs::write(
            &file,
            text.replace(
                "Listen 127.0.0.1:1",
                &format!(
                    "LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so\n\
                     LoadModule env_module /usr/lib/apache2/modules/mod_env.so\nListen 127.0.0.1:1\n\
                     SetEnv GIT_PROJECT_ROOT {root}\n{alias}"
                ),
            ),
        )
        .unwrap();
        check_with(&s, "apache", &file)
    };
    let root = s.host.root.display().to_string();
    let bypass = backend(
        &root,
        "ScriptAlias /git/ /usr/lib/git-core/git-http-backend/",
    );
    assert_eq!(bypass.code, 1, "{bypass:?}");
    assert!(
        bypass.stdout.contains("problem: Apache runs git http-backend itself at /git/: git over HTTPS there is not checked by git2fa"),
        "{}",
        bypass.stdout
    );
    let matched = backend(
        &root,
        "ScriptAliasMatch \"(?x)^/git/(.*/(HEAD | info/refs | objects/info/[^/]+ | git-(upload|receive)-pack))$\" /usr/lib/git-core/git-http-backend/$1",
    );
    assert_eq!(matched.code, 1, "{matched:?}");
    assert!(
        matched
            .stdout
            .contains("problem: Apache runs git http-backend itself at (?x)^/git/"),
        "{}",
        matched.stdout
    );
    let other = backend(
        "/srv/other",
        "ScriptAlias /other/ /usr/lib/git-core/git-http-backend/",
    );
    assert_eq!(other.code, 0, "{other:?}");
    assert!(
        other.stdout.contains("note: Apache runs git http-backend itself at /other/ (/srv/other), for repositories outside repos_root"),
        "{}",
        other.stdout
    );
    let run = apache(&["mpm_prefork", "authz_core"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "note: Apache's configuration would pass the web page to git2fa serve (127.0.0.1:8080), but mod_proxy_http is not enabled, so it passes nothing"
        ),
        "{}",
        run.stdout
    );
}
