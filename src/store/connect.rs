//! Connecting to PostgreSQL: the url, the password file, the timeouts,
//! and TLS as the url's `sslmode` asks, with rustls.
//!
//! The modes are libpq's (PostgreSQL's documentation, "SSL Support",
//! table "SSL Mode Descriptions"):
//!
//! - `disable`: plain text.
//! - `prefer` (the default): TLS if the server offers it, else plain text;
//!   the certificate is not checked.
//! - `require`: TLS or no connection; the certificate is not checked,
//!   unless `sslrootcert` names a file, which makes it `verify-ca`, as in
//!   libpq.
//! - `verify-ca`: TLS, and the server's certificate chains to a trusted
//!   root.
//! - `verify-full`: `verify-ca`, and the certificate names the url's host.
//!
//! Trusted roots come from `sslrootcert` (a PEM file), or else from the
//! system's bundle, `/etc/ssl/certs/ca-certificates.crt` (Debian's
//! `ca-certificates`). tokio-postgres itself knows only `disable`,
//! `prefer` and `require`, and no `sslrootcert`: the url's TLS settings are
//! taken out of it here, and the connector does the checking.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// How long a statement waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting to PostgreSQL may take, unless the url sets
/// `connect_timeout`: a git command waits no longer for an unreachable
/// server before it is refused.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the trusted roots come from when the url names none.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The url's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` url: the url
/// left for tokio-postgres (with `sslmode=disable`, `prefer` or
/// `require`), and the settings.
pub fn split_url(url: &str) -> Result<(String, Tls)> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = Mode::Prefer;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = match value {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(StoreError::Config(format!(
                            "url: sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
                        )));
                    }
                }
            }
            "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value)?)),
            _ => kept.push(pair),
        }
    }
    if mode == Mode::Require && root_cert.is_some() {
        mode = Mode::VerifyCa;
    }
    kept.push(match mode {
        Mode::Disable => "sslmode=disable",
        Mode::Prefer => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok((
        format!("{base}?{}", kept.join("&")),
        Tls { mode, root_cert },
    ))
}

fn percent_decode(text: &str) -> Result<String> {
    let bad = || {
        StoreError::Config(format!(
            "url: `{text}` is not a valid percent-encoded value"
        ))
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Connects to PostgreSQL. The url is libpq's (`postgres://user@host:port/db?...`),
/// with TLS as its `sslmode` says; the password, if any, comes
/// from `password_file` (its first line). Unless the url says otherwise,
/// connecting gives up after `CONNECT_TIMEOUT`, and a statement (or the
/// wait for the write lock) after `BUSY_TIMEOUT`: a git command is refused,
/// not left hanging.
pub fn client(url: &str, password_file: Option<&Path>) -> Result<postgres::Client> {
    let (url, settings) = split_url(url)?;
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Config(format!("url: {e}")))?;
    if let Some(file) = password_file {
        let text =
            std::fs::read_to_string(file).map_err(|e| StoreError::Io(file.to_path_buf(), e))?;
        config.password(text.lines().next().unwrap_or(""));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("git2fa");
    }
    if config.get_options().is_none() {
        config.options(&format!(
            "-c statement_timeout={}",
            BUSY_TIMEOUT.as_millis()
        ));
    }
    Ok(match settings.mode {
        Mode::Disable => config.connect(postgres::NoTls)?,
        _ => config.connect(Connector::new(client_config(&settings)?))?,
    })
}

/// The rustls configuration for a mode other than `disable`.
pub fn client_config(tls: &Tls) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?;
    let config = match tls.mode {
        Mode::Disable | Mode::Prefer | Mode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth(),
        Mode::VerifyCa | Mode::VerifyFull => {
            let path = tls.root_cert.as_deref().unwrap_or(Path::new(SYSTEM_ROOTS));
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| StoreError::Config(format!("sslrootcert {}: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(StoreError::Config(format!(
                    "sslrootcert {}: no certificate in it",
                    path.display()
                )));
            }
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| StoreError::Config(format!("TLS: {e}")))?;
            let verifier: Arc<dyn ServerCertVerifier> = if tls.mode == Mode::VerifyCa {
                Arc::new(AnyName(webpki))
            } else {
                webpki
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// `prefer` and `require`: the handshake's signatures are checked (the
/// session is encrypted to whoever holds the certificate's key), the
/// certificate itself is not, as libpq does in these modes.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the name in the certificate is not.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres's TLS hook, made from a rustls configuration.
pub struct Connector(Arc<ClientConfig>);

impl Connector {
    pub fn new(config: ClientConfig) -> Connector {
        Connector(Arc::new(config))
    }
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<Connect, Self::Error> {
        Ok(Connect {
            config: Arc::clone(&self.0),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

pub struct Connect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

type Handshake<S> = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            Ok(Stream(connector.connect(self.name, stream).await?))
        })
    }
}

/// A TLS connection to the server. No channel binding: SCRAM runs without
/// `-PLUS`, as with libpq's default `channel_binding=prefer` against a
/// server whose certificate it does not check.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_keeps_what_tokio_postgres_reads_and_gives_the_rest() {
        let (url, tls) =
            split_url("postgres://g@db:5432/x?application_name=a&sslmode=verify-full&sslrootcert=/etc/ca%20x.pem")
                .unwrap();
        assert_eq!(
            url,
            "postgres://g@db:5432/x?application_name=a&sslmode=require"
        );
        assert_eq!(
            tls,
            Tls {
                mode: Mode::VerifyFull,
                root_cert: Some("/etc/ca x.pem".into())
            }
        );
        let (url, tls) = split_url("postgres://g@db/x").unwrap();
        assert_eq!(
            (url.as_str(), tls.mode),
            ("postgres://g@db/x?sslmode=prefer", Mode::Prefer)
        );
        // libpq: require with a root certificate checks the chain.
        let (_, tls) = split_url("postgres://g@db/x?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(tls.mode, Mode::VerifyCa);
        assert!(matches!(
            split_url("postgres://g@db/x?sslmode=allow-anything"),
            Err(StoreError::Config(_))
        ));
        assert!(matches!(
            split_url("postgres://g@db/x?sslrootcert=%zz"),
            Err(StoreError::Config(_))
        ));
    }
}
