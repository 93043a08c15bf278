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
#[derive(Debug, Clone)]
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
    // Per location: the CGI fcgiwrap is told to run, and where it is.
    let mut git = GitRoutes::default();
    // The location under way: its CGI, where fcgiwrap is, GIT_PROJECT_ROOT.
    let mut cgi = FastCgi::default();
    for line in text.lines().map(str::trim) {
        let starts_block = line.starts_with("location ")
            || line.starts_with("server ")
            || line == "server{"
            || line.starts_with("# configuration file ");
        if starts_block {
            git.fastcgi(std::mem::take(&mut cgi), &config.repos_root);
        }
        if let Some(rest) = line.strip_prefix("location ") {
            location = Some(rest.trim_end_matches('{').trim().to_string());
            cgi.at = location.clone().unwrap_or_default();
        } else if line.starts_with("server ") || line == "server{" {
            location = None;
            cgi.at = "server".into();
        } else if let Some(rest) = line.strip_prefix("proxy_pass ")
            && let Some(location) = &location
        {
            let to = rest.trim_end_matches(';').trim();
            let words: Vec<&str> = location.split_whitespace().collect();
            let passed = match words.as_slice() {
                ["=", p] => Passes::Exact(p.to_string()),
                ["~" | "~*", re] => Passes::Regex(re.to_string()),
                ["^~", p] | [p] => Passes::Prefix(p.to_string()),
                _ => continue,
            };
            if to.starts_with(&target) {
                passes.push(passed);
            } else if (passed.covers(crate::system::pages::VERIFY) || passed.covers("/git/x"))
                && !to
                    .split("://")
                    .nth(1)
                    .unwrap_or("")
                    .starts_with(|c: char| c.is_ascii_digit() || c == '[')
            {
                // An upstream's name: where it leads is not in this text.
                git.unfollowed.push(format!("{location} to {to}"));
            }
        } else if let Some(rest) = line.strip_prefix("fastcgi_param SCRIPT_FILENAME ") {
            cgi.program = Some(rest.trim_end_matches(';').trim().to_string());
        } else if let Some(rest) = line.strip_prefix("fastcgi_param GIT_PROJECT_ROOT ") {
            cgi.project_root = Some(rest.trim_end_matches(';').trim().to_string());
        } else if let Some(rest) = line.strip_prefix("fastcgi_pass ") {
            cgi.pass = Some(rest.trim_end_matches(';').trim().to_string());
        }
    }
    git.fastcgi(cgi, &config.repos_root);
    git.judge(
        "nginx",
        "include /etc/git2fa/nginx/git.conf (git2fa-http) in its place",
        report,
    );
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
    let mut git = GitRoutes::default();
    let mut unread = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            unread.push(file.display().to_string());
            continue;
        };
        let mut location: Option<Passes> = None;
        let project_root = text.lines().find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [set, "GIT_PROJECT_ROOT", root, ..] if set.eq_ignore_ascii_case("SetEnv") => {
                    Some(root.trim_matches('"').to_string())
                }
                _ => None,
            }
        });
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line
                .split_whitespace()
                .map(|w| w.trim_end_matches('>').trim_matches('"'))
                .collect();
            let Some((directive, args)) = words.split_first() else {
                continue;
            };
            match (directive.to_ascii_lowercase().as_str(), args) {
                ("<location", ["~", re, ..]) | ("<locationmatch", [re, ..]) => {
                    location = Some(Passes::Regex(re.to_string()));
                }
                ("<location", [path, ..]) => location = Some(Passes::Prefix(path.to_string())),
                ("</location" | "</locationmatch", _) => location = None,
                ("scriptalias", [path, program, ..]) => git.cgi(
                    path,
                    program.trim_end_matches('/'),
                    project_root.as_deref(),
                    &config.repos_root,
                ),
                // Its pattern may hold spaces (git-http-backend(1)'s does):
                // the program is the last word, `…/git-http-backend/$1`.
                ("scriptaliasmatch", [pattern, .., program]) => git.cgi(
                    pattern,
                    program.trim_end_matches("$1").trim_end_matches('/'),
                    project_root.as_deref(),
                    &config.repos_root,
                ),
                // Inside <Location>: `ProxyPass URL`, for that location.
                ("proxypass", [to]) if to.starts_with(&target) => {
                    if let Some(location) = &location {
                        passes.push(location.clone());
                    }
                }
                ("proxypass", [pattern, to, ..]) if to.starts_with(&target) => {
                    passes.push(Passes::Prefix(pattern.to_string()));
                }
                ("proxypassmatch", [pattern, to, ..]) if to.starts_with(&target) => {
                    passes.push(Passes::Regex(pattern.to_string()));
                }
                _ => {}
            }
        }
    }
    if !unread.is_empty() {
        report.note(format!(
            "cannot read {} of Apache's configuration: not checked (run check as root)",
            unread.join(", ")
        ));
    }
    git.judge(
        "Apache",
        "IncludeOptional /etc/git2fa/apache/git.conf (git2fa-http) in its place",
        report,
    );
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

/// The programs a web server runs for git over HTTPS, as far as its
/// configuration says.
#[derive(Default)]
struct GitRoutes {
    /// Where git2fa-http runs.
    git2fa: Vec<String>,
    /// Where git http-backend runs, for the repositories git2fa guards (or
    /// for repositories the configuration does not name), without git2fa.
    bypass: Vec<String>,
    /// Where git http-backend runs for repositories elsewhere.
    elsewhere: Vec<String>,
    /// git2fa-http given to Debian's shared fcgiwrap (www-data).
    shared_fcgiwrap: bool,
    /// Requests passed to a server `check` cannot follow (an upstream).
    unfollowed: Vec<String>,
}

/// What one nginx location (or server) tells fcgiwrap.
#[derive(Default)]
struct FastCgi {
    at: String,
    program: Option<String>,
    pass: Option<String>,
    project_root: Option<String>,
}

impl GitRoutes {
    /// Notes the CGI `program` a web server runs at `at`, for the
    /// repositories under `project_root` when the configuration says.
    fn cgi(&mut self, at: &str, program: &str, project_root: Option<&str>, repos_root: &Path) {
        if program.ends_with("/git2fa-http") {
            self.git2fa.push(at.to_string());
        } else if program.ends_with("/git-http-backend") {
            let ours = |root: &str| {
                let root = Path::new(root);
                root.starts_with(repos_root) || repos_root.starts_with(root)
            };
            match project_root {
                Some(root) if !ours(root) => self.elsewhere.push(format!("{at} ({root})")),
                _ => self.bypass.push(at.to_string()),
            }
        }
    }

    /// An nginx location's FastCGI lines, whatever their order.
    fn fastcgi(&mut self, cgi: FastCgi, repos_root: &Path) {
        let Some(program) = &cgi.program else {
            return;
        };
        self.cgi(&cgi.at, program, cgi.project_root.as_deref(), repos_root);
        if program.ends_with("/git2fa-http")
            && cgi.pass.as_deref() == Some("unix:/run/fcgiwrap.socket")
        {
            self.shared_fcgiwrap = true;
        }
    }

    fn judge(&self, name: &str, fix: &str, report: &mut Report) {
        if !self.bypass.is_empty() {
            report.problem(format!(
                "{name} runs git http-backend itself at {}: git over HTTPS there is not checked by git2fa (no second factor, no tokens, no audit); {fix}",
                self.bypass.join(", ")
            ));
        }
        if !self.elsewhere.is_empty() {
            report.note(format!(
                "{name} runs git http-backend itself at {}, for repositories outside repos_root: git2fa does not guard them",
                self.elsewhere.join(", ")
            ));
        }
        if self.shared_fcgiwrap {
            report.problem(format!(
                "{name} gives git2fa-http to Debian's shared fcgiwrap (/run/fcgiwrap.socket), which runs it as www-data: it cannot read the store, so git over HTTPS is refused as unavailable; use git2fa's own (git2fa-fcgiwrap.socket, fastcgi_pass unix:/run/git2fa-fcgiwrap.sock)"
            ));
        }
        if !self.git2fa.is_empty() && self.bypass.is_empty() && !self.shared_fcgiwrap {
            report.ok(format!(
                "{name} runs git2fa-http for git over HTTPS at {}",
                self.git2fa.join(", ")
            ));
        }
        if !self.unfollowed.is_empty() {
            report.note(format!(
                "{name} passes {} on to servers check cannot follow: not checked",
                self.unfollowed.join(", ")
            ));
        }
    }
}
