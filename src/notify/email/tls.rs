//! TLS for the SMTP connection: the process's rustls configuration ([`crate::notify::tls`],
//! plus the channel's `ca_file` or `insecure_skip_verify`) handed to mail-send as its
//! `TlsConnector`, and certificate errors worded for an SMTP server.

use crate::config::channels::EmailConfig;
use crate::notify::tls::{self, Hints};
use tokio_rustls::TlsConnector;

/// What a refused SMTP server certificate asks the user to configure.
const HINTS: Hints =
    Hints { name_from: "\"server\"", private_ca: "set ca_file to that CA's certificate (PEM)" };

/// Builds the connector for `config` (whose `tls` is not `none`).
pub(crate) fn connector(config: &EmailConfig) -> Result<TlsConnector, String> {
    let client = tls::client_config(config.ca_file.as_deref(), config.insecure_skip_verify)?;
    Ok(TlsConnector::from(client))
}

/// Words a rustls error from the handshake; certificate problems say what to configure.
pub(crate) fn describe(error: &rustls::Error, host: &str) -> String {
    tls::describe(error, host, &HINTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn certificate_errors_point_at_ca_file() {
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let text = describe(&unknown, "mail.example.com");
        assert!(text.contains("certificate") && text.contains("set ca_file"), "{text}");
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
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
            templates: Default::default(),
        };
        assert!(connector(&config).is_ok());
        config.insecure_skip_verify = true;
        assert!(connector(&config).is_ok());
        config.insecure_skip_verify = false;
        config.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        assert!(connector(&config).err().unwrap().contains("/nonexistent/ca.pem"));
    }
}
