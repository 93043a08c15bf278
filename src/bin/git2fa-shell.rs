//! `git2fa-shell`: the SSH forced command. A small program: it asks the
//! resident `git2fa serve`, else hands over to `git2fa` (`transport::shim`).

fn main() -> std::process::ExitCode {
    git2fa::transport::shim::shell_main()
}
