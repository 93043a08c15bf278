//! TLS to a real PostgreSQL, as `[store] url`'s `sslmode` asks: a server
//! with a certificate for `localhost` from a CA of its own. What each mode
//! accepts and refuses, and that a connection said to be TLS is TLS in the
//! server's own view (`pg_stat_ssl`).

use git2fa::store::{Location, Store, StoreError};

use crate::harness::postgres::{self, Cluster};

fn location(cluster: &Cluster, host: &str, query: &str) -> Location {
    Location::Postgres {
        url: format!(
            "postgres://{}@{host}:{}/tls?{query}",
            postgres::ROLE,
            cluster.port
        ),
        password_file: Some(cluster.password_file.clone()),
        socket: None,
    }
}

/// Whether the server sees git2fa's open connection as TLS.
fn server_says_tls(cluster: &Cluster) -> bool {
    let rows = cluster
        .superuser("postgres")
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'git2fa'",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 1, "one git2fa connection");
    rows[0].get(0)
}

#[track_caller]
fn refused(opened: Result<Store, StoreError>, says: &str) {
    match opened {
        Ok(_) => panic!("connected, but should have been refused ({says})"),
        Err(e) => assert!(e.to_string().contains(says), "{says:?} not in: {e}"),
    }
}

#[test]
fn each_sslmode_accepts_and_refuses_as_libpq_does() {
    if !postgres::available() {
        return;
    }
    let cluster = Cluster::start_tls();
    cluster.database("tls");
    let ca = cluster.ca_file().display().to_string();

    // verify-full: the CA given, the name in the certificate.
    let store = Store::connect_and_migrate(&location(
        &cluster,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .unwrap();
    assert!(server_says_tls(&cluster));
    drop(store);

    // The certificate names localhost, not 127.0.0.1: verify-full refuses,
    // verify-ca (the chain only) accepts.
    refused(
        Store::connect(&location(
            &cluster,
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )),
        "PostgreSQL",
    );
    let store = Store::connect(&location(
        &cluster,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .unwrap();
    assert!(server_says_tls(&cluster));
    drop(store);

    // A CA that did not sign it: the system's roots.
    refused(
        Store::connect(&location(&cluster, "localhost", "sslmode=verify-full")),
        "PostgreSQL",
    );
    // require and prefer encrypt without checking the certificate.
    for mode in ["sslmode=require", "sslmode=prefer", ""] {
        let store = Store::connect(&location(&cluster, "127.0.0.1", mode)).unwrap();
        assert!(server_says_tls(&cluster), "{mode}");
        drop(store);
    }
    let store = Store::connect(&location(&cluster, "127.0.0.1", "sslmode=disable")).unwrap();
    assert!(!server_says_tls(&cluster));
    drop(store);
    // A root certificate file that is not there.
    refused(
        Store::connect(&location(
            &cluster,
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )),
        "sslrootcert /nonexistent/ca.pem",
    );
}

#[test]
fn a_server_without_tls_is_refused_when_tls_is_required() {
    if !postgres::available() {
        return;
    }
    let cluster = Cluster::start();
    cluster.database("tls");
    for mode in ["sslmode=require", "sslmode=verify-full"] {
        refused(
            Store::connect(&location(&cluster, "127.0.0.1", mode)),
            "PostgreSQL",
        );
    }
    // prefer falls back to plain text, as libpq does.
    Store::connect_and_migrate(&location(&cluster, "127.0.0.1", "sslmode=prefer")).unwrap();
}

#[test]
fn a_unix_socket_url_connects_with_the_default_sslmode() {
    if !postgres::available() {
        return;
    }
    // The server offers no TLS on its Unix socket: `prefer` goes on in
    // plain text there, as libpq does.
    let cluster = Cluster::start();
    cluster.database("tls");
    let host = cluster
        .socket_dir()
        .display()
        .to_string()
        .replace('/', "%2F");
    let location = Location::Postgres {
        url: format!("postgres://{}@{host}:{}/tls", postgres::ROLE, cluster.port),
        password_file: None,
        socket: None,
    };
    Store::connect_and_migrate(&location).unwrap();
}
