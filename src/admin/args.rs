//! The command line's grammar (clap): every command, argument and help
//! text of `git2fa`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "git2fa",
    version,
    about = "Two-factor authentication in front of Git",
    max_term_width = 100
)]
pub struct Cli {
    /// The configuration file [default: $GIT2FA_CONFIG, else /etc/git2fa/config.toml]; before the command
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create the store and secret.key (writing a commented config first if there is none)
    Init(InitArgs),
    /// Add, list and change users
    #[command(subcommand)]
    User(UserCommand),
    /// Register and remove SSH public keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create, list and revoke personal access tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show and change a repository's 2FA requirement
    #[command(subcommand)]
    Repo(RepoCommand),
    /// List and end 2FA sessions
    #[command(subcommand)]
    Session(SessionCommand),
    /// Move the store to PostgreSQL
    #[command(subcommand)]
    Store(StoreCommand),
    /// Open a 2FA session for a user with a TOTP or recovery code
    Verify {
        /// The user to open a session for
        user: String,
        /// A code from the user's authenticator app (6 digits) or a recovery code (XXXX-XXXX-XXXX)
        code: String,
    },
    /// Print the decision for a user, repository and operation, and the rule behind it
    Explain(ExplainArgs),
    /// Print audit rows, newest first; with --since or --follow, oldest first
    Audit(AuditArgs),
    /// Check the configuration, store, key, owners and permissions, repositories and hooks, sshd and the git account
    Check {
        /// The sshd configuration to read [default: sshd's own]
        #[arg(long, value_name = "FILE")]
        sshd_config: Option<PathBuf>,
        /// nginx's main configuration file to read [default: nginx's own]
        #[arg(long, value_name = "FILE")]
        nginx_config: Option<PathBuf>,
        /// Apache's main configuration file to read [default: apache2ctl's]
        #[arg(long, value_name = "FILE")]
        apache_config: Option<PathBuf>,
    },
    /// Serve the web page and smart HTTP on [web] listen, SSH on [ssh] listen, and hooks on [daemon] socket, until SIGTERM or SIGINT
    Serve,
    /// Run a throwaway host on loopback with a demo user and a 2FA-protected repository, and print what to try
    Demo {
        /// Keep the demo host in this (new or empty) directory instead of a throwaway one
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Where to serve the web page and smart HTTP
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        web: std::net::SocketAddr,
        /// Where to serve SSH
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2222")]
        ssh: std::net::SocketAddr,
    },
    /// For sshd's AuthorizedKeysCommand: print the forced-command line for a registered key
    AuthorizedKeys {
        /// The account sshd authenticates (%u); not used to find the key
        user: String,
        /// The key type (%t)
        keytype: String,
        /// The base64 key (%k)
        key: String,
        /// git2fa-shell to put in the command [default: beside this binary]
        #[arg(long, value_name = "PATH")]
        shell: Option<PathBuf>,
    },
    /// Install the git2fa hooks into every bare repository under ROOT (keeping and chaining existing hooks)
    InstallHooks {
        /// The directory to search for bare repositories (usually repos_root)
        root: PathBuf,
        /// Take the git2fa hooks out and put back what was there
        #[arg(long)]
        uninstall: bool,
        /// git2fa-hook to run [default: beside this binary]
        #[arg(long, value_name = "PATH")]
        hook_bin: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct AuditArgs {
    /// Only rows about this user
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only rows about this repository
    #[arg(long, value_name = "REPO")]
    pub repo: Option<String>,
    /// How many rows at most [default: 50; every row with --since]
    #[arg(long)]
    pub limit: Option<u32>,
    /// Rows after this row id, or from this time on (2026-12-01, 2026-12-01T08:00:00Z), oldest first
    #[arg(long, value_name = "ID|TIME")]
    pub since: Option<String>,
    /// One JSON object per line, in the schema of the admin guide (for an export)
    #[arg(long)]
    pub json: bool,
    /// Then print each new row as it is committed, until interrupted
    #[arg(long)]
    pub follow: bool,
}

#[derive(Args)]
pub struct InitArgs {
    /// repos_root for a new config file
    #[arg(long, value_name = "DIR")]
    pub repos_root: Option<PathBuf>,
    /// data_dir for a new config file
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// public_url for a new config file
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Write the commented config (mode 0644) and stop: the store and
    /// secret.key are made by a later `init` run as the account that owns them
    #[arg(long)]
    pub config_only: bool,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user (the password is read from a prompt, or stdin with --password-stdin)
    Add {
        /// The user name (letters, digits, . _ -)
        name: String,
        /// Read the password from the first line of stdin instead of a prompt
        #[arg(long)]
        password_stdin: bool,
        /// May use the admin pages of the web page
        #[arg(long)]
        admin: bool,
    },
    /// List users
    List,
    /// Show one user
    Show {
        /// The user
        name: String,
    },
    /// Disable a user: every git operation is refused
    Disable {
        /// The user
        name: String,
    },
    /// Enable a disabled user
    Enable {
        /// The user
        name: String,
    },
    /// Remove a user's 2FA (the lost-phone procedure): secret, recovery codes, sessions and tokens
    #[command(name = "reset-2fa")]
    Reset2fa {
        /// The user
        name: String,
        /// Keep the user's tokens (by default they are revoked with the rest)
        #[arg(long)]
        keep_tokens: bool,
    },
    /// Set a user's password
    SetPassword {
        /// The user
        name: String,
        /// Read the password from the first line of stdin instead of a prompt
        #[arg(long)]
        password_stdin: bool,
        /// Print a one-time link (valid 24 hours) where the user sets it
        #[arg(long, conflicts_with = "password_stdin")]
        link: bool,
    },
    /// Enrol a user now; prints the otpauth:// URI and the recovery codes
    Enroll {
        /// The user
        name: String,
    },
    /// Clear a user's failure counter and lock
    Unlock {
        /// The user
        name: String,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Register an OpenSSH public key from FILE (or - for stdin)
    Add {
        /// The user the key belongs to
        user: String,
        /// The public key file (ssh-ed25519 AAAA… comment), or - for stdin
        file: PathBuf,
        /// For a security key (sk-ssh-ed25519@openssh.com, sk-ecdsa-…): its
        /// use proves a PIN or biometric (verified) or a touch (present)
        #[arg(long, value_enum, value_name = "verified|present")]
        hardware: Option<HardwareArg>,
    },
    /// Mark a security key as proving a PIN (verified) or a touch (present), or unmark it (none)
    Mark {
        /// The key's id, as `key list` shows it (#ID)
        id: i64,
        /// What a use of the key proves
        #[arg(long, value_enum, value_name = "verified|present|none")]
        hardware: HardwareMarkArg,
    },
    /// List keys, of one user or all
    List {
        /// Only this user's keys
        user: Option<String>,
    },
    /// Remove a key by id
    Remove {
        /// The key's id, as `key list` shows it (#ID)
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it, once
    Create {
        /// The user the token acts as
        user: String,
        /// A repository pattern the token is valid for (team/app, team/*); repeatable
        #[arg(long = "repo", required = true, value_name = "PATTERN")]
        repos: Vec<String>,
        /// What the token may do
        #[arg(long, value_enum)]
        perm: PermArg,
        /// Days until it expires (0: never, when max_expiry_days = 0)
        #[arg(long, value_name = "N")]
        expires_days: Option<u32>,
        /// A label to recognise it by
        #[arg(long, default_value = "cli")]
        name: String,
        /// Mint it for a user who has not enrolled (a service account): the
        /// token then carries no second factor, and listings and the audit
        /// log say so
        #[arg(long)]
        without_2fa: bool,
    },
    /// List tokens, of one user or all
    List {
        /// Only this user's tokens
        user: Option<String>,
    },
    /// Revoke a token by id
    Revoke {
        /// The token's id, as `token list` shows it (#ID)
        id: i64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PermArg {
    Read,
    Write,
}

#[derive(Subcommand)]
pub enum RepoCommand {
    /// List the bare repositories under repos_root: what each requires, and
    /// whether its hooks are installed
    List,
    /// Show a repository's policy
    Show {
        /// The repository, as below repos_root (team/app)
        repo: String,
    },
    /// Require 2FA (for pushes, or every operation) in the repository's git2fa.toml
    Flag {
        /// The repository, as below repos_root (team/app)
        repo: String,
        /// push: pushes need 2FA; all: every clone, fetch and push
        #[arg(long, value_enum, default_value = "push")]
        require: RequireArg,
        /// With push: only these refs need 2FA (refs/heads/main, refs/tags/v*); repeatable
        #[arg(long = "ref", value_name = "PATTERN")]
        refs: Vec<String>,
    },
    /// Set require = "off" in the repository's git2fa.toml
    Unflag {
        /// The repository, as below repos_root (team/app)
        repo: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RequireArg {
    Push,
    All,
}

#[derive(Subcommand)]
pub enum SessionCommand {
    /// List open 2FA sessions, of one user or all
    List {
        /// Only this user's sessions
        user: Option<String>,
    },
    /// End a session by id, or every session of --user
    End {
        /// The session's id, as `session list` shows it
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<i64>,
        /// End every session of this user
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy this host's SQLite store into an empty PostgreSQL database; the
    /// SQLite store keeps working until [store] url names the new one
    Migrate {
        /// The PostgreSQL database, as [store] url takes it (postgres://user@host:port/db)
        #[arg(long, value_name = "URL")]
        to: String,
        /// The file holding its password (default: [store] password_file)
        #[arg(long, value_name = "FILE")]
        password_file: Option<std::path::PathBuf>,
    },
    /// Remove expired 2FA sessions (30 days after they end), web sessions,
    /// one-time links and stale wrong-password counts (git2fa serve does it
    /// every hour)
    Prune,
    /// Remove audit rows older than a time, only those that an export
    /// (git2fa audit --json) holds exactly as the store does
    PruneAudit {
        /// Rows before this time (2026-06-01, 2026-06-01T00:00:00Z)
        #[arg(long, value_name = "TIME")]
        before: String,
        /// The export: files of `git2fa audit --json` lines (one or more
        /// after it, or the option repeated)
        #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
        exported: Vec<std::path::PathBuf>,
    },
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The user
    pub user: String,
    /// The repository, as below repos_root (team/app)
    pub repo: String,
    /// The operation: read (clone, fetch) or write (push)
    #[arg(value_enum)]
    pub op: OpArg,
    /// The ref a push updates; repeatable
    #[arg(long = "ref", value_name = "REF")]
    pub refs: Vec<String>,
    /// Evaluate this token (by id) instead of an SSH key or Unix account
    #[arg(long, value_name = "ID")]
    pub token: Option<i64>,
    /// The SSH key id the request comes with (matters with bind_session =
    /// "key"; a marked security key is taken as used through OpenSSH,
    /// which holds it to its mark)
    #[arg(long, value_name = "ID")]
    pub key_id: Option<i64>,
    /// The address the request comes from (matters with bind_session = "ip")
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HardwareArg {
    Verified,
    Present,
}

impl HardwareArg {
    pub fn hardware(self) -> crate::domain::Hardware {
        match self {
            HardwareArg::Verified => crate::domain::Hardware::Verified,
            HardwareArg::Present => crate::domain::Hardware::Present,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HardwareMarkArg {
    Verified,
    Present,
    None,
}

impl HardwareMarkArg {
    pub fn hardware(self) -> Option<crate::domain::Hardware> {
        match self {
            HardwareMarkArg::Verified => Some(crate::domain::Hardware::Verified),
            HardwareMarkArg::Present => Some(crate::domain::Hardware::Present),
            HardwareMarkArg::None => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OpArg {
    Read,
    Write,
}
