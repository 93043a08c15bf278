//! `git2fa-shell`: refuses every operation until its transport lands.

fn main() -> std::process::ExitCode {
    git2fa::placeholder::refuse("git2fa-shell")
}
