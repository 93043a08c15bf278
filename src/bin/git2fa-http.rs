//! `git2fa-http`: the CGI program in front of `git http-backend`.

fn main() -> std::process::ExitCode {
    git2fa::transport::cgi::main()
}
