//! nginx's and Apache's configuration, as far as `check` can read it: do
//! they publish every path of git2fa serve's web page? A block that
//! passes part of it breaks the rest (one that missed `/webauthn.js` left
//! security keys doing nothing). What `check` cannot read it says.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::report::Report;
use crate::system::config::Config;

/// Every path the page needs a web server to pass to serve, one of each
/// kind (`/set-password/…` stands for its links).
const PAGE_PATHS: [&str; 8] = [
    "/",
    crate::system::pages::VERIFY,
    "/login",
    "/logout",
    "/set-password/x",
    "/style.css",
    "/webauthn.js",
    crate::system::pages::OAUTH_METADATA,
];

/// How a web server passes requests to serve: a location or `ProxyPass`
/// that covers a path.
#[derive(Debug)]
enum Passes {
    Exact(String),
    Prefix(String),
    Regex(String),
}

impl Passes {
    fn covers(&self, path: &str) -> bool {
        match self {
            Passes::Exact(p) => p == path,
            Passes::Prefix(p) => path.starts_with(p.as_str()),
            Passes::Regex(re) => {
                // No regex engine here: a pattern covers a path when it
                // names the path's first segment (`webauthn\.js`), or is
                // `^/$` for `/`. Enough for the blocks admins write.
                let re = re.trim_matches('"').replace('\\', "");
                if path == "/" {
                    return re == "^/$" || re == "^/?$" || re == "/";
                }
                let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
                re.contains(first)
            }
        }
    }
}

fn run(command: &mut Command) -> Result<String, String> {
    match command.stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr)),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// What a web server `name` passes to serve (`passes`), as a finding.
fn judge(name: &str, config: &Config, passes: &[Passes], fix: &str, report: &mut Report) {
    let listen = config.web.listen.to_string();
    if passes.is_empty() {
        return report.note(format!(
            "{name} passes nothing to git2fa serve ({listen}); refusals link to {}/2fa/verify, so some other server must publish the page",
            config.public_url
        ));
    }
    // With browser sign-in off, nobody asks for its metadata.
    let oauth_off = config.oauth.clients.is_empty();
    let missing: Vec<&str> = PAGE_PATHS
        .iter()
        .filter(|path| !(oauth_off && **path == crate::system::pages::OAUTH_METADATA))
        .filter(|path| !passes.iter().any(|p| p.covers(path)))
        .map(|path| path.trim_end_matches('x'))
        .collect();
    if missing.is_empty() {
        report.ok(format!(
            "{name} passes every path of the web page to git2fa serve ({listen})"
        ));
    } else {
        let keys = if missing.contains(&"/webauthn.js") {
            " (without /webauthn.js security keys do nothing)"
        } else {
            ""
        };
        report.problem(format!(
            "{name} passes part of the web page to git2fa serve ({listen}) but not {}{keys}; {fix}",
            missing.join(", ")
        ));
    }
}

/// nginx's whole configuration (`nginx -T`, or `-c file`).
pub(super) fn nginx(config: &Config, file: Option<&Path>, report: &mut Report) {
    let nginx = Path::new("/usr/sbin/nginx");
    if !nginx.exists() {
        return report.note("no nginx here (/usr/sbin/nginx): its configuration is not checked");
    }
    let mut command = Command::new(nginx);
    command.arg("-T");
    if let Some(file) = file {
        command.arg("-c").arg(file);
    }
    let text = match run(&mut command) {
        Ok(text) => text,
        Err(e) => {
            return report.note(format!(
                "cannot read nginx's configuration (nginx -T: {e}); not checked"
            ));
        }
    };
    let target = format!("http://{}", config.web.listen);
    let mut location: Option<String> = None;
    let mut passes = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("location ") {
            location = Some(rest.trim_end_matches('{').trim().to_string());
        } else if let Some(rest) = line.strip_prefix("proxy_pass ")
            && rest.trim_end_matches(';').trim().starts_with(&target)
            && let Some(location) = &location
        {
            let words: Vec<&str> = location.split_whitespace().collect();
            passes.push(match words.as_slice() {
                ["=", p] => Passes::Exact(p.to_string()),
                ["~" | "~*", re] => Passes::Regex(re.to_string()),
                ["^~", p] | [p] => Passes::Prefix(p.to_string()),
                _ => continue,
            });
        }
    }
    judge(
        "nginx",
        config,
        &passes,
        "include /etc/git2fa/nginx/web.conf in its server block instead",
        report,
    );
}

/// Apache's configuration files (`apache2ctl -t -D DUMP_INCLUDES`, or
/// `apache2 -f file`) and its modules.
pub(super) fn apache(config: &Config, file: Option<&Path>, report: &mut Report) {
    let apache2 = Path::new("/usr/sbin/apache2");
    if !apache2.exists() {
        return report.note("no Apache here (/usr/sbin/apache2): its configuration is not checked");
    }
    let command = |args: &[&str]| {
        let mut command = match file {
            Some(file) => {
                let mut c = Command::new(apache2);
                c.arg("-f").arg(file);
                c
            }
            None => Command::new("/usr/sbin/apache2ctl"),
        };
        command.args(args);
        command
    };
    let (includes, modules) = match (
        run(&mut command(&["-t", "-D", "DUMP_INCLUDES"])),
        run(&mut command(&["-M"])),
    ) {
        (Ok(includes), Ok(modules)) => (includes, modules),
        (Err(e), _) | (_, Err(e)) => {
            return report.note(format!(
                "cannot read Apache's configuration ({e}); not checked"
            ));
        }
    };
    let files: Vec<PathBuf> = includes
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|word| word.starts_with('/'))
        .map(PathBuf::from)
        .collect();
    let target = format!("http://{}", config.web.listen);
    let mut passes = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [directive, pattern, to, ..] = words.as_slice() else {
                continue;
            };
            if !to.trim_matches('"').starts_with(&target) {
                continue;
            }
            let pattern = pattern.trim_matches('"').to_string();
            match directive.to_ascii_lowercase().as_str() {
                "proxypass" => passes.push(Passes::Prefix(pattern)),
                "proxypassmatch" => passes.push(Passes::Regex(pattern)),
                _ => {}
            }
        }
    }
    if !passes.is_empty() && !modules.contains("proxy_http_module") {
        // The package's block waits for the module (`<IfModule>`): Apache
        // starts, and another server may well publish the page.
        return report.note(format!(
            "Apache's configuration would pass the web page to git2fa serve ({}), but mod_proxy_http is not enabled, so it passes nothing; if Apache is to publish the page, run a2enmod proxy_http and restart Apache",
            config.web.listen
        ));
    }
    judge(
        "Apache",
        config,
        &passes,
        "IncludeOptional /etc/git2fa/apache/*.conf in its VirtualHost instead",
        report,
    );
}
