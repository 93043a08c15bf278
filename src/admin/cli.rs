//! The admin CLI, `git2fa`: parses the command line and hands each command
//! to its module. Exit codes: 0 done, 1 refused or not found, 2 usage or
//! configuration error (docs/design.md "Admin CLI").

use std::process::ExitCode;

use clap::Parser;

use super::args::{Cli, Command};
use super::support::{CliResult, Failure};
use super::{demo, init, inspect, keys, migrate, repos, sessions, tokens, users};
use crate::system::config::Config;

/// Runs the CLI with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // sshd drops what an AuthorizedKeysCommand writes to stderr at its
        // default log level: the causes go to syslog (and GIT2FA_LOG_FILE).
        Command::AuthorizedKeys { .. } => crate::system::syslog::init("git2fa-authorized-keys"),
        // The servers say what they listen on and when they stop.
        Command::Serve | Command::Demo { .. } => init_logging("warn,git2fa=info"),
        _ => init_logging("warn"),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("git2fa: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Log lines go to stderr, each with its time (UTC) and level, and to
/// `[log] file` when the config names one; `GIT2FA_LOG` (like `RUST_LOG`)
/// sets the level. A message is one line: control characters in it (a
/// newline in what a client sent, say) become spaces, so that no client
/// can write a line of its own into the journal.
pub fn init_logging(default: &str) {
    use std::io::Write;
    let env = env_logger::Env::default().filter_or("GIT2FA_LOG", default);
    let _ = env_logger::Builder::from_env(env)
        .format(|out, record| {
            let message = crate::system::syslog::one_line(&record.args().to_string());
            crate::system::syslog::also_to_file(record.level(), &message);
            writeln!(
                out,
                "{}",
                stderr_line(record.level(), record.target(), &message)
            )
        })
        .try_init();
}

/// `TIME LEVEL target: message` (UTC), the message made one line.
fn stderr_line(level: log::Level, target: &str, message: &str) -> String {
    format!(
        "{} {level} {target}: {}",
        crate::system::time::format_rfc3339(crate::system::time::now()),
        crate::system::syslog::one_line(message)
    )
}

/// One command. `init`, `demo` and `authorized-keys` run before (or
/// without) a loaded config; the others load it first.
fn run(cli: Cli) -> CliResult {
    let config_path = Config::locate(cli.config.as_deref());
    let load = || Config::load(&config_path);
    match cli.command {
        Command::Init(args) => init::init(&config_path, &args),
        Command::Demo { dir, web, ssh } => {
            // The demo writes a config of its own; one given would be ignored.
            if cli.config.is_some() {
                return Err(Failure::usage(
                    "demo makes its own configuration (in --dir, or a throwaway directory); leave out --config",
                ));
            }
            demo::run(demo::Options { dir, web, ssh }).map_err(Failure::usage)
        }
        Command::AuthorizedKeys {
            user,
            keytype,
            key,
            shell,
        } => {
            keys::authorized_keys(&config_path, &user, &keytype, &key, shell.as_deref());
            Ok(())
        }
        Command::User(command) => users::user(&load()?, command),
        Command::Key(command) => keys::key(&load()?, command),
        Command::Token(command) => tokens::token_command(&load()?, command),
        Command::Repo(command) => repos::repo(&load()?, command),
        Command::Session(command) => sessions::session(&load()?, command),
        Command::Store(command) => migrate::store(&load()?, command),
        Command::Verify { user, code } => sessions::verify(&load()?, &user, &code),
        Command::Explain(args) => inspect::explain(&load()?, &args),
        Command::Audit(args) => inspect::audit(&load()?, &args),
        Command::Check {
            sshd_config,
            nginx_config,
            apache_config,
        } => inspect::check(
            &load()?,
            crate::admin::check::Options {
                sshd_config,
                nginx_config,
                apache_config,
            },
        ),
        Command::Serve => {
            crate::transport::exec::fix_malloc_threshold();
            let config = load()?;
            let listeners = crate::serve::Listeners::bind(&config)?;
            Ok(crate::serve::run(config, listeners)?)
        }
        Command::InstallHooks {
            root,
            uninstall,
            hook_bin,
        } => repos::install_hooks(&load()?, &root, uninstall, hook_bin),
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::Cli;
    use clap::CommandFactory;

    /// `--help` describes every argument of every command, and `demo`,
    /// which makes its own config, does not offer `--config`.
    #[test]
    fn every_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let cli = Cli::command();
        let mut missing = Vec::new();
        walk(&cli, "git2fa", &mut missing);
        assert!(missing.is_empty(), "no help for: {missing:?}");
        let demo = cli.find_subcommand("demo").unwrap();
        assert!(demo.get_arguments().all(|a| a.get_id() != "config"));
    }

    #[test]
    fn a_log_line_is_one_line_whatever_a_client_sent() {
        // Attack: a signed-in user sends a security key's answer whose
        // JSON holds "x\n2026-12-04T10:00:00Z WARN git2fa: admin alice
        // logged in"; serve logs the parser's error, which quotes it, and
        // the journal shows a line the attacker wrote.
        let line = super::stderr_line(
            log::Level::Warn,
            "git2fa::web",
            "bad answer: unknown variant `x\n2026-12-04T10:00:00Z WARN git2fa: forged`",
        );
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.ends_with("WARN git2fa::web: bad answer: unknown variant `x 2026-12-04T10:00:00Z WARN git2fa: forged`"),
            "{line}"
        );
    }
}
