//! `git2fa`: the admin CLI. Called as `git2fa [--config PATH] pre-receive|update …`
//! it is the hook, as `git2fa-hook` is: `git2fa demo` installs its hooks so
//! when only this binary was built (`cargo run -- demo`).

fn main() -> std::process::ExitCode {
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
