//! Prometheus metrics of `git2fa serve` (`[metrics] listen`, off by
//! default), in the text exposition format, at `/metrics`.
//!
//! Decisions are made in many processes (sshd's forced command, the CGI,
//! the hooks, serve itself, other front ends of a shared store), and every
//! one of them writes an audit row. serve counts those rows: at start it
//! notes the newest row's id, and each scrape reads the rows written since
//! (the counters are "since serve started", as Prometheus expects of a
//! process). Its own gauges (git operations and SSH connections under way)
//! come from serve's memory; the store's latency is the time that read took.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use super::operations::{Limit, Operations};
use crate::store::audit::AuditCursor;
use crate::store::{AuditFilter, AuditRecord, Location, Store};
use crate::system::config::Config;

/// Rows read per scrape at most: a scrape after a flood takes the rest
/// at the next one.
const MAX_ROWS_PER_SCRAPE: u32 = 100_000;

/// One counted kind of row: (metric, labels).
type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
struct Counts {
    /// Where counting is in the audit log; `None` until the store
    /// answered once.
    cursor: Option<AuditCursor>,
    counts: BTreeMap<Key, u64>,
}

#[derive(Clone)]
pub struct Metrics {
    config: Arc<Config>,
    operations: Operations,
    connections: Operations,
    counts: Arc<Mutex<Counts>>,
    /// `[metrics] bearer_token_file`'s content, when set.
    token: Option<Arc<String>>,
}

impl Metrics {
    pub fn new(
        config: Arc<Config>,
        operations: Operations,
        connections: Operations,
        token: Option<String>,
    ) -> Metrics {
        Metrics {
            config,
            operations,
            connections,
            counts: Arc::default(),
            token: token.map(Arc::new),
        }
    }

    /// Notes where counting starts (the newest row now); a store that
    /// does not answer leaves it to the first scrape.
    pub fn start(&self) {
        let _ = self.refresh();
    }

    /// Reads the rows written since the last read and counts them; the
    /// time it took.
    fn refresh(&self) -> Result<std::time::Duration, String> {
        let began = Instant::now();
        let store = Store::connect(&Location::of(&self.config)).map_err(|e| e.to_string())?;
        let mut counts = self.counts.lock().map_err(|_| "poisoned".to_string())?;
        let counts = &mut *counts;
        match &mut counts.cursor {
            None => {
                let newest = store
                    .audit(&AuditFilter {
                        limit: 1,
                        ..AuditFilter::default()
                    })
                    .map_err(|e| e.to_string())?;
                counts.cursor = Some(AuditCursor::after(newest.first().map_or(0, |(id, _)| *id)));
            }
            Some(cursor) => {
                // Each row once, also one committed after a newer one.
                let rows = cursor
                    .next(&store, MAX_ROWS_PER_SCRAPE, crate::system::time::now())
                    .map_err(|e| e.to_string())?;
                for (_, row) in &rows {
                    for key in keys(row) {
                        *counts.counts.entry(key).or_default() += 1;
                    }
                }
            }
        }
        Ok(began.elapsed())
    }

    fn render(&self, store: Result<std::time::Duration, String>) -> String {
        let mut out = String::new();
        let help = |out: &mut String, name: &str, kind: &str, text: &str| {
            let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
        };
        help(
            &mut out,
            "git2fa_store_up",
            "gauge",
            "1 when the store answered this scrape, else 0.",
        );
        let _ = writeln!(out, "git2fa_store_up {}", u8::from(store.is_ok()));
        if let Ok(took) = &store {
            help(
                &mut out,
                "git2fa_store_latency_seconds",
                "gauge",
                "How long this scrape's read of the store took (connect and query).",
            );
            let _ = writeln!(
                out,
                "git2fa_store_latency_seconds {:.6}",
                took.as_secs_f64()
            );
        }
        help(
            &mut out,
            "git2fa_git_operations_in_flight",
            "gauge",
            "Git operations under way in serve (SSH commands and /git/ requests).",
        );
        let _ = writeln!(
            out,
            "git2fa_git_operations_in_flight {}",
            self.operations.running()
        );
        help(
            &mut out,
            "git2fa_ssh_connections_open",
            "gauge",
            "Connections open to serve's SSH server.",
        );
        let _ = writeln!(
            out,
            "git2fa_ssh_connections_open {}",
            self.connections.running()
        );
        let counts = match self.counts.lock() {
            Ok(counts) => counts,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (name, text) in METRICS {
            help(&mut out, name, "counter", text);
            for ((metric, labels), n) in &counts.counts {
                if *metric == name {
                    let labels: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                        .collect();
                    let _ = writeln!(out, "{name}{{{}}} {n}", labels.join(","));
                }
            }
            if name == "git2fa_limits_reached_total" {
                for limit in Limit::ALL {
                    let (transport, reason) = limit.labels();
                    let n = limit.count();
                    let _ = writeln!(
                        out,
                        "{name}{{transport=\"{transport}\",reason=\"{reason}\"}} {n}"
                    );
                }
            }
        }
        out
    }
}

/// The counters, with their help text.
const METRICS: [(&str, &str); 5] = [
    (
        "git2fa_decisions_total",
        "Git decisions (reads and writes) recorded since serve started, by transport, operation, outcome and reason.",
    ),
    (
        "git2fa_verifications_total",
        "Second-factor checks recorded since serve started, by transport, outcome and reason (the factor when ok).",
    ),
    (
        "git2fa_lockouts_total",
        "Accounts locked by wrong codes or keys since serve started (the attempt that locked).",
    ),
    (
        "git2fa_limits_reached_total",
        "Operations refused because a limit of the server was reached, by transport and reason.",
    ),
    (
        "git2fa_audit_rows_total",
        "Audit rows recorded since serve started, by transport, action and outcome.",
    ),
];

/// What one audit row counts towards.
fn keys(row: &AuditRecord) -> Vec<Key> {
    let t = ("transport", row.transport.clone());
    let mut keys = vec![(
        "git2fa_audit_rows_total",
        vec![
            t.clone(),
            ("action", row.action.clone()),
            ("outcome", row.outcome.clone()),
        ],
    )];
    match row.action.as_str() {
        "read" | "write" => keys.push((
            "git2fa_decisions_total",
            vec![
                t.clone(),
                ("operation", row.action.clone()),
                ("outcome", row.outcome.clone()),
                ("reason", row.reason.clone()),
            ],
        )),
        "verify" | "verify-link" => keys.push((
            "git2fa_verifications_total",
            vec![
                t.clone(),
                ("outcome", row.outcome.clone()),
                ("reason", row.reason.clone()),
            ],
        )),
        _ => {}
    }
    // The wrong code or key that locked the account (twofactor::record).
    if row.action == "verify"
        && row
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with(crate::authz::twofactor::LOCKED_NOW))
    {
        keys.push(("git2fa_lockouts_total", vec![t.clone()]));
    }
    // serve's own limits are counted in its memory, every one of them
    // (their rows are bounded per source).
    if row.reason.starts_with("busy") && !Limit::ALL.iter().any(|l| l.labels().1 == row.reason) {
        keys.push((
            "git2fa_limits_reached_total",
            vec![t, ("reason", row.reason.clone())],
        ));
    }
    keys
}

/// A label value as the exposition format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`, with the bearer token when one is set.
pub async fn handle(
    State(metrics): State<Metrics>,
    headers: HeaderMap,
) -> axum::response::Response {
    if let Some(token) = &metrics.token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::factor::crypto::constant_time_eq(sent.as_bytes(), token.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"git2fa metrics\"")],
                "git2fa: metrics need the bearer token of [metrics] bearer_token_file\n",
            )
                .into_response();
        }
    }
    let reader = metrics.clone();
    let store = tokio::task::spawn_blocking(move || reader.refresh())
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    if let Err(e) = &store {
        log::warn!("metrics: the store did not answer: {e}");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(store),
    )
        .into_response()
}

/// The router of the metrics listener: `/metrics` alone.
pub fn router(metrics: Metrics) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(handle))
        .with_state(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_refused_read_counts_as_a_decision_and_a_limit() {
        let row = AuditRecord {
            transport: "ssh".into(),
            action: "read".into(),
            outcome: "refuse".into(),
            reason: "busy".into(),
            ..AuditRecord::default()
        };
        let names: Vec<&str> = keys(&row).iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            vec![
                "git2fa_audit_rows_total",
                "git2fa_decisions_total",
                "git2fa_limits_reached_total"
            ]
        );
    }
}
