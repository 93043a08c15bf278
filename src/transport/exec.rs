//! Starting other programs: git, by absolute path with a cleared environment
//! plus an explicit allow-list, and a repository's own hook that git2fa
//! chains to. The only module that spawns processes.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::system::config::Config;
use crate::transport::identity::Identity;
use crate::transport::ssh_command::GitService;

/// The only `PATH` git and hooks see: fixed, never the client's.
pub const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A git program ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitInvocation {
    pub git_bin: PathBuf,
    pub args: Vec<OsString>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl GitInvocation {
    /// `git upload-pack|receive-pack|upload-archive DIR` for SSH.
    /// `git_protocol` is the client's `GIT_PROTOCOL`, the one variable a
    /// client may pass; it is dropped unless it looks like one.
    pub fn ssh(
        config: &Config,
        service: GitService,
        repo_dir: &Path,
        identity: &Identity,
        git_protocol: Option<&str>,
    ) -> GitInvocation {
        let mut env = base_env(config, identity);
        if let Some(protocol) = git_protocol.filter(|p| valid_git_protocol(p)) {
            env.push(("GIT_PROTOCOL".into(), protocol.into()));
        }
        GitInvocation {
            git_bin: config.git_bin.clone(),
            args: vec![
                "-c".into(),
                hooks_path_setting(repo_dir),
                service.subcommand().into(),
                repo_dir.into(),
            ],
            dir: repo_dir.to_path_buf(),
            env,
        }
    }

    /// `git http-backend` with the CGI variables it needs (`cgi`, already
    /// checked by the caller) and the identity for the hooks.
    pub fn http_backend(
        config: &Config,
        project_root: &Path,
        repo_dir: &Path,
        cgi: Vec<(String, String)>,
        identity: &Identity,
    ) -> GitInvocation {
        let mut env = base_env(config, identity);
        env.push((
            "GIT_PROJECT_ROOT".into(),
            project_root.to_string_lossy().into_owned(),
        ));
        env.push(("GIT_HTTP_EXPORT_ALL".into(), "1".into()));
        env.push(("REMOTE_USER".into(), identity.user.clone()));
        env.extend(cgi);
        GitInvocation {
            git_bin: config.git_bin.clone(),
            args: vec![
                "-c".into(),
                hooks_path_setting(repo_dir),
                "http-backend".into(),
            ],
            dir: project_root.to_path_buf(),
            env,
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.git_bin);
        command
            .args(&self.args)
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Replaces this process with git. Returns only on failure.
    pub fn exec(&self) -> std::io::Error {
        use std::os::unix::process::CommandExt;
        self.command().exec()
    }

    /// Runs git with this process's standard streams and waits for it,
    /// for at most `max`: then git is killed and `on_timeout` runs. Returns
    /// git's exit code (1 when it was killed).
    pub fn run_for_at_most(
        &self,
        max: std::time::Duration,
        on_timeout: impl FnOnce() + Send,
    ) -> std::io::Result<u8> {
        use std::os::unix::process::CommandExt;
        let mut child = self.command().process_group(0).spawn()?;
        let status = wait_at_most(&mut child, max, on_timeout)?;
        Ok(status.code().map_or(1, |c| c.clamp(0, 255) as u8))
    }
}

/// Waits for `child`, for at most `max`: then its process group is killed
/// (SIGKILL: git and what it started, `index-pack` or `pack-objects`), and
/// `on_timeout` runs first. The child must lead its own process group.
pub fn wait_at_most(
    child: &mut std::process::Child,
    max: std::time::Duration,
    on_timeout: impl FnOnce() + Send,
) -> std::io::Result<std::process::ExitStatus> {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    use std::sync::Mutex;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Set once the child has exited; until then it is not reaped, so its
    // pid cannot belong to another process when the watchdog kills.
    let exited = Mutex::new(false);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog_sees = &exited;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if finished.recv_timeout(max).is_ok() {
                return;
            }
            let exited = watchdog_sees.lock().unwrap_or_else(|e| e.into_inner());
            if !*exited {
                on_timeout();
                let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            }
        });
        // Wait for the exit without reaping it.
        while let Err(nix::errno::Errno::EINTR) =
            waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        {}
        *exited.lock().unwrap_or_else(|e| e.into_inner()) = true;
        let _ = done.send(());
    });
    child.wait()
}

/// `core.hooksPath=<repo>/hooks`: git runs the repository's own hooks
/// directory, whatever `/etc/gitconfig` or the repository's config say, so a
/// `core.hooksPath` elsewhere cannot skip the git2fa hooks that the shims
/// rely on for protected refs.
fn hooks_path_setting(repo_dir: &Path) -> OsString {
    let mut setting = OsString::from("core.hooksPath=");
    setting.push(repo_dir.join("hooks"));
    setting
}

fn base_env(config: &Config, identity: &Identity) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), SAFE_PATH.into()),
        (
            "GIT2FA_CONFIG".into(),
            config.path.to_string_lossy().into_owned(),
        ),
    ];
    env.extend(
        identity
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    env
}

/// `version=2`, `version=2:foo=bar`: what git sends; nothing else passes.
pub fn valid_git_protocol(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=:._-".contains(c))
}

/// Runs git to completion with a cleared environment plus `env`; an error
/// carries what git printed.
pub fn run_git(
    config: &Config,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(), String> {
    let out = Command::new(&config.git_bin)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", config.git_bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs a chained hook with the same arguments and standard input git gave
/// ours; its output goes where ours goes.
pub fn run_hook(path: &Path, args: &[String], stdin: &[u8]) -> std::io::Result<ExitStatus> {
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        // A hook may exit without reading its input; that is its right.
        let _ = input.write_all(stdin);
    }
    child.wait()
}

/// The full program, `git2fa`, in this program's directory.
fn full_program() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name("git2fa"))
}

/// Hands this operation to `git2fa` beside this program, started as
/// `name` with `args`: it decides directly. Without `input` this process
/// becomes it (`exec`: the same process id, streams untouched); with
/// `input` (what this process read of its standard input already) it runs
/// as a child that reads `input` first, and its exit code is returned.
pub fn hand_over(
    name: &str,
    args: &[OsString],
    input: Option<&[u8]>,
) -> std::io::Result<std::process::ExitCode> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(full_program()?);
    command.arg0(name).args(args);
    let Some(input) = input else {
        return Err(command.exec());
    };
    let mut child = command.stdin(Stdio::piped()).spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // It may stop reading early (a refusal); that is its right.
        let _ = stdin.write_all(input);
    }
    let status = child.wait()?;
    Ok(std::process::ExitCode::from(
        status.code().map_or(1, |c| c.clamp(0, 255) as u8),
    ))
}

/// glibc's malloc takes this variable as a fixed mmap threshold.
const MMAP_THRESHOLD: &str = "MALLOC_MMAP_THRESHOLD_";
/// And this one as the most heaps ("arenas") it keeps for threads.
const ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// Starts this program again, in place (the same process id), with
/// glibc's mmap threshold fixed at 128 KiB, unless it is set already: a
/// long-lived server's memory then goes back to the system after bursts.
///
/// glibc raises its threshold each time a large block is freed, up to
/// 32 MiB: after the first password hash (a 19 MiB block), every block
/// under 19 MiB (SQLite's page caches, response buffers) came from the
/// allocator's heaps and stayed there. Measured on `git2fa serve`: after
/// two bursts of 40 concurrent log-ins, 143 MiB held with the adaptive
/// threshold, 54 MiB with the fixed one. Its heaps are capped at two
/// (`MALLOC_ARENA_MAX`) unless set: glibc makes up to eight per core, one
/// for each thread that allocates while the others' are busy, and keeps
/// what each once held; serve's blocking threads come and go by the
/// hundred under load. Returns only if the new start failed (the server
/// then runs as it is).
pub fn fix_malloc_threshold() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(MMAP_THRESHOLD).is_some() {
        return;
    }
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    let mut command = Command::new(program);
    command
        .args(std::env::args_os().skip(1))
        .env(MMAP_THRESHOLD, "131072");
    if std::env::var_os(ARENA_MAX).is_none() {
        command.env(ARENA_MAX, "2");
    }
    let error = command.exec();
    log::warn!(
        "could not fix malloc's mmap threshold ({error}); memory may stay high after bursts"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_protocol_values_pass() {
        assert!(valid_git_protocol("version=2"));
        assert!(valid_git_protocol("version=2:object-format=sha256"));
        assert!(!valid_git_protocol(""));
        assert!(!valid_git_protocol("version=2 ; id"));
        assert!(!valid_git_protocol("x\ny"));
    }
}
