//! `git2fa`: the admin CLI.

fn main() -> std::process::ExitCode {
    git2fa::cli::main()
}
