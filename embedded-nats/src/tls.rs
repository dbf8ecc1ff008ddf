//! TLS on the client port: the configuration ([`TlsConfig`]), loading PEM files, and the
//! handshake a client starts after it has read the plaintext INFO.
//!
//! The order is the classic NATS one: the server sends INFO in plaintext with
//! `tls_required: true` (and `tls_verify: true` when it requires client certificates); the
//! client then starts the TLS handshake, and CONNECT and everything after it go over TLS. A
//! client that sends anything other than a TLS handshake record gets
//! `-ERR 'Secure Connection - TLS Required'` in plaintext and is closed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::error::proto_err;

/// Time a client has to complete the TLS handshake after INFO, by default (as nats-server).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// TLS settings of the client port ([`ServerOptions::tls`](crate::ServerOptions::tls)).
///
/// Either built from PEM files ([`TlsConfig::from_pem_files`]) or from a ready rustls
/// [`ServerConfig`] ([`TlsConfig::new`]).
///
/// ```no_run
/// use std::path::Path;
/// use stan_embedded_nats::{ServerOptions, TlsConfig};
/// let tls = TlsConfig::from_pem_files(
///     Path::new("server.pem"),
///     Path::new("server-key.pem"),
///     Some(Path::new("ca.pem")),
///     true, // clients must present a certificate signed by ca.pem
/// )?;
/// let opts = ServerOptions { tls: Some(tls), ..ServerOptions::default() };
/// # Ok::<(), stan_embedded_nats::TlsError>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ServerConfig>,
    verify: bool,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("verify", &self.verify)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// A ready rustls configuration. `verify` says whether it requires client certificates;
    /// it is advertised to clients as `tls_verify` in INFO and must match `config`.
    pub fn new(config: Arc<ServerConfig>, verify: bool) -> TlsConfig {
        TlsConfig {
            config,
            verify,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Builds the configuration from PEM files (with the `ring` provider): the server's
    /// certificate chain, its private key (PKCS#8, PKCS#1 or SEC1), and, with `verify`, the CA
    /// certificate(s) client certificates must be signed by. Without `verify` no client
    /// certificate is asked for and `ca` is not used.
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        ca: Option<&Path>,
        verify: bool,
    ) -> Result<TlsConfig, TlsError> {
        let chain = load_certificates(cert, TlsFile::Certificate)?;
        let key_der = load_private_key(key)?;
        let provider: Arc<CryptoProvider> = Arc::new(ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = if verify {
            let Some(ca) = ca else {
                return Err(TlsError::VerifyWithoutCa);
            };
            let mut roots = RootCertStore::empty();
            for c in load_certificates(ca, TlsFile::Ca)? {
                roots.add(c).map_err(|e| TlsError::File {
                    what: TlsFile::Ca,
                    path: ca.to_path_buf(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(chain, key_der)
            .map_err(|e| TlsError::Config(format!("certificate and private key: {e}")))?;
        Ok(TlsConfig::new(Arc::new(config), verify))
    }

    /// Sets how long a client has to complete the handshake (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsConfig {
        self.handshake_timeout = timeout;
        self
    }

    /// Whether clients must present a certificate.
    pub fn verify(&self) -> bool {
        self.verify
    }

    /// The rustls configuration.
    pub fn server_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

/// Which file of a TLS setup a [`TlsError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFile {
    /// A certificate (chain) file.
    Certificate,
    /// A private key file.
    Key,
    /// A CA certificate file.
    Ca,
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFile::Certificate => "certificate",
            TlsFile::Key => "private key",
            TlsFile::Ca => "CA certificate",
        })
    }
}

/// A TLS setup that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or holds no usable PEM item.
    #[error("cannot load the TLS {what} file {}: {reason}", path.display())]
    File {
        /// Which file.
        what: TlsFile,
        /// Its path as given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Client verification was asked for without a CA file.
    #[error("TLS client verification needs a CA certificate file")]
    VerifyWithoutCa,
    /// The files were read but do not make a TLS configuration (for example a key that does
    /// not belong to the certificate).
    #[error("invalid TLS setup: {0}")]
    Config(String),
}

fn pem_reason(e: pem::Error, none: &str) -> String {
    match e {
        pem::Error::Io(e) => e.to_string(),
        pem::Error::NoItemsFound => none.to_string(),
        other => format!("invalid PEM: {other}"),
    }
}

/// Reads every certificate of a PEM file; an error when there is none.
pub fn load_certificates(
    path: &Path,
    what: TlsFile,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let none = "no PEM certificate found";
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(pem_reason(e, none)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(pem_reason(e, none)))?;
    if certs.is_empty() {
        return Err(err(none.to_string()));
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        what: TlsFile::Key,
        path: path.to_path_buf(),
        reason: pem_reason(e, "no PEM private key found"),
    })
}

/// Why a client's TLS handshake did not complete.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The client sent something that is not a TLS handshake (it was told so).
    NotTls,
    /// The client closed the connection first.
    Closed,
    /// Not completed within the handshake timeout.
    TimedOut,
    /// The handshake failed: a TLS problem (unknown CA, missing or untrusted client
    /// certificate, ...; kind `InvalidData`) or the connection broke.
    Failed(io::Error),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NotTls => f.write_str("client did not start TLS"),
            Refused::Closed => f.write_str("client closed the connection"),
            Refused::TimedOut => f.write_str("TLS handshake timed out"),
            Refused::Failed(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

/// First byte of a TLS record carrying a handshake message.
const HANDSHAKE_RECORD: u8 = 0x16;

/// Sends `info` (the INFO line) in plaintext, then runs the server side of the handshake the
/// client starts, all within the handshake timeout.
pub(crate) async fn accept(
    tls: &TlsConfig,
    mut stream: TcpStream,
    info: &[u8],
) -> Result<TlsStream<TcpStream>, Refused> {
    let handshake = async {
        if stream.write_all(info).await.is_err() {
            return Err(Refused::Closed);
        }
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return Err(Refused::Closed),
            Ok(_) => {}
        }
        let mut stream = stream;
        if first[0] != HANDSHAKE_RECORD {
            let line = format!("-ERR '{}'\r\n", proto_err::TLS_REQUIRED);
            let _ = stream.write_all(line.as_bytes()).await;
            let _ = stream.shutdown().await;
            return Err(Refused::NotTls);
        }
        TlsAcceptor::from(tls.config.clone())
            .accept(stream)
            .await
            .map_err(Refused::Failed)
    };
    tokio::time::timeout(tls.handshake_timeout, handshake)
        .await
        .unwrap_or(Err(Refused::TimedOut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../test-certs")
            .join(name)
    }

    #[test]
    fn builds_from_the_test_certificates() {
        let t =
            TlsConfig::from_pem_files(&cert("server.pem"), &cert("server-key.pem"), None, false)
                .unwrap();
        assert!(!t.verify());
        let t = TlsConfig::from_pem_files(
            &cert("server.pem"),
            &cert("server-key.pem"),
            Some(&cert("ca.pem")),
            true,
        )
        .unwrap();
        assert!(t.verify());
    }

    #[test]
    fn bad_files_are_named() {
        let missing = cert("no-such.pem");
        let e =
            TlsConfig::from_pem_files(&missing, &cert("server-key.pem"), None, false).unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::File {
                    what: TlsFile::Certificate,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("no-such.pem") && text.contains("certificate"),
            "{text}"
        );

        // A certificate file where the key should be: no private key in it.
        let e = TlsConfig::from_pem_files(&cert("server.pem"), &cert("server.pem"), None, false)
            .unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::File {
                    what: TlsFile::Key,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("no PEM private key"), "{e}");

        // A key file where the certificate should be.
        let e = load_certificates(&cert("server-key.pem"), TlsFile::Certificate).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");

        // A key that does not belong to the certificate.
        let e =
            TlsConfig::from_pem_files(&cert("server.pem"), &cert("client-key.pem"), None, false)
                .unwrap_err();
        assert!(matches!(e, TlsError::Config(_)), "{e:?}");

        let e = TlsConfig::from_pem_files(&cert("server.pem"), &cert("server-key.pem"), None, true)
            .unwrap_err();
        assert!(matches!(e, TlsError::VerifyWithoutCa), "{e:?}");
    }
}
