//! `git2fa-hook`: the `pre-receive` and `update` hook.

fn main() -> std::process::ExitCode {
    git2fa::transport::hook::main()
}
