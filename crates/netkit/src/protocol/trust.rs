//! Which servers a TLS client trusts: the one place that builds a rustls
//! `ClientConfig` for every client in netkit (`fetch`'s HTTPS, `connect` and
//! `relay`'s `tls://` targets), so they share one trust store and one policy.
//!
//! - [`Trust::System`]: the operating system's roots (`rustls-native-certs`: the
//!   distribution's CA bundle, `SSL_CERT_FILE` / `SSL_CERT_DIR` honoured).
//! - [`Trust::CaFile`]: only the certificates in a PEM file, as curl's `--cacert`.
//!   A certificate in that file that the server presents *as its own* is accepted
//!   even when it is self-signed with `CA:TRUE` (what
//!   `openssl req -x509 -addext subjectAltName=...` makes), which webpki alone
//!   refuses as `CaUsedAsEndEntity`: the user named that exact certificate. The
//!   server name is still checked against it, and the handshake signature still
//!   has to verify with its key; its validity dates are not checked (it is pinned
//!   by its bytes, as a fingerprint would pin it).
//! - [`Trust::Insecure`]: any certificate and any name (`--insecure`); handshake
//!   signatures are still checked so the session is at least consistent.
//!
//! Out of scope: client certificates, revocation, ALPN (the caller sets
//! `alpn_protocols` on the returned config).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Whom a TLS client trusts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// The system's root certificates.
    #[default]
    System,
    /// Only the certificates in this PEM file (self-signed server certificates
    /// named here are accepted as themselves).
    CaFile(PathBuf),
    /// No verification at all (unsafe; for tests and debugging).
    Insecure,
}

/// Why a client configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The CA file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The CA file holds no usable certificate (bad PEM, or none at all).
    #[error("CA file {}: {reason}", path.display())]
    BadCaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The system has no root certificates.
    #[error("no system root certificates found; name a CA file (--cacert) or use --insecure")]
    NoSystemRoots,
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

/// The crypto provider every netkit TLS endpoint uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file; an error if there is none.
///
/// # Errors
/// [`TrustError::Read`] or [`TrustError::BadCaFile`].
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let pem = std::fs::read(path).map_err(|error| TrustError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let bad = |reason: String| TrustError::BadCaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(certs)
}

/// A client configuration (safe protocol versions, no client certificate) that
/// trusts what `trust` says.
///
/// ```
/// use netkit::protocol::trust::{client_config, Trust};
/// let config = client_config(&Trust::Insecure)?;
/// assert!(config.alpn_protocols.is_empty());
/// # Ok::<(), netkit::protocol::trust::TrustError>(())
/// ```
///
/// # Errors
/// A [`TrustError`] when the CA file is unusable or the system has no roots.
pub fn client_config(trust: &Trust) -> Result<ClientConfig, TrustError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TrustError::Setup(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        Trust::Insecure => Arc::new(Custom {
            check: Check::Insecure,
            algorithms: provider.signature_verification_algorithms,
        }),
        Trust::System => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TrustError::NoSystemRoots);
            }
            webpki(roots, &provider)?
        }
        Trust::CaFile(path) => {
            let certs = read_certs(path)?;
            let mut roots = RootCertStore::empty();
            for cert in &certs {
                roots.add(cert.clone()).map_err(|e| TrustError::BadCaFile {
                    path: path.clone(),
                    reason: format!("bad CA certificate: {e}"),
                })?;
            }
            Arc::new(Custom {
                check: Check::Pinned {
                    inner: webpki(roots, &provider)?,
                    pinned: certs,
                },
                algorithms: provider.signature_verification_algorithms,
            })
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TrustError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TrustError::Setup(e.to_string()))
}

/// The two verifiers rustls's own cannot be: webpki's verification plus
/// certificates pinned by the CA file ([`Trust::CaFile`]), or none at all
/// ([`Trust::Insecure`]). Both still check the handshake's signatures.
#[derive(Debug)]
struct Custom {
    check: Check,
    algorithms: WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
enum Check {
    /// webpki's verification, plus: a server certificate that is itself one of
    /// the CA file's certificates is accepted when it names the server.
    Pinned {
        inner: Arc<WebPkiServerVerifier>,
        pinned: Vec<CertificateDer<'static>>,
    },
    /// Any certificate.
    Insecure,
}

impl ServerCertVerifier for Custom {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Check::Pinned { inner, pinned } = &self.check else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(ok) => Ok(ok),
            Err(e) if pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) => {
                let parsed = ParsedCertificate::try_from(end_entity).map_err(|_| e)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
