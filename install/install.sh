#!/usr/bin/env bash
# Installs git2fa on one host: binaries, the `git` account, config, store,
# the sshd snippet, and hooks in every repository. Run as root from a
# checkout after `cargo build --release`. Idempotent.
#
#   install/install.sh [--repos-root /srv/git] [--public-url https://git.example.com]
set -euo pipefail

repos_root=/srv/git
public_url=""
prefix=/usr/local/bin
config=/etc/git2fa/config.toml
data_dir=/var/lib/git2fa
while (($#)); do
    case $1 in
        --repos-root) repos_root=$2; shift 2 ;;
        --public-url) public_url=$2; shift 2 ;;
        *) echo "usage: $0 [--repos-root DIR] [--public-url URL]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
release=$here/target/release
for bin in git2fa git2fa-shell git2fa-hook git2fa-http; do
    [ -x "$release/$bin" ] || { echo "install.sh: $release/$bin is missing; run cargo build --release" >&2; exit 2; }
done

# Binaries: root-owned, not writable by anyone else (sshd insists for
# AuthorizedKeysCommand).
for bin in git2fa git2fa-shell git2fa-hook git2fa-http; do
    install -o root -g root -m 0755 "$release/$bin" "$prefix/$bin"
done

# The account git runs as. Its shell must run a forced command: /bin/sh.
if ! id git >/dev/null 2>&1; then
    # Password "*": no password log-in, and not "locked" (sshd without PAM
    # refuses a locked account even with a key).
    useradd --system --home-dir "$repos_root" --shell /bin/sh --user-group --password '*' git
fi
[ -d "$repos_root" ] || install -d -o git -g git -m 0755 "$repos_root"

# Config (root-owned, readable by all: it holds no secret); store and key
# (git only). Modes and owners are set when they are made, never again: a
# second run leaves a working host as the admin has it.
if [ ! -e "$config" ]; then
    args=(--repos-root "$repos_root" --data-dir "$data_dir")
    [ -n "$public_url" ] && args+=(--public-url "$public_url")
    install -d -o git -g git -m 0700 "$data_dir"
    install -d -o root -g root -m 0755 "$(dirname "$config")"
    # Written by root, then the store made by git: root never copies a file
    # the git account could change or swap for a link.
    "$prefix/git2fa" --config "$config" init --config-only "${args[@]}" >/dev/null
    runuser -u git -- "$prefix/git2fa" --config "$config" init >/dev/null
else
    # Migrations, as the account that owns the store.
    runuser -u "$(stat -c %U "$data_dir" 2>/dev/null || echo git)" -- "$prefix/git2fa" --config "$config" init >/dev/null
fi

# sshd: the git account's keys come from git2fa.
if [ -d /etc/ssh/sshd_config.d ]; then
    # Kept if it is there: the admin may have added to it (SetEnv …).
    [ -e /etc/ssh/sshd_config.d/git2fa.conf ] || \
        install -o root -g root -m 0644 "$here/install/sshd_config.conf" /etc/ssh/sshd_config.d/git2fa.conf
    if command -v sshd >/dev/null && sshd -t; then
        (systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null) || echo "install.sh: reload sshd yourself"
    fi
else
    echo "install.sh: add install/sshd_config.conf to your sshd_config by hand"
fi

# The web servers' blocks, where the admin guide includes them from
# (kept if there: the admin may have changed them).
install -d -o root -g root -m 0755 "$(dirname "$config")/nginx" "$(dirname "$config")/apache"
for block in nginx/git.conf:nginx-git2fa.conf nginx/web.conf:nginx-git2fa-web.conf \
        apache/git.conf:apache-git2fa.conf apache/web.conf:apache-git2fa-web.conf; do
    target="$(dirname "$config")/${block%%:*}"
    [ -e "$target" ] || install -o root -g root -m 0644 "$here/install/${block#*:}" "$target"
done

# The unit for `git2fa serve` (web page, smart HTTP, embedded SSH, hook
# socket); installed, not started.
if [ -d /etc/systemd/system ]; then
    [ -e /etc/systemd/system/git2fa.service ] || \
        install -o root -g root -m 0644 "$here/install/git2fa.service" /etc/systemd/system/git2fa.service
    systemctl daemon-reload 2>/dev/null || true
fi

# Hooks in every repository, keeping any hook already there.
runuser -u git -- "$prefix/git2fa" --config "$config" install-hooks "$repos_root"
runuser -u git -- "$prefix/git2fa" --config "$config" check || true
cat <<NEXT

git2fa is installed. Next:
  git2fa --config $config user add NAME            # then: git2fa key add NAME KEYFILE
  git2fa --config $config repo flag REPO           # pushes to REPO need 2FA
  systemctl enable --now git2fa                    # the web page (and SSH on :2222; see [ssh] listen)
Users clone with: git clone git@$(hostname -f 2>/dev/null || hostname):REPO.git
NEXT
