//! The embedded SSH server of `git2fa serve` (russh). Public-key
//! authentication only; the key is bound to the connection only after russh
//! has verified its signature. Each `exec` request runs through
//! [`shell::Connection::handle`], the code `git2fa-shell` runs, with the
//! channel as its streams. No shell, no PTY, no forwarding, no subsystem;
//! `GIT_PROTOCOL` is the only variable taken from the client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use russh::keys::ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, PrivateKey};
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::sync::{mpsc, watch};

use super::error::ServeError;
use super::operations::{Operations, Slot, Slots};
use super::ssh_channel::ChannelInput;
use super::ssh_run::Run;
use crate::authz::messages;
use crate::factor::sshkey;
use crate::store::{Location, Store};
use crate::system::config::Config;
use crate::transport::exec::valid_git_protocol;
use crate::transport::shell::err_pkt_line;

/// The host keys' file names in `data_dir`, and their algorithms, in the
/// order serve offers them: Ed25519, and ECDSA P-256 for clients that
/// know no Ed25519 (JSch 0.1.5x, which JGit before 5.2 and many tools
/// bundle, fails with "Algorithm negotiation fail" against Ed25519 alone).
pub const HOST_KEY_FILES: [(&str, Algorithm); 2] = [
    ("ssh_host_ed25519_key", Algorithm::Ed25519),
    (
        "ssh_host_ecdsa_key",
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
    ),
];

/// Client data its command has not read yet, at most; past this the
/// channel closes (the handler never waits, so russh keeps serving the
/// connection's other messages, window adjustments among them).
const MAX_PENDING_INPUT: usize = 16 << 20;
/// Session channels per connection.
const MAX_CHANNELS: usize = 4;

/// Loads the host keys, or makes the missing ones (mode 0600) on first
/// start; in `HOST_KEY_FILES`' order.
pub fn host_keys(data_dir: &Path) -> Result<Vec<PrivateKey>, ServeError> {
    HOST_KEY_FILES
        .iter()
        .map(|(name, algorithm)| host_key(&data_dir.join(name), algorithm))
        .collect()
}

fn host_key(path: &Path, algorithm: &Algorithm) -> Result<PrivateKey, ServeError> {
    let in_the_way = |what: String| ServeError::InTheWay(format!("{}: {what}", path.display()));
    match crate::factor::crypto::read_private_file(path) {
        Ok(text) => {
            let key = PrivateKey::from_openssh(&text)
                .map_err(|e| in_the_way(format!("not an OpenSSH private key: {e}")))?;
            if key.algorithm() != *algorithm {
                return Err(in_the_way(format!(
                    "a {} key, where serve keeps its {} key",
                    key.algorithm(),
                    algorithm
                )));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut rng = russh::keys::ssh_key::rand_core::UnwrapErr(getrandom::SysRng);
            let key = PrivateKey::random(&mut rng, algorithm.clone())
                .map_err(|e| in_the_way(format!("cannot make the host key: {e}")))?;
            let text = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| in_the_way(format!("cannot encode the host key: {e}")))?;
            // Written aside and renamed: a crash leaves no half a key.
            crate::system::atomic_file::replace(path, text.as_bytes(), 0o600)
                .map_err(ServeError::io(path.display()))?;
            log::info!(
                "made the SSH host key {} ({})",
                path.display(),
                key.public_key().fingerprint(HashAlg::Sha256)
            );
            Ok(key)
        }
        Err(e) => Err(ServeError::io(path.display())(e)),
    }
}

/// The host key's public half as a `known_hosts` key (`ssh-ed25519 AAAA…`).
pub fn public_line(key: &PrivateKey) -> String {
    key.public_key()
        .to_openssh()
        .unwrap_or_else(|_| String::from("(unencodable key)"))
}

pub fn russh_config(keys: Vec<PrivateKey>) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-git2fa".into()),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        keys,
        auth_rejection_time: std::time::Duration::from_millis(300),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        inactivity_timeout: Some(std::time::Duration::from_secs(600)),
        max_auth_attempts: 10,
        nodelay: true,
        ..Default::default()
    }
}

/// One client connection.
pub struct Client {
    config: Arc<Config>,
    peer: Option<SocketAddr>,
    operations: Operations,
    /// Set once a key authenticated (the accept loop's login timer reads it).
    authenticated: Arc<AtomicBool>,
    /// This connection's place among its address's logins under way,
    /// given up once it authenticates.
    login: Option<Slot<std::net::IpAddr>>,
    /// `2fa verify` prompts waiting, per user, across connections.
    prompts: Slots<String>,
    /// Authenticated connections per user, and the cap.
    users: (Slots<String>, usize),
    /// This connection's place among its user's, once authenticated.
    user_slot: Option<Slot<String>>,
    /// The user the key belongs to, once authenticated.
    user: Option<String>,
    /// True once the server is stopping: no new channels.
    stopped: watch::Receiver<bool>,
    /// The key whose signature russh verified (its id and fingerprint);
    /// `None` until then.
    key: Option<(i64, String)>,
    /// Why the key could not be looked up at log-in (the store down or
    /// hung): the client proved it holds the key it signed with, and every
    /// command it runs is refused as "2FA check unavailable", so that the
    /// user reads why, not a bare "Permission denied".
    unavailable: Option<String>,
    channels: HashMap<ChannelId, ChannelState>,
}

#[derive(Default)]
struct ChannelState {
    git_protocol: Option<String>,
    /// Where client data goes once a command runs; dropped at EOF.
    input: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Bytes sent to `input` and not read yet.
    pending: Arc<AtomicUsize>,
    started: bool,
    /// Dropped with the channel's state (a close, or the connection
    /// dropped): tells the command its client is gone.
    _gone: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Client {
    pub fn new(
        config: Arc<Config>,
        peer: Option<SocketAddr>,
        operations: Operations,
        (authenticated, login): (Arc<AtomicBool>, Slot<std::net::IpAddr>),
        users: (Slots<String>, usize),
        prompts: Slots<String>,
        stopped: watch::Receiver<bool>,
    ) -> Client {
        Client {
            config,
            peer,
            operations,
            authenticated,
            login: Some(login),
            prompts,
            users,
            user_slot: None,
            user: None,
            stopped,
            key: None,
            unavailable: None,
            channels: HashMap::new(),
        }
    }

    /// The registered key with this public key, of an enabled user, if
    /// any: its id, fingerprint and user; `Err` with the cause when the
    /// store cannot say.
    async fn lookup(
        &self,
        key: &russh::keys::PublicKey,
    ) -> Result<Option<(i64, String, String)>, String> {
        let Ok(blob) = key.to_bytes() else {
            return Ok(None);
        };
        let Ok(parsed) =
            sshkey::PublicKey::from_parts(key.algorithm().as_str(), &base64_encode(&blob))
        else {
            return Ok(None);
        };
        let config = self.config.clone();
        let found = tokio::task::spawn_blocking(move || -> crate::store::Result<_> {
            let store = Store::connect(&Location::of(&config))?;
            let Some(key) = store.key_by_fingerprint(&parsed.fingerprint())? else {
                return Ok(None);
            };
            // A disabled account's key opens no connection at all.
            let enabled = store.user(&key.user)?.is_some_and(|u| u.enabled);
            Ok(enabled.then_some(key))
        })
        .await;
        match found {
            Ok(Ok(Some(key))) if sshkey_blob_matches(&key.blob, &blob) => {
                Ok(Some((key.id, key.fingerprint, key.user)))
            }
            Ok(Ok(_)) => Ok(None),
            Ok(Err(e)) => Err(format!("SSH key lookup: {e}")),
            Err(e) => Err(format!("SSH key lookup: {e}")),
        }
    }
}

/// Whether `key` is a security key (`sk-` type), which this server refuses
/// to log in with, whoever registered it: russh hands the server only the
/// public key of a verified signature, not the signature's flags, so
/// nothing here could tell a touch (user presence, 0x01) or a PIN (user
/// verification, 0x04) from none, and sshd refuses a signature without a
/// touch unless told otherwise. Such keys work through OpenSSH
/// (`git2fa authorized-keys`), which checks the flags (docs/security.md).
/// `peer`: said in the log for the offer, the first the server sees.
fn refuse_security_key(key: &russh::keys::PublicKey, peer: Option<SocketAddr>) -> bool {
    let algorithm = key.algorithm();
    if !sshkey::is_security_key_type(algorithm.as_str()) {
        return false;
    }
    if let Some(peer) = peer {
        log::warn!(
            "SSH: refused the security key {} ({}) from {}: this SSH server cannot check a security key's touch or PIN; security keys work through OpenSSH with git2fa authorized-keys",
            key.fingerprint(russh::keys::HashAlg::Sha256),
            algorithm.as_str(),
            peer.ip().to_canonical()
        );
    }
    true
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn sshkey_blob_matches(stored: &str, blob: &[u8]) -> bool {
    stored == base64_encode(blob)
}

impl russh::server::Handler for Client {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only a hint that spares the client a signature: nothing is bound
        // here, since the client has not proven it holds this key.
        // A key the store cannot look up now is let on to its signature:
        // the client is then told why nothing works.
        if refuse_security_key(offer.public_key, self.peer) {
            return Ok(Auth::reject());
        }
        Ok(match self.lookup(offer.public_key).await {
            Ok(Some(_)) | Err(_) => Auth::Accept,
            Ok(None) => Auth::reject(),
        })
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // russh calls this only after the signature over this session
        // verified with this very key.
        if refuse_security_key(key.public_key, None) {
            return Ok(Auth::reject());
        }
        match self.lookup(key.public_key).await {
            Ok(Some((id, fingerprint, user))) => {
                let (slots, max) = &self.users;
                let Some(slot) = slots.take(user.clone(), *max) else {
                    log::warn!("SSH: {user} has {max} connections open; refusing another");
                    super::operations::audit_busy(
                        &self.config,
                        crate::store::AuditRecord {
                            user: Some(user),
                            transport: "ssh".into(),
                            action: "ssh-login".into(),
                            key_id: Some(id),
                            credential: Some("ssh-key".into()),
                            remote_addr: self.peer.map(|p| p.ip().to_canonical().to_string()),
                            ..Default::default()
                        },
                        messages::Busy::SshConnections(*max),
                    );
                    return Ok(Auth::reject());
                };
                self.user_slot = Some(slot);
                self.user = Some(user.clone());
                self.key = Some((id, fingerprint));
                self.authenticated.store(true, Ordering::SeqCst);
                self.login = None;
                Ok(Auth::Accept)
            }
            Ok(None) => Ok(Auth::reject()),
            // Nobody: no user, no key id; each command is refused. The
            // address's log-in slot is kept while the connection lasts.
            Err(cause) => {
                log::error!("2FA check unavailable: {cause}");
                self.unavailable = Some(cause);
                self.authenticated.store(true, Ordering::SeqCst);
                Ok(Auth::Accept)
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let stopping = *self.stopped.borrow();
        let someone = self.key.is_some() || self.unavailable.is_some();
        if someone && self.channels.len() < MAX_CHANNELS && !stopping {
            self.channels.insert(channel.id(), ChannelState::default());
            reply.accept().await;
        } else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(state) if name == "GIT_PROTOCOL" && valid_git_protocol(value) => {
                state.git_protocol = Some(value.to_string());
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    /// No shell: the same greeting `git2fa-shell` gives a login without a
    /// command, and the channel closes.
    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, String::new(), session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // As git2fa-shell: a command that is not UTF-8 is refused by name.
        let command = match std::str::from_utf8(data) {
            Ok(command) => command.to_string(),
            Err(_) => "\u{fffd} (not UTF-8)".to_string(),
        };
        self.start(channel, command, session)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(state) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        let Some(sender) = &state.input else {
            return Ok(());
        };
        let pending = state.pending.fetch_add(data.len(), Ordering::SeqCst) + data.len();
        if pending > MAX_PENDING_INPUT {
            log::warn!(
                "SSH client {:?} sent {pending} bytes its command did not read; closing the channel",
                self.peer
            );
            state.input = None;
            return session.close(channel);
        }
        let _ = sender.send(data.to_vec());
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(state) = self.channels.get_mut(&channel) {
            state.input = None;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}

/// Whether a client, by its SSH version string (RFC 4253 section 4.2),
/// shows the user what a command writes on standard error as it comes:
/// the programs git's command line runs (OpenSSH, PuTTY's plink) do;
/// libgit2 (`SSH-2.0-libssh2_…`) and JGit (`SSH-2.0-JSCH…`,
/// `SSH-2.0-APACHE-SSHD…`) show only git's `ERR` line.
fn shows_stderr(sshid: &[u8]) -> bool {
    let id = String::from_utf8_lossy(sshid);
    ["SSH-2.0-OpenSSH", "SSH-2.0-PuTTY", "SSH-2.0-Plink"]
        .iter()
        .any(|known| id.starts_with(known))
}

/// Refuses a command before anything runs: `lines` on stderr, all of them
/// in one line as git's `ERR` pkt-line when git asked, exit status 1 and EOF; the
/// caller closes the channel.
fn refuse_at_once(
    session: &mut Session,
    channel: ChannelId,
    command: &str,
    lines: &[String],
) -> Result<(), russh::Error> {
    session.channel_success(channel)?;
    let mut text = lines.join("\n");
    text.push('\n');
    session.extended_data(channel, 1, text.into_bytes())?;
    if crate::transport::ssh_command::is_git_command(command) {
        session.data(channel, err_pkt_line(&messages::one_line(lines)))?;
    }
    session.exit_status_request(channel, 1)?;
    session.eof(channel)
}

impl Client {
    /// Runs one command; a channel runs at most one.
    fn start(
        &mut self,
        channel: ChannelId,
        command: String,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if let (None, Some(cause)) = (&self.key, &self.unavailable) {
            // The store could not look the key up: the refusal every
            // transport gives, in the shim's framing, and nothing run.
            if !self.channels.contains_key(&channel) {
                return session.channel_failure(channel);
            }
            let lines = messages::check_unavailable(None, cause);
            refuse_at_once(session, channel, &command, &lines)?;
            return session.close(channel);
        }
        let (Some((key_id, fingerprint)), Some(state)) =
            (self.key.clone(), self.channels.get_mut(&channel))
        else {
            return session.channel_failure(channel);
        };
        if state.started {
            return session.channel_failure(channel);
        }
        state.started = true;
        // One limit for the whole server: past it, refused at once, never
        // queued.
        let running = self.operations.running();
        if running >= self.config.limits.git_operations() {
            let what = messages::Busy::GitOperations(running);
            refuse_at_once(
                session,
                channel,
                &command,
                &messages::busy(&self.config, what),
            )?;
            log::warn!("SSH: {running} git operations under way; refused one");
            super::operations::audit_busy(
                &self.config,
                crate::store::AuditRecord {
                    user: self.user.clone(),
                    transport: "ssh".into(),
                    key_id: Some(key_id),
                    credential: Some("ssh-key".into()),
                    remote_addr: self.peer.map(|p| p.ip().to_canonical().to_string()),
                    detail: Some(command.chars().take(150).collect()),
                    ..Default::default()
                },
                what,
            );
            return session.close(channel);
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        state.input = Some(sender);
        let (gone_sender, gone) = tokio::sync::oneshot::channel();
        state._gone = Some(gone_sender);
        let pending = state.pending.clone();
        session.channel_success(channel)?;
        let run = Run {
            config: self.config.clone(),
            key_id,
            fingerprint,
            remote_addr: self.peer.map(|p| p.ip().to_canonical().to_string()),
            git_protocol: state.git_protocol.clone(),
            shows_stderr: shows_stderr(session.remote_sshid()),
            runtime: tokio::runtime::Handle::current(),
            handle: session.handle(),
            channel,
        };
        let input = ChannelInput {
            receiver,
            gone: Some(gone),
            pending,
            runtime: tokio::runtime::Handle::current(),
            chunk: Vec::new(),
            at: 0,
        };
        let guard = self.operations.start();
        let prompts = self.prompts.clone();
        tokio::spawn(async move {
            let _guard = guard;
            run.run(command, input, prompts).await;
        });
        Ok(())
    }
}
