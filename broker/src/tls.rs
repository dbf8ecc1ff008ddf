//! The TLS files of a configuration, read when the broker starts: the embedded server's
//! certificate, key and CA ([`server_config`]) and those of the connection to an external
//! NATS server ([`check_client_files`]). Every error names the file and the setting it came
//! from, so a bad path stops the start with a message the operator can act on.

use std::path::Path;

use stan_embedded_nats::tls::{load_certificates, load_private_key, TlsFile};
use stan_embedded_nats::{TlsConfig, TlsError};

use crate::config::{ClientTls, ServerTls};

/// A TLS setting that cannot be used: which setting, and why.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {source}")]
pub struct TlsSetupError {
    /// The flag (and config key) that gave the file or value.
    pub setting: &'static str,
    /// Why it cannot be used.
    #[source]
    pub source: TlsError,
}

fn server_setting(e: &TlsError) -> &'static str {
    match e {
        TlsError::File {
            what: TlsFile::Certificate,
            ..
        } => "--tlscert (config tls.cert_file)",
        TlsError::File {
            what: TlsFile::Key, ..
        } => "--tlskey (config tls.key_file)",
        TlsError::File {
            what: TlsFile::Ca, ..
        } => "--tlscacert (config tls.ca_file)",
        TlsError::VerifyWithoutCa => "--tlsverify (config tls.verify)",
        TlsError::Config(_) => "--tlscert and --tlskey (config tls.cert_file and tls.key_file)",
    }
}

/// Reads the embedded server's TLS files into a configuration for its client port.
///
/// ```
/// use stan_broker::config::ServerTls;
/// let err = stan_broker::tls::server_config(&ServerTls {
///     cert_file: "/nonexistent/server.pem".into(),
///     key_file: "/nonexistent/server-key.pem".into(),
///     ca_file: None,
///     verify: false,
///     timeout: None,
/// })
/// .unwrap_err();
/// assert!(err.to_string().starts_with("--tlscert"), "{err}");
/// assert!(err.to_string().contains("/nonexistent/server.pem"), "{err}");
/// ```
pub fn server_config(t: &ServerTls) -> Result<TlsConfig, TlsSetupError> {
    let config =
        TlsConfig::from_pem_files(&t.cert_file, &t.key_file, t.ca_file.as_deref(), t.verify)
            .map_err(|source| TlsSetupError {
                setting: server_setting(&source),
                source,
            })?;
    Ok(match t.timeout {
        Some(timeout) => config.with_handshake_timeout(timeout),
        None => config,
    })
}

/// Checks that the files for the connection to an external server hold what they should (a
/// certificate, a key, CA certificates), before the NATS client reads them.
pub fn check_client_files(t: &ClientTls) -> Result<(), TlsSetupError> {
    let certs = |path: &Path, what, setting| {
        load_certificates(path, what)
            .map(drop)
            .map_err(|source| TlsSetupError { setting, source })
    };
    if let Some(ca) = &t.ca_file {
        certs(
            ca,
            TlsFile::Ca,
            "--tls_client_cacert (config tls.client_ca)",
        )?;
    }
    if let Some(cert) = &t.cert_file {
        certs(
            cert,
            TlsFile::Certificate,
            "--tls_client_cert (config tls.client_cert)",
        )?;
    }
    if let Some(key) = &t.key_file {
        load_private_key(key).map_err(|source| TlsSetupError {
            setting: "--tls_client_key (config tls.client_key)",
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn cert(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../test-certs")
            .join(name)
    }

    fn server(cert_file: &str, key_file: &str, ca: Option<&str>, verify: bool) -> ServerTls {
        ServerTls {
            cert_file: cert(cert_file),
            key_file: cert(key_file),
            ca_file: ca.map(cert),
            verify,
            timeout: None,
        }
    }

    #[test]
    fn server_files_load_or_name_the_setting() {
        assert!(
            !server_config(&server("server.pem", "server-key.pem", None, false))
                .unwrap()
                .verify()
        );
        assert!(server_config(&server(
            "server.pem",
            "server-key.pem",
            Some("ca.pem"),
            true
        ))
        .unwrap()
        .verify());
        let err = |t: ServerTls| server_config(&t).unwrap_err().to_string();
        let e = err(server("server.pem", "missing-key.pem", None, false));
        assert!(
            e.starts_with("--tlskey") && e.contains("missing-key.pem"),
            "{e}"
        );
        let e = err(server(
            "server.pem",
            "server-key.pem",
            Some("server-key.pem"),
            true,
        ));
        assert!(
            e.starts_with("--tlscacert") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = err(server("server.pem", "client-key.pem", None, false));
        assert!(e.starts_with("--tlscert and --tlskey"), "{e}");
    }

    #[test]
    fn client_files_are_checked() {
        let ok = ClientTls {
            cert_file: Some(cert("client.pem")),
            key_file: Some(cert("client-key.pem")),
            ca_file: Some(cert("ca.pem")),
        };
        check_client_files(&ok).unwrap();
        let e = check_client_files(&ClientTls {
            ca_file: Some(cert("nope.pem")),
            ..ok.clone()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--tls_client_cacert") && e.contains("nope.pem"),
            "{e}"
        );
        let e = check_client_files(&ClientTls {
            key_file: Some(cert("client.pem")),
            ..ok
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--tls_client_key") && e.contains("no PEM private key"),
            "{e}"
        );
    }
}
