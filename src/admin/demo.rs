//! `git2fa demo`: a whole host in a throwaway directory — a config, a store,
//! a demo user with a printed password and an SSH key, a repository that
//! requires 2FA for everything, with a few commits — served on loopback by
//! `git2fa serve`, with step-by-step instructions.

use super::support::say_part;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::{LineEnding, PrivateKey};

use crate::factor::crypto::{self, SecretKey};
use crate::factor::sshkey;
use crate::serve::{self, Listeners};
use crate::store::Store;
use crate::system::config::Config;
use crate::system::time::now;

/// The demo user and repository: two names, so that messages read well
/// ("hello requires 2FA … alice has not set up 2FA").
pub const USER: &str = "alice";
pub const REPO: &str = "hello";

pub struct Options {
    /// Keep everything here instead of a directory removed at the end.
    pub dir: Option<PathBuf>,
    pub web: SocketAddr,
    pub ssh: SocketAddr,
}

pub fn run(options: Options) -> Result<(), String> {
    let (dir, throwaway) = match &options.dir {
        Some(dir) => {
            if dir.exists() && std::fs::read_dir(dir).map_err(|e| e.to_string())?.count() > 0 {
                return Err(format!(
                    "{} is not empty; give an empty or new directory",
                    dir.display()
                ));
            }
            (dir.clone(), false)
        }
        None => {
            let suffix: String = crypto::random_bytes::<4>()
                .map_err(|e| e.to_string())?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (
                std::env::temp_dir().join(format!("git2fa-demo-{suffix}")),
                true,
            )
        }
    };
    create_dir(&dir, 0o755)?;
    let dir = dir.canonicalize().map_err(|e| e.to_string())?;
    let result = build_and_serve(&dir, &options);
    if throwaway {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("git2fa demo: removed {}", dir.display());
    }
    result
}

fn build_and_serve(dir: &Path, options: &Options) -> Result<(), String> {
    // Bound first, so that port 0 works and the instructions name the
    // ports the server really has.
    let web = serve::bind_tcp(options.web).map_err(|e| e.to_string())?;
    let ssh = serve::bind_tcp(options.ssh).map_err(|e| e.to_string())?;
    let web_addr = web.local_addr().map_err(|e| e.to_string())?;
    let ssh_addr = ssh.local_addr().map_err(|e| e.to_string())?;
    let config = write_config(dir, web_addr, ssh_addr)?;
    let password = set_up_store(&config, dir)?;
    make_repo(&config)?;
    install_hooks(&config)?;
    let host_keys = serve::ssh::host_keys(&config.data_dir).map_err(|e| e.to_string())?;
    let known_hosts: String = host_keys
        .iter()
        .map(|key| {
            format!(
                "[{}]:{} {}\n",
                ssh_addr.ip(),
                ssh_addr.port(),
                serve::ssh::public_line(key)
            )
        })
        .collect();
    std::fs::write(dir.join("known_hosts"), known_hosts).map_err(|e| e.to_string())?;
    say_part!("{}", instructions(dir, web_addr, ssh_addr, &password));
    use std::io::Write;
    let _ = std::io::stdout().flush();
    serve::run(
        config,
        Listeners {
            web,
            ssh: Some(ssh),
            hooks: None,
            store: None,
            metrics: None,
            decide: None,
        },
    )
    .map_err(|e| e.to_string())
}

fn create_dir(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn write_config(dir: &Path, web: SocketAddr, ssh: SocketAddr) -> Result<Config, String> {
    let quote = |s: &str| toml_edit::Value::from(s).to_string().trim().to_string();
    let git = ["/usr/bin/git", "/usr/local/bin/git", "/bin/git"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or("git is not installed (Debian package: git)")?;
    let text = format!(
        "# git2fa demo: a throwaway host.\n\
         repos_root = {}\n\
         data_dir = {}\n\
         public_url = {}\n\
         git_bin = {}\n\n\
         [policy]\ngit = \"flagged\"\n\n\
         [tokens]\n# The demo user may clone over HTTP with the password while a 2FA session is open.\n\
         password_for_git = true\n\n\
         [web]\nlisten = {}\n\n[ssh]\nlisten = {}\n",
        quote(&dir.join("repos").to_string_lossy()),
        quote(&dir.join("data").to_string_lossy()),
        quote(&format!("http://{}", web_authority(web))),
        quote(git),
        quote(&web.to_string()),
        quote(&ssh.to_string()),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    create_dir(&config.repos_root, 0o755)?;
    create_dir(&config.data_dir, 0o700)?;
    Ok(config)
}

/// The store, the secret key, the demo user with a random password, and
/// an SSH key pair for that user in the demo directory. Returns the
/// password.
fn set_up_store(config: &Config, dir: &Path) -> Result<String, String> {
    let mut store = Store::create(&config.store_path()).map_err(|e| e.to_string())?;
    let secret = SecretKey::create(&config.secret_key_path()).map_err(|e| e.to_string())?;
    store
        .record_key_fingerprint(&secret.fingerprint())
        .map_err(|e| e.to_string())?;
    let password: String = crypto::random_bytes::<6>()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let hash = crypto::hash_password(&password).map_err(|e| e.to_string())?;
    let user_id = store
        .add_user(USER, Some(&hash), now())
        .map_err(|e| e.to_string())?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment("git2fa-demo");
    let private = key.to_openssh(LineEnding::LF).map_err(|e| e.to_string())?;
    crypto::write_private_file(&dir.join("demo_key"), private.as_bytes())
        .map_err(|e| e.to_string())?;
    let public_line = serve::ssh::public_line(&key);
    std::fs::write(dir.join("demo_key.pub"), format!("{public_line}\n"))
        .map_err(|e| e.to_string())?;
    let public = sshkey::PublicKey::parse(&public_line)?;
    store
        .add_key(
            user_id,
            &public.algorithm,
            &public.blob_base64(),
            &public.fingerprint(),
            "git2fa-demo",
            None,
            now(),
        )
        .map_err(|e| e.to_string())?;
    Ok(password)
}

/// `demo.git` with three commits, owned by the demo user, requiring 2FA
/// for every operation.
fn make_repo(config: &Config) -> Result<(), String> {
    let bare = config.repos_root.join(format!("{REPO}.git"));
    let work = config.data_dir.join("seed");
    let identity = [
        ("GIT_AUTHOR_NAME", "git2fa demo"),
        ("GIT_AUTHOR_EMAIL", "demo@localhost"),
        ("GIT_COMMITTER_NAME", "git2fa demo"),
        ("GIT_COMMITTER_EMAIL", "demo@localhost"),
    ];
    let git =
        |dir: &Path, args: &[&str]| crate::transport::exec::run_git(config, dir, args, &identity);
    git(
        &config.repos_root,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            &bare.to_string_lossy(),
        ],
    )?;
    create_dir(&work, 0o700)?;
    git(&work, &["init", "--quiet", "--initial-branch=main"])?;
    let files = [
        (
            "README.md",
            "# hello\n\nA repository that needs 2FA for every git operation.\n",
            "Add a README",
        ),
        (
            "hello.sh",
            "#!/bin/sh\necho \"hello from behind a second factor\"\n",
            "Say hello",
        ),
        (
            "NOTES.md",
            "Verified at the web page, or with `ssh ... 2fa verify`.\n",
            "Add notes",
        ),
    ];
    for (name, text, message) in files {
        std::fs::write(work.join(name), text).map_err(|e| e.to_string())?;
        git(&work, &["add", name])?;
        git(&work, &["commit", "--quiet", "-m", message])?;
    }
    git(&work, &["push", "--quiet", &bare.to_string_lossy(), "main"])?;
    std::fs::remove_dir_all(&work).map_err(|e| e.to_string())?;
    std::fs::write(
        bare.join("git2fa.toml"),
        format!(
            "# Every clone, fetch and push needs 2FA.\nrequire = \"all\"\nowners = [\"{USER}\"]\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// The git2fa hooks in the demo's repository, as on a real host (so that
/// `git2fa check` passes there too). `cargo run -- demo` builds only
/// `git2fa`, which is then the hook itself (see `src/bin/git2fa.rs`).
fn install_hooks(config: &Config) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find my binary: {e}"))?;
    let hook_bin = me.with_file_name("git2fa-hook");
    let hook_bin = if hook_bin.is_file() { hook_bin } else { me };
    crate::repo::hooks::install(&config.repos_root, &hook_bin, &config.path)
        .map(|_| ())
        .map_err(|e| format!("installing the hooks: {e}"))
}

/// The web page's address as users type it: `localhost` for a loopback
/// address, so that security keys work (an IP address cannot be a WebAuthn
/// relying party, and browsers treat http://localhost as secure).
fn web_authority(web: SocketAddr) -> String {
    if web.ip().is_loopback() {
        format!("localhost:{}", web.port())
    } else {
        web.to_string()
    }
}

/// What the demo prints. Lines that start with `  $ ` are commands to run
/// as they are.
pub fn instructions(dir: &Path, web: SocketAddr, ssh: SocketAddr, password: &str) -> String {
    let web = web_authority(web);
    let d = dir.display();
    let ssh_command = format!(
        "ssh -i {d}/demo_key -o IdentitiesOnly=yes -o UserKnownHostsFile={d}/known_hosts -p {}",
        ssh.port()
    );
    let host = ssh.ip();
    format!(
        "git2fa demo: a throwaway host in {d}\n\
         \n\
         \x20 web page   http://{web}/\n\
         \x20 user       {USER}\n\
         \x20 password   {password}\n\
         \x20 repository {REPO} (2FA required for every git operation; 3 commits)\n\
         \x20 SSH        {host} port {port}, with the demo user's key {d}/demo_key\n\
         \n\
         1. Clone over SSH. It is refused: {USER} has not set up 2FA.\n\
         \x20 $ GIT_SSH_COMMAND=\"{ssh_command}\" git clone ssh://git@{host}:{port}/{REPO}.git\n\
         \x20  (Where git2fa's messages say `ssh … 2fa verify`, they mean your own key;\n\
         \x20  with the demo's key, use the command of step 4.)\n\
         \n\
         2. Open http://{web}/login and log in as {USER} with the password above.\n\
         \x20  Set up 2FA: scan the QR code with an authenticator app, keep the\n\
         \x20  recovery codes, and enter a code (or use a security key or passkey).\n\
         \x20  That opens a 2FA session.\n\
         \n\
         3. Clone again. It works.\n\
         \x20 $ GIT_SSH_COMMAND=\"{ssh_command}\" git clone ssh://git@{host}:{port}/{REPO}.git\n\
         \x20  Over HTTP (the password works while a 2FA session is open):\n\
         \x20 $ git clone http://{USER}@{web}/git/{REPO}.git {REPO}-http\n\
         \n\
         4. When the session ends (1 hour), open one from the terminal with a code:\n\
         \x20 $ {ssh_command} git@{host} 2fa verify\n\
         \n\
         Stop with Ctrl-C; the throwaway directory goes with it (unless you gave --dir).\n",
        port = ssh.port(),
    )
}
