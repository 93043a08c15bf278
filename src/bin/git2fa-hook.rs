//! `git2fa-hook`: refuses every operation until its transport lands.

fn main() -> std::process::ExitCode {
    git2fa::placeholder::refuse("git2fa-hook")
}
