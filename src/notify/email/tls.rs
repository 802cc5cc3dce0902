//! TLS for the SMTP connection: a rustls client configuration (ring provider, TLS 1.2 and 1.3)
//! handed to mail-send as its `TlsConnector`.
//!
//! Trusted roots are the system's CA bundle (`SSL_CERT_FILE`, else the usual distribution
//! paths) plus the certificates of `ca_file`, for a lab or company CA. With
//! `insecure_skip_verify` no certificate is checked (the handshake signatures still are).
//! The process-wide rustls provider is never touched: the provider is passed explicitly.

use crate::config::channels::EmailConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// Where distributions keep the CA bundle (the first that exists is read).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Builds the connector for `config` (whose `tls` is not `none`).
pub fn connector(config: &EmailConfig) -> Result<TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let client = if config.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        if let Some(bundle) = system_bundle() {
            // Best effort, as every TLS client does: old or odd roots in a bundle are skipped.
            if let Ok(iter) = CertificateDer::pem_file_iter(&bundle) {
                roots.add_parsable_certificates(iter.flatten());
            }
        }
        if let Some(path) = &config.ca_file {
            add_ca_file(&mut roots, path)?;
        }
        if roots.is_empty() {
            log::warn!(
                "no system CA bundle found (set SSL_CERT_FILE) and no ca_file: no SMTP server \
                 certificate can be verified"
            );
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(TlsConnector::from(Arc::new(client)))
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
fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), String> {
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

/// Words a rustls error from the handshake; certificate problems say what to configure.
pub fn describe(error: &rustls::Error, host: &str) -> String {
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the TLS certificate of {host} is not valid for that name ({error}); use the host \
             name the certificate lists in \"server\""
        ),
        rustls::Error::InvalidCertificate(_) => format!(
            "the TLS certificate of {host} was not accepted ({error}); if the server uses a \
             private or lab CA, set ca_file to that CA's certificate (PEM)"
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
        let d =
            std::env::temp_dir().join(format!("hostwatch-email-tls-{name}-{}", std::process::id()));
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
    fn certificate_errors_point_at_ca_file() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let text = describe(&unknown, "mail.example.com");
        assert!(text.contains("certificate") && text.contains("set ca_file"), "{text}");
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(describe(&name, "h").contains("not valid for that name"));
        let other = rustls::Error::HandshakeNotComplete;
        assert!(describe(&other, "h").starts_with("TLS handshake with h failed"));
    }

    #[test]
    fn connectors_build_in_every_mode() {
        let mut config = crate::config::channels::EmailConfig {
            host: "localhost".into(),
            port: 465,
            tls: crate::config::channels::EmailTls::Tls,
            username: None,
            password: None,
            from: "a@b".into(),
            to: vec!["c@d".into()],
            ca_file: None,
            insecure_skip_verify: false,
            allow_plaintext_auth: false,
            timeout: None,
        };
        assert!(connector(&config).is_ok());
        config.insecure_skip_verify = true;
        assert!(connector(&config).is_ok());
        config.insecure_skip_verify = false;
        config.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        assert!(connector(&config).err().unwrap().contains("/nonexistent/ca.pem"));
    }
}
