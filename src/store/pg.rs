//! A PostgreSQL connection as the store's synchronous code uses it:
//! tokio-postgres on a small runtime of the connection's own, driven by the
//! calling thread, with a deadline on every exchange.
//!
//! The deadline is what bounds a hung server. A PostgreSQL process stopped
//! with SIGSTOP, or a listener that accepts and never answers, still
//! completes TCP's handshake and acknowledges what is sent (the kernel
//! does both), so neither the connect timeout nor TCP's own timeouts
//! (keepalive, `TCP_USER_TIMEOUT`) ever fire; and `statement_timeout` is
//! the server's own, which a stopped server does not keep. Only the client
//! can say "no answer within `[store] timeout`": each exchange, connecting
//! and authenticating included, is given that long, and a connection that
//! missed its deadline is closed (its state is unknown) and counts as
//! closed for the pool that holds it.

use std::time::Duration;

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, Row, Socket};

use super::error::{Result, StoreError};

pub struct PgClient {
    runtime: tokio::runtime::Runtime,
    client: Client,
    timeout: Duration,
    /// `SET LOCAL` statements each transaction begins with (`connect`).
    settings: String,
    /// Set when an exchange missed its deadline or the connection failed:
    /// nothing more is sent on it.
    broken: bool,
}

impl PgClient {
    /// Connects with `config` and `tls`, all within `timeout` (every host
    /// the config names, tried in turn, shares it).
    pub fn connect<T>(
        config: &Config,
        tls: T,
        timeout: Duration,
        settings: String,
    ) -> Result<PgClient>
    where
        T: MakeTlsConnect<Socket> + Send + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Value(format!("a runtime for PostgreSQL: {e}")))?;
        let connected = runtime.block_on(async {
            let (client, connection) = tokio::time::timeout(timeout, config.connect(tls))
                .await
                .map_err(|_| no_answer(timeout, "connecting"))??;
            // The connection's task runs whenever the client waits on this
            // runtime, which is every exchange.
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    log::debug!("PostgreSQL connection ended: {e}");
                }
            });
            Ok::<_, StoreError>(client)
        })?;
        Ok(PgClient {
            runtime,
            client: connected,
            timeout,
            settings,
            broken: false,
        })
    }

    pub fn execute_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<u64> {
        let client = &self.client;
        let future = client.execute_typed(sql, params);
        // The future borrows the client, not `self`: poll it on the runtime.
        let timeout = self.timeout;
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, future).await });
        self.settle(result, "a statement")
    }

    pub fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>> {
        let client = &self.client;
        let future = client.query_typed(sql, params);
        let timeout = self.timeout;
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, future).await });
        self.settle(result, "a query")
    }

    pub fn batch_execute(&mut self, sql: &str) -> Result<()> {
        let client = &self.client;
        let future = client.batch_execute(sql);
        let timeout = self.timeout;
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, future).await });
        self.settle(result, "statements")
    }

    /// What an exchange came to: its value, or the error, with the
    /// connection marked broken when it cannot be trusted any more.
    fn settle<T>(
        &mut self,
        result: std::result::Result<
            std::result::Result<T, tokio_postgres::Error>,
            tokio::time::error::Elapsed,
        >,
        what: &str,
    ) -> Result<T> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if self.client.is_closed() || e.is_closed() || breaks_the_connection(&e) {
                    self.broken = true;
                }
                Err(e.into())
            }
            Err(_) => {
                self.broken = true;
                Err(no_answer(self.timeout, what))
            }
        }
    }

    /// The `SET LOCAL` statements a transaction begins with: the timeouts,
    /// set per transaction so that a pooler in transaction mode
    /// (PgBouncer) keeps them, and nothing relies on session state.
    pub fn transaction_settings(&self) -> &str {
        &self.settings
    }

    /// Whether the connection is known to be gone.
    pub fn is_closed(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// Whether the server answers within `limit` (one round trip).
    pub fn is_valid_within(&mut self, limit: Duration) -> bool {
        let client = &self.client;
        let future = client.simple_query("");
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(limit, future).await });
        self.settle(result, "a check").is_ok()
    }
}

/// Errors after which a connection is not used again: the server is
/// shutting down (57P01 admin shutdown, 57P02, 57P03), or it is a replica
/// now (25006, read-only transaction: a failover happened, and this
/// connection is to the old primary).
fn breaks_the_connection(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|code| {
        [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]
        .contains(code)
    })
}

fn no_answer(timeout: Duration, what: &str) -> StoreError {
    StoreError::Unreachable(format!(
        "PostgreSQL did not answer {what} within {} s",
        timeout.as_secs_f64()
    ))
}
