//! `SSH_ORIGINAL_COMMAND`, untrusted input, parsed once at the edge into a
//! closed type. Anything not listed is one "disallowed command" refusal, made
//! before any process starts.

/// Commands longer than this are refused unread.
pub const MAX_LEN: usize = 4096;

/// The git services a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitService {
    UploadPack,
    ReceivePack,
    UploadArchive,
}

impl GitService {
    /// The `git` subcommand that serves it.
    pub fn subcommand(self) -> &'static str {
        match self {
            GitService::UploadPack => "upload-pack",
            GitService::ReceivePack => "receive-pack",
            GitService::UploadArchive => "upload-archive",
        }
    }

    pub fn is_write(self) -> bool {
        self == GitService::ReceivePack
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshCommand {
    /// No command: a greeting, and no shell.
    Greeting,
    Help,
    /// A git service on a repository path as the user typed it (still
    /// untrusted: `repo::path::resolve` checks it).
    Git {
        service: GitService,
        repo: String,
    },
    Verify,
    Status,
    Logout,
}

/// Why a command was refused; the text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disallowed(pub &'static str);

impl Disallowed {
    /// Not a command at all (the shell adds how to list the commands).
    pub const UNKNOWN: Disallowed = Disallowed("unknown command");
    /// What git-lfs runs over SSH (`git-lfs-authenticate`,
    /// `git-lfs-transfer`): the whole line git-lfs prints.
    pub const LFS: Disallowed = Disallowed(
        "git2fa: this host does not serve Git LFS (large files); the repository's git history works as usual. Ask an admin of this host where large files go.",
    );
}

/// Whether `line` is what a git client sends (`git-upload-pack …`, `git
/// upload-pack …`), well-formed or not: a git client reads the answer as
/// pkt-lines, a person reads plain text.
pub fn is_git_command(line: &str) -> bool {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    match (words.next(), words.next()) {
        (Some("git"), Some(sub)) => service(&format!("git-{sub}")).is_some(),
        (Some(verb), _) => service(verb).is_some(),
        _ => false,
    }
}

/// Parses a command line as sshd hands it over.
pub fn parse(line: &str) -> Result<SshCommand, Disallowed> {
    if line.len() > MAX_LEN {
        return Err(Disallowed("the command is longer than 4 KiB"));
    }
    if line.chars().any(char::is_control) {
        return Err(Disallowed("the command holds a control character"));
    }
    let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
    match words.as_slice() {
        [] => Ok(SshCommand::Greeting),
        ["help"] => Ok(SshCommand::Help),
        ["2fa", "verify"] => Ok(SshCommand::Verify),
        ["2fa", "status"] => Ok(SshCommand::Status),
        ["2fa", "logout"] => Ok(SshCommand::Logout),
        ["git-lfs-authenticate" | "git-lfs-transfer", ..] => Err(Disallowed::LFS),
        [verb, rest @ ..] => {
            let (service, args) = match (*verb, rest) {
                ("git", [sub, args @ ..]) => (service(&format!("git-{sub}")), args),
                (verb, args) => (service(verb), args),
            };
            let service = service.ok_or(Disallowed::UNKNOWN)?;
            match args {
                [path] => Ok(SshCommand::Git {
                    service,
                    repo: unquote(path)?.to_string(),
                }),
                [] => Err(Disallowed("the command names no repository")),
                _ => Err(Disallowed("the command has more than one argument")),
            }
        }
    }
}

fn service(verb: &str) -> Option<GitService> {
    match verb {
        "git-upload-pack" => Some(GitService::UploadPack),
        "git-receive-pack" => Some(GitService::ReceivePack),
        "git-upload-archive" => Some(GitService::UploadArchive),
        _ => None,
    }
}

/// `'path'` as git quotes it, or a bare path of plain characters. Quotes
/// inside, and every shell metacharacter, are refused.
fn unquote(arg: &str) -> Result<&str, Disallowed> {
    let inner = match arg.strip_prefix('\'') {
        Some(rest) => rest
            .strip_suffix('\'')
            .ok_or(Disallowed("the repository path is not quoted properly"))?,
        None => arg,
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-+@/~".contains(c);
    if inner.is_empty() || !inner.chars().all(plain) {
        return Err(Disallowed(
            "the repository path holds characters other than A-Z a-z 0-9 . _ - + @ / ~",
        ));
    }
    if inner.starts_with('-') {
        return Err(Disallowed("the repository path starts with '-'"));
    }
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_git_and_users_send() {
        let git = |service, repo: &str| {
            Ok(SshCommand::Git {
                service,
                repo: repo.into(),
            })
        };
        assert_eq!(
            parse("git-upload-pack '/team/app.git'"),
            git(GitService::UploadPack, "/team/app.git")
        );
        assert_eq!(
            parse("git-receive-pack 'team/app.git'"),
            git(GitService::ReceivePack, "team/app.git")
        );
        assert_eq!(
            parse("git upload-pack '~/app'"),
            git(GitService::UploadPack, "~/app")
        );
        assert_eq!(
            parse("git-upload-archive 'app'"),
            git(GitService::UploadArchive, "app")
        );
        assert_eq!(
            parse("git-upload-pack app.git"),
            git(GitService::UploadPack, "app.git")
        );
        assert_eq!(parse(""), Ok(SshCommand::Greeting));
        assert_eq!(parse("2fa verify"), Ok(SshCommand::Verify));
        assert_eq!(parse("2fa status"), Ok(SshCommand::Status));
        assert_eq!(parse("2fa logout"), Ok(SshCommand::Logout));
        assert_eq!(parse("help"), Ok(SshCommand::Help));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "sh",
            "bash -c id",
            "git-upload-pack",
            "git-upload-pack 'a' 'b'",
            "git-upload-pack 'a';id",
            "git-upload-pack 'a' ; id",
            "git-upload-pack 'a'\nid",
            "git-upload-pack '$(id)'",
            "git-upload-pack '`id`'",
            "git-upload-pack 'a|b'",
            "git-upload-pack 'a&b'",
            "git-upload-pack 'a'\\''b'",
            "git-upload-pack --upload-pack=id",
            "git-upload-pack '--upload-pack=id'",
            "git-upload-pack -x",
            "git upload-pack --help",
            "git-upload-pack 'a",
            "git-upload-pack \"a\"",
            "git-upload-pack 'a b'",
            "git log",
            "2fa",
            "2fa verify now",
            "2fa enroll",
            "help me",
            "scp -t /",
        ] {
            assert!(
                parse(bad).is_err(),
                "{bad:?} was accepted: {:?}",
                parse(bad)
            );
        }
        assert_eq!(
            parse(&"x".repeat(MAX_LEN + 1)),
            Err(Disallowed("the command is longer than 4 KiB"))
        );
    }

    #[test]
    fn git_commands_are_told_from_the_rest() {
        for line in [
            "git-upload-pack 'a.git'",
            "git-receive-pack '../x'",
            "git upload-pack",
            "git-upload-archive a b c",
        ] {
            assert!(is_git_command(line), "{line}");
        }
        for line in [
            "",
            "2fa",
            "2fa help",
            "help",
            "git-shell -c id",
            "git",
            "scp -t /tmp",
        ] {
            assert!(!is_git_command(line), "{line}");
        }
    }
}
