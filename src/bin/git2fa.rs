//! `git2fa`: the admin CLI. Called as `git2fa [--config PATH] pre-receive|update …`
//! it is the hook, as `git2fa-hook` is: `git2fa demo` installs its hooks so
//! when only this binary was built (`cargo run -- demo`). Started under the
//! name of a shim (`git2fa-shell`, `git2fa-hook`, `git2fa-http`), which is
//! how the shims hand over when `git2fa serve` does not answer, it is that
//! shim, deciding directly.

fn main() -> std::process::ExitCode {
    let name = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    match name.as_str() {
        "git2fa-shell" => return git2fa::transport::shell::entry::main(),
        "git2fa-hook" => return git2fa::transport::hook::main(),
        "git2fa-http" => return git2fa::transport::cgi::main(),
        _ => {}
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let first = match args.as_slice() {
        [flag, _, first, ..] if flag == "--config" => first.as_str(),
        [first, ..] => first.as_str(),
        [] => "",
    };
    if first == "pre-receive" || first == "update" {
        return git2fa::transport::hook::main();
    }
    git2fa::admin::cli::main()
}
