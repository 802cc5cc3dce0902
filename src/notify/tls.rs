//! The one rustls client configuration of the process, shared by the HTTP channels and the
//! e-mail channel (ring provider, TLS 1.2 and 1.3; no OpenSSL anywhere).
//!
//! Trusted roots are the system's CA bundle (`SSL_CERT_FILE`, else the usual distribution
//! paths), read once, lazily, on first use; [`client_config`] without `ca_file` and without
//! `insecure_skip_verify` returns that one shared configuration. A `ca_file` (e-mail) adds a
//! lab or company CA to a copy of the system roots; `insecure_skip_verify` checks no
//! certificate (the handshake signatures still are). The process-wide rustls provider is
//! never touched: the provider is passed explicitly.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Where distributions keep the CA bundle (the first that exists is read).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The client configuration for `ca_file` and `insecure_skip_verify`; without either, the
/// one shared configuration over the system roots.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    insecure_skip_verify: bool,
) -> Result<Arc<ClientConfig>, String> {
    if insecure_skip_verify {
        let provider = provider();
        let config = builder(provider.clone())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth();
        return Ok(Arc::new(config));
    }
    let Some(path) = ca_file else { return shared() };
    let mut roots = system_roots().clone();
    add_ca_file(&mut roots, path)?;
    Ok(Arc::new(builder(provider())?.with_root_certificates(roots).with_no_client_auth()))
}

/// The shared configuration over the system roots, built on first use.
fn shared() -> Result<Arc<ClientConfig>, String> {
    static SHARED: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let roots = system_roots().clone();
            if roots.is_empty() {
                log::warn!(
                    "no system CA bundle found (set SSL_CERT_FILE): no TLS server certificate \
                     can be verified"
                );
            }
            Ok(Arc::new(builder(provider())?.with_root_certificates(roots).with_no_client_auth()))
        })
        .clone()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder(
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))
}

/// The system roots, read once.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        if let Some(bundle) = system_bundle() {
            // Best effort, as every TLS client does: old or odd roots in a bundle are skipped.
            if let Ok(iter) = CertificateDer::pem_file_iter(&bundle) {
                roots.add_parsable_certificates(iter.flatten());
            }
        }
        roots
    })
}

/// `SSL_CERT_FILE` when set, else the first existing well-known bundle.
fn system_bundle() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        return Some(PathBuf::from(file));
    }
    SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Adds every certificate of a PEM file; the file must exist and hold at least one, and each
/// must be usable as a trust anchor.
pub(crate) fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("ca_file {shown}: {e}"))?;
    let mut count = 0;
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|e| format!("ca_file {shown}: certificate {}: {e}", i + 1))?;
        roots
            .add(cert)
            .map_err(|e| format!("ca_file {shown}: certificate {} is not usable: {e}", i + 1))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!("ca_file {shown}: no PEM certificate (BEGIN CERTIFICATE) found"));
    }
    Ok(())
}

/// What to tell the user when a certificate is refused.
pub(crate) struct Hints {
    /// Where the host name comes from (`"server"`, `the URL`).
    pub name_from: &'static str,
    /// How to trust a private CA.
    pub private_ca: &'static str,
}

/// Words a rustls error from the handshake; certificate problems say what to configure.
pub(crate) fn describe(error: &rustls::Error, host: &str, hints: &Hints) -> String {
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the TLS certificate of {host} is not valid for that name ({error}); use the host \
             name the certificate lists in {}",
            hints.name_from
        ),
        rustls::Error::InvalidCertificate(_) => format!(
            "the TLS certificate of {host} was not accepted ({error}); if the server uses a \
             private or lab CA, {}",
            hints.private_ca
        ),
        other => format!("TLS handshake with {host} failed: {other}"),
    }
}

/// Accepts any certificate (`insecure_skip_verify`), but still checks that the server holds
/// the key of the certificate it sent.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hostwatch-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn ca_file_problems_are_named() {
        let d = dir("ca");
        let mut roots = RootCertStore::empty();
        let missing = add_ca_file(&mut roots, &d.join("missing.pem")).unwrap_err();
        assert!(missing.starts_with("ca_file ") && missing.contains("missing.pem"), "{missing}");
        let empty = d.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = add_ca_file(&mut roots, &empty).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        let junk = d.join("junk.pem");
        std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap();
        let e = add_ca_file(&mut roots, &junk).unwrap_err();
        assert!(e.contains("certificate 1 is not usable"), "{e}");
        assert!(roots.is_empty());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn the_default_configuration_is_shared() {
        let a = client_config(None, false).unwrap();
        let b = client_config(None, false).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(client_config(None, true).is_ok());
        let e = client_config(Some(Path::new("/nonexistent/ca.pem")), false).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn certificate_errors_give_the_hint() {
        let hints = Hints { name_from: "the URL", private_ca: "trust it" };
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let text = describe(&unknown, "h", &hints);
        assert!(text.contains("certificate") && text.ends_with("trust it"), "{text}");
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(describe(&name, "h", &hints).contains("not valid for that name"));
        let other = rustls::Error::HandshakeNotComplete;
        assert!(describe(&other, "h", &hints).starts_with("TLS handshake with h failed"));
    }
}
