//! `git2fa-http`: the CGI program in front of `git http-backend`. A small program: it asks the
//! resident `git2fa serve`, else hands over to `git2fa` (`transport::shim`).

fn main() -> std::process::ExitCode {
    git2fa::transport::shim::http_main()
}
