//! README.md's "Run it" commands, run as a newcomer runs them: taken from
//! the README's fenced blocks when the test runs (never copied here), in
//! the project's directory, with the real cargo. The one stand-in is the
//! authenticator app: the `123456` of the verify line becomes the code of
//! the secret that `user enroll` printed a line before.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Process, Run, throwaway, wait_port};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The ```sh blocks of the README section titled `heading`.
fn blocks(heading: &str) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), line) => block.push(line.to_string()),
            (None, _) => {}
        }
    }
    blocks
}

/// `bash` running `script` in the project's directory, in its own process
/// group.
fn bash(script: &str) -> Command {
    let mut command = Command::new("bash");
    command
        .args(["-c", script])
        .current_dir(ROOT)
        .env_remove("GIT2FA_CONFIG");
    command
}

fn get_status(port: u16, path: &str) -> String {
    crate::harness::http::get(port, path)
        .status_line()
        .to_string()
}

/// The first command: the demo starts, its host passes `git2fa check`,
/// and Ctrl-C stops it and removes its directory.
fn run_the_demo(block: &[String]) {
    assert_eq!(block.len(), 1, "one command: {block:?}");
    let mut demo = Process::spawn(
        bash(&block[0])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = demo.child().stdout.take().unwrap();
    let stderr = demo.child().stderr.take().unwrap();
    // The build may come first (minutes on a fresh machine); its output
    // goes to stderr, read aside so that it never fills the pipe.
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    let Some(dir) = printed
        .lines()
        .find_map(|l| l.strip_prefix("git2fa demo: a throwaway host in "))
        .map(str::to_string)
    else {
        demo.signal(nix::sys::signal::Signal::SIGKILL);
        panic!(
            "the demo did not start:\n{printed}\n{}",
            errors.join().unwrap()
        );
    };
    assert!(printed.contains("user       alice"), "{printed}");
    assert!(printed.contains("repository hello"), "{printed}");
    let check = Command::new(Path::new(ROOT).join("target/release/git2fa"))
        .args(["--config", &format!("{dir}/config.toml"), "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "git2fa check on the demo's host:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(get_status(8080, "/login").ends_with(" 200 OK"));
    demo.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(
        demo.wait_for_exit(Duration::from_secs(30)),
        Some(0),
        "Ctrl-C stops the demo"
    );
    assert!(!Path::new(&dir).exists(), "{dir} was removed");
    let _ = errors.join();
}

/// One line of the host block, with the alias lines before it.
fn host_line(aliases: &str, line: &str) -> Run {
    Run::from(
        bash(&format!("shopt -s expand_aliases\n{aliases}{line}"))
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

/// The second block, line by line: each does what its comment says, and
/// the host ends with `check` passing and `serve` serving.
fn run_the_host_block(block: &[String]) {
    let _ = std::fs::remove_dir_all("/tmp/git2fa-try");
    let mut aliases = String::new();
    let mut secret: Option<Vec<u8>> = None;
    let mut ran = Vec::new();
    for line in block {
        let (command, comment) = match line.split_once("  #") {
            Some((command, comment)) => (command.trim_end(), comment.trim()),
            None => (line.as_str(), ""),
        };
        if command.starts_with("alias ") {
            aliases.push_str(command);
            aliases.push('\n');
            continue;
        }
        if command.ends_with(" serve") {
            serve(&aliases, command);
            ran.push(command.to_string());
            continue;
        }
        // The authenticator app: the code of the secret just enrolled.
        let command = match &secret {
            Some(secret) if command.contains(" verify ") => {
                command.replace("123456", &crate::harness::code(secret, 0))
            }
            _ => command.to_string(),
        };
        let run = host_line(&aliases, &command);
        if let Some(rule) = comment
            .strip_prefix("refused by rule ")
            .or_else(|| comment.strip_prefix("allowed by rule "))
        {
            let (verdict, rest) = comment.split_once(" by rule ").unwrap();
            let number = rule.split(':').next().unwrap();
            assert!(
                run.stdout
                    .starts_with(&format!("{verdict} by rule {number} (")),
                "{command} ({comment}): {run:?}"
            );
            assert_eq!(run.code, i32::from(verdict == "refused"), "{rest}: {run:?}");
        } else {
            assert_eq!(run.code, 0, "{command}: {run:?}");
        }
        if command.contains(" enroll ") {
            let uri = run
                .stdout
                .lines()
                .find(|l| l.starts_with("otpauth://"))
                .unwrap_or_else(|| panic!("{command} printed no otpauth:// URI: {run:?}"));
            secret = git2fa::factor::totp::secret_from_uri(uri);
        }
        if command.ends_with(" check") {
            assert!(!run.stdout.contains("problem:"), "{run:?}");
        }
        ran.push(command);
    }
    for needed in [" install-hooks ", " verify ", " check"] {
        assert!(
            ran.iter().any(|c| c.contains(needed)),
            "the host block has no{needed} line: {ran:?}"
        );
    }
    let _ = std::fs::remove_dir_all("/tmp/git2fa-try");
}

/// `g2 serve` runs until stopped: it must serve the page, then stop cleanly.
fn serve(aliases: &str, command: &str) {
    let log = std::env::temp_dir().join(format!("git2fa-readme-serve-{}.log", std::process::id()));
    let mut server = Process::spawn(
        bash(&format!("shopt -s expand_aliases\n{aliases}{command}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    wait_port(8080, command, &log);
    wait_port(2222, command, &log);
    let _ = std::fs::remove_file(&log);
    assert!(get_status(8080, "/login").ends_with(" 200 OK"));
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_for_exit(Duration::from_secs(30)), Some(0));
}

#[test]
fn the_readme_s_run_it_commands_work_as_written() {
    // The README's host lives in /tmp/git2fa-try and serves on 8080 and
    // 2222: in a throwaway root with a loopback of its own, so that a
    // reader's own try, or a server on those ports, is left alone.
    if !throwaway::enter() {
        return;
    }
    let blocks = blocks("Run it");
    assert_eq!(
        blocks.len(),
        2,
        "the demo, then a host of your own: {blocks:?}"
    );
    run_the_demo(&blocks[0]);
    run_the_host_block(&blocks[1]);
}
