//! Prometheus metrics of `git2fa serve`, scraped by Debian's real
//! `prometheus` server with the bearer token, and read back through its
//! query API, as an admin's dashboards and alerts would.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::web_server::{Server, free_port};
use crate::harness::{Host, Process, code, e2e_available, run};

fn prometheus_available() -> bool {
    e2e_available(
        Path::new("/usr/bin/prometheus").exists(),
        "/usr/bin/prometheus",
        "prometheus",
    )
}

/// Prometheus's answer to `query`: the value of each series, with its
/// labels.
fn query(port: u16, query: &str) -> Vec<(serde_json::Value, f64)> {
    // Prometheus takes a moment to listen.
    if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        return Vec::new();
    }
    let path = format!(
        "/api/v1/query?query={}",
        git2fa::system::url::url_component(query)
    );
    let reply = crate::harness::http::get(port, &path);
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|series| {
            let value = series["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            (series["metric"].clone(), value)
        })
        .collect()
}

/// Waits until `query` gives a series whose value is at least `at_least`.
#[track_caller]
fn wait_for(port: u16, q: &str, at_least: f64) -> Vec<(serde_json::Value, f64)> {
    let mut last = Vec::new();
    let found = crate::harness::poll(Duration::from_secs(30), || {
        last = query(port, q);
        last.iter().any(|(_, v)| *v >= at_least)
    });
    assert!(found, "{q}: {last:?}");
    last
}

#[test]
fn prometheus_scrapes_decisions_verifications_and_the_store() {
    if !prometheus_available() {
        return;
    }
    let (web, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&token_file)
            .unwrap();
        f.write_all(b"a long scrape token\n").unwrap();
    }
    let host = Host::build(
        &format!("http://127.0.0.1:{web}"),
        "max_failures = 3",
        &format!(
            "[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"\"\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics}\"\nbearer_token_file = \"{}\"\n",
            token_file.display()
        ),
    );
    let f = host
        .user("alice")
        .enrolled()
        .user("bob")
        .enrolled()
        .repo("team/app");
    f.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let token = f.token("alice", "team/app", "read", &[]);
    let _server = Server::start(&f, web);
    let log = f.dir.path().join("serve.log");
    assert!(
        crate::harness::poll(Duration::from_secs(10), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(&format!("metrics on http://127.0.0.1:{metrics}/metrics"))
        }),
        "serve did not serve metrics"
    );

    // Without the token: 401, and nothing is shown.
    let anonymous = crate::harness::http::get(metrics, "/metrics");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(!anonymous.body.contains("git2fa_"), "{}", anonymous.body);
    // With another token: 401 too.
    let wrong = crate::harness::http::send(
        metrics,
        "GET",
        "/metrics",
        &["Authorization: Bearer a long scrape tokem"],
        b"",
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(!wrong.body.contains("git2fa_"), "{}", wrong.body);

    // Decisions and verifications, made by serve and by the CLI.
    let home = f.dir.path().display().to_string();
    let git = |repo: &str| {
        run(
            "git",
            &[
                "ls-remote",
                &format!("http://alice:{token}@127.0.0.1:{web}/git/{repo}.git"),
            ],
            f.dir.path(),
            &[("HOME", home.clone())],
            "",
        )
    };
    git("team/app").ok();
    git("team/app").ok();
    assert_ne!(git("team/other").code, 0);
    f.git2fa(&["verify", "alice", "000000"]);
    f.git2fa(&["verify", "alice", &code(f.secret_of("alice"), 0)])
        .ok();
    // Three wrong codes lock bob (max_failures = 3): one lockout; the
    // two tries after it are refused as locked, which is not another.
    for _ in 0..5 {
        f.git2fa(&["verify", "bob", "000000"]);
    }
    // One address past its web connections: turned away before anything
    // is read, so no audit row, and counted.
    let held: Vec<std::net::TcpStream> = (0..70)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", web)).ok())
        .collect();

    // Prometheus, scraping every second with the token, with the admin
    // guide's alert as its rules.
    let rules = dir.path().join("git2fa-rules.yml");
    let alert = crate::admin_guide::pasted_block("alert: Git2faCheckUnavailable");
    assert!(!alert.is_empty(), "the guide has no alert");
    std::fs::write(&rules, alert.join("\n") + "\n").unwrap();
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [\"{}\"]\n\
             scrape_configs:\n  - job_name: git2fa\n    authorization:\n      credentials_file: {}\n    \
             static_configs:\n      - targets: [\"127.0.0.1:{metrics}\"]\n",
            rules.display(),
            token_file.display()
        ),
    )
    .unwrap();
    let _prometheus = Process::spawn(
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap()),
    );
    wait_for(prom_port, "up{job=\"git2fa\"}", 1.0);
    wait_for(prom_port, "git2fa_store_up", 1.0);
    let allowed = wait_for(
        prom_port,
        "git2fa_decisions_total{transport=\"http\",operation=\"read\",outcome=\"allow\"}",
        2.0,
    );
    assert_eq!(allowed[0].0["reason"], "token", "{allowed:?}");
    let refused = wait_for(
        prom_port,
        "git2fa_decisions_total{transport=\"http\",outcome=\"refuse\"}",
        1.0,
    );
    assert_eq!(refused[0].0["reason"], "token-out-of-scope", "{refused:?}");
    wait_for(
        prom_port,
        "git2fa_verifications_total{transport=\"cli\",outcome=\"ok\",reason=\"totp\"}",
        1.0,
    );
    wait_for(
        prom_port,
        "git2fa_verifications_total{transport=\"cli\",outcome=\"fail\"}",
        1.0,
    );
    let locked = wait_for(prom_port, "git2fa_lockouts_total", 1.0);
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0].0["transport"], "cli", "{locked:?}");
    assert_eq!(locked[0].1, 1.0, "one lock, whatever the tries after it");
    wait_for(
        prom_port,
        "git2fa_verifications_total{transport=\"cli\",reason=\"locked\"}",
        1.0,
    );
    wait_for(
        prom_port,
        "git2fa_limits_reached_total{transport=\"web\",reason=\"busy-web-connections-per-address\"}",
        1.0,
    );
    drop(held);
    // ...and recorded, as every limit is.
    let rows = f.git2fa(&["audit", "--json", "--limit", "200"]).ok().stdout;
    let row = rows
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["reason"] == "busy-web-connections-per-address")
        .unwrap_or_else(|| panic!("no row of the limit: {rows}"));
    assert_eq!(
        (&row["action"], &row["outcome"], &row["addr"]),
        (
            &serde_json::json!("connection"),
            &serde_json::json!("refuse"),
            &serde_json::json!("127.0.0.1")
        ),
        "{row}"
    );
    let latency = wait_for(prom_port, "git2fa_store_latency_seconds", 0.0);
    assert!(latency[0].1 < 5.0, "{latency:?}");

    // The guide's alert: quiet while the store answers...
    std::thread::sleep(Duration::from_secs(3));
    let alerts = query(prom_port, "ALERTS{alertname=\"Git2faCheckUnavailable\"}");
    assert!(alerts.is_empty(), "nothing was unavailable: {alerts:?}");
    // ...and on its way to firing once the store is gone (it fires after
    // its `for: 1m`): git refused as unavailable, the store down.
    let store = f.store_path();
    std::fs::rename(&store, store.with_extension("moved")).unwrap();
    assert_ne!(git("team/app").code, 0);
    wait_for(prom_port, "git2fa_store_up == 0", 0.0);
    let pending = wait_for(
        prom_port,
        "ALERTS{alertname=\"Git2faCheckUnavailable\",alertstate=\"pending\"}",
        1.0,
    );
    assert_eq!(pending.len(), 1, "{pending:?}");
}
