//! Security keys (FIDO) for OpenSSH without a device: the software
//! middleware in `tests/support/sk_soft.c`, built per test with the C
//! compiler, used by the real `ssh-keygen` and `ssh` (and so by git).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::sshd::SshClient;
use crate::harness::{Run, e2e_available, run, which};

/// The middleware library and the askpass program that types its PIN.
pub struct SoftKeys {
    pub provider: PathBuf,
    askpass: PathBuf,
}

/// What a signature's flags say (the provider signs what it is told).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flags {
    /// As an authenticator would: a touch, and the PIN for a key made
    /// with `-O verify-required` (OpenSSH asks for it through askpass).
    AsMade,
    /// Exactly these bits (0x01 a touch, 0x04 a PIN), whatever the key.
    Exactly(u8),
}

/// Whether this machine can build and load the provider.
pub fn available() -> bool {
    e2e_available(which("cc").is_some(), "cc", "gcc")
        && e2e_available(
            Path::new("/usr/include/openssl/evp.h").exists(),
            "OpenSSL's headers",
            "libssl-dev",
        )
        && e2e_available(
            Path::new("/usr/lib/openssh/ssh-sk-helper").exists(),
            "ssh-sk-helper",
            "openssh-client",
        )
        && e2e_available(
            which("ssh-keygen").is_some(),
            "ssh-keygen",
            "openssh-client",
        )
}

impl SoftKeys {
    /// Builds the provider in `dir`.
    pub fn build(dir: &Path) -> SoftKeys {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sk_soft.c");
        let provider = dir.join("libsk_soft.so");
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&provider)
            .arg(&source)
            .arg("-lcrypto")
            .output()
            .expect("cc (Debian package gcc)");
        assert!(out.status.success(), "building the provider: {out:?}");
        let askpass = dir.join("askpass");
        std::fs::write(&askpass, "#!/bin/sh\necho 123456\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        SoftKeys { provider, askpass }
    }

    /// A new `ed25519-sk` key pair at `path` (and `path.pub`), made by
    /// `ssh-keygen` through the provider; `-O verify-required` when asked.
    pub fn enroll(&self, path: &Path, verify_required: bool) -> PathBuf {
        let mut command = Command::new("ssh-keygen");
        command.args(["-q", "-t", "ed25519-sk", "-N", "", "-C", "test-sk", "-w"]);
        command.arg(&self.provider);
        if verify_required {
            command.args(["-O", "verify-required"]);
        }
        let out = command
            .arg("-f")
            .arg(path)
            .output()
            .expect("ssh-keygen (Debian package openssh-client)");
        assert!(out.status.success(), "ssh-keygen -t ed25519-sk: {out:?}");
        path.to_path_buf()
    }

    /// The `ssh` command line for `client` with this key: like the
    /// harness's, but not in batch mode, since OpenSSH asks for a PIN
    /// (through askpass).
    pub fn ssh_command(&self, client: &SshClient, key: &Path) -> String {
        format!(
            "ssh -i {} -p {} -o IdentitiesOnly=yes -o IdentityAgent=none -o SecurityKeyProvider={} \
             -o PreferredAuthentications=publickey -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            key.display(),
            client.port,
            self.provider.display()
        )
    }

    fn env(&self, flags: Flags) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("SSH_ASKPASS", self.askpass.display().to_string()),
            ("SSH_ASKPASS_REQUIRE", "force".to_string()),
        ];
        if let Flags::Exactly(bits) = flags {
            env.push(("GIT2FA_SK_FLAGS", bits.to_string()));
        }
        env
    }

    /// Runs git in `cwd` over SSH with this key, signing with `flags`.
    pub fn git(
        &self,
        client: &SshClient,
        key: &Path,
        flags: Flags,
        cwd: &Path,
        args: &[&str],
    ) -> Run {
        let mut env = self.env(flags);
        env.push(("GIT_SSH_COMMAND", self.ssh_command(client, key)));
        env.push(("HOME", cwd.parent().unwrap_or(cwd).display().to_string()));
        run("git", args, cwd, &env, "")
    }

    /// `ssh LOGIN@127.0.0.1 COMMAND` with this key, signing with `flags`.
    pub fn ssh(&self, client: &SshClient, key: &Path, flags: Flags, command: &str) -> Run {
        let line = self.ssh_command(client, key);
        let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
        words.push(format!("{}@127.0.0.1", client.login));
        words.push(command.to_string());
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        run("ssh", &args, Path::new("/"), &self.env(flags), "")
    }
}
