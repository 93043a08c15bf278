//! `git2fa-hook`: the `pre-receive` and `update` hook. A small program: it asks the
//! resident `git2fa serve`, else hands over to `git2fa` (`transport::shim`).

fn main() -> std::process::ExitCode {
    git2fa::transport::shim::hook_main()
}
