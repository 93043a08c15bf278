//! `git2fa-shell`: the SSH forced command.

fn main() -> std::process::ExitCode {
    git2fa::transport::shell::main()
}
