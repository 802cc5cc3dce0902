//! The e-mail channel: SMTP submission with STARTTLS (587), implicit TLS (465) or, on trusted
//! networks, plain SMTP; AUTH PLAIN/LOGIN only over TLS unless `allow_plaintext_auth`.
//!
//! mail-send is async (tokio). Its async stays inside this module: [`EmailSender`] owns one
//! current-thread tokio runtime, created in [`EmailSender::new`] and entered only by
//! `block_on` inside [`Sender::send`], under an overall timeout. Nothing else in hostwatch is
//! async, and a hanging server can hold up at most this channel's worker, for at most the
//! timeout.
//!
//! - [`message`] builds the RFC 5322 message (the same bytes `render` shows).
//! - [`smtp`] drives the conversation and classifies failures.
//! - [`tls`] hands mail-send the process's shared rustls configuration (plus `ca_file`).

pub mod message;
pub mod smtp;
pub mod tls;

use super::escape::base64;
use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::{EmailConfig, EmailTls};
use crate::event::AlertEvent;
use mail_send::Credentials;
use message::Mailbox;
use std::time::Duration;
use tokio_rustls::TlsConnector;

/// The longest a TCP connect may take (less when the overall timeout is shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest overall timeout accepted (a zero timeout could never deliver).
const MIN_TIMEOUT: Duration = Duration::from_millis(100);

/// Sends notifications as e-mail through one SMTP server.
pub struct EmailSender {
    name: String,
    host: String,
    port: u16,
    server: String,
    tls: EmailTls,
    connector: Option<TlsConnector>,
    username: Option<String>,
    credentials: Option<Credentials<String>>,
    /// Kept only to scrub it from any text that leaves this module.
    secret: Option<String>,
    helo: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    envelope_to: Vec<String>,
    templates: crate::config::channels::Templates,
    timeout: Duration,
    /// Always `Some` until dropped (taken in `Drop` to shut down without waiting).
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.secret.as_ref().map(|_| crate::config::REDACTED))
            .field("from", &self.from)
            .field("to", &self.envelope_to)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EmailSender {
    /// Checks the settings, loads the trusted CA certificates and starts the runtime.
    /// `timeout` is the delivery default, used when the channel sets no `timeout`.
    pub fn new(name: &str, config: &EmailConfig, timeout: Duration) -> Result<EmailSender, String> {
        let err = |m: String| format!("channel {name}: {m}");
        let from = Mailbox::parse(&config.from).map_err(|e| err(format!("from: {e}")))?;
        let to = config
            .to
            .iter()
            .enumerate()
            .map(|(i, t)| Mailbox::parse(t).map_err(|e| err(format!("to[{i}]: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(err("\"to\" needs at least one address".into()));
        }
        let credentials = match (&config.username, &config.password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.expose().to_string())),
            (None, None) => None,
            _ => return Err(err("\"username\" and \"password\" go together".into())),
        };
        if credentials.is_some() && config.tls == EmailTls::None {
            if !config.allow_plaintext_auth {
                return Err(err("refusing to send a password without TLS (tls is \"none\"); \
                     use \"starttls\" or \"tls\", or set \"allow_plaintext_auth\" on a trusted \
                     network"
                    .into()));
            }
            log::warn!(
                "channel {name}: allow_plaintext_auth is set: the SMTP password crosses the \
                 network unencrypted"
            );
        }
        let connector = match config.tls {
            EmailTls::None => None,
            EmailTls::StartTls | EmailTls::Tls => Some(tls::connector(config).map_err(err)?),
        };
        if config.insecure_skip_verify && config.tls != EmailTls::None {
            log::warn!(
                "channel {name}: insecure_skip_verify is set: the certificate of SMTP server {} \
                 is not verified, so anyone on the path can read the password and messages",
                config.server()
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err(format!("cannot start the SMTP runtime: {e}")))?;
        Ok(EmailSender {
            name: name.to_string(),
            host: config.host.clone(),
            port: config.port,
            server: config.server(),
            tls: config.tls,
            connector,
            username: config.username.clone(),
            credentials,
            secret: config
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .filter(|p| !p.is_empty()),
            helo: helo_name(&crate::config::system_host_name()),
            envelope_to: to.iter().map(|m| m.addr.clone()).collect(),
            from,
            to,
            templates: config.templates.clone(),
            timeout: config.timeout.unwrap_or(timeout).max(MIN_TIMEOUT),
            runtime: Some(runtime),
        })
    }

    /// The overall time limit of one delivery.
    #[cfg(test)]
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn plan(&self) -> smtp::Plan<'_> {
        smtp::Plan {
            host: &self.host,
            port: self.port,
            server: &self.server,
            tls: self.tls,
            connector: self.connector.as_ref(),
            credentials: self.credentials.as_ref(),
            username: self.username.as_deref(),
            helo: &self.helo,
            from: &self.from.addr,
            to: &self.envelope_to,
            connect_timeout: CONNECT_TIMEOUT.min(self.timeout),
            command_timeout: self.timeout,
        }
    }

    /// Removes the password (and its AUTH encodings) from text bound for logs and output, in
    /// case a server echoes it.
    fn scrub(&self, text: String) -> String {
        let Some(secret) = self.secret.as_deref().filter(|s| s.len() >= 3) else {
            return text;
        };
        let user = self.username.as_deref().unwrap_or("");
        let mut out = text.replace(secret, crate::config::REDACTED);
        for encoded in [base64(secret.as_bytes()), base64(format!("\0{user}\0{secret}").as_bytes())]
        {
            out = out.replace(&encoded, crate::config::REDACTED);
        }
        out
    }
}

impl Sender for EmailSender {
    fn render(&self, event: &AlertEvent) -> Rendered {
        Rendered {
            content_type: "message/rfc822".to_string(),
            body: message::build_with(event, &self.from, &self.to, &self.templates),
        }
    }

    fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError> {
        let body = message::build_with(event, &self.from, &self.to, &self.templates);
        self.deliver(&body)
    }

    fn group_capacity(&self) -> usize {
        GROUP_CAPACITY
    }

    fn send_group(&mut self, events: &[AlertEvent]) -> Result<Receipt, SendError> {
        let body = message::build_group(events, &self.from, &self.to);
        self.deliver(&body)
    }

    fn render_group(&self, events: &[AlertEvent]) -> Rendered {
        Rendered {
            content_type: "message/rfc822".to_string(),
            body: message::build_group(events, &self.from, &self.to),
        }
    }
}

/// Notifications in one grouped e-mail (a table row each).
const GROUP_CAPACITY: usize = 100;

impl EmailSender {
    /// Submits one message, under the channel's timeout.
    fn deliver(&self, body: &str) -> Result<Receipt, SendError> {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(SendError::permanent("the SMTP runtime is shut down"));
        };
        let plan = self.plan();
        let progress = smtp::Progress::default();
        // The timer must be created inside the runtime: build it in the async block.
        let outcome = runtime.block_on(async {
            tokio::time::timeout(self.timeout, smtp::deliver(&plan, body.as_bytes(), &progress))
                .await
        });
        let result = match outcome {
            Ok(result) => result,
            // Cut during QUIT: the message was accepted already.
            Err(_) => match progress.accepted.take() {
                Some(answer) => Ok(answer),
                None => Err(smtp::timed_out(&plan, self.timeout, progress.stage.get())),
            },
        };
        match result {
            Ok(answer) => Ok(Receipt { answer: self.scrub(answer) }),
            Err(SendError::Transient { reason, retry_after }) => {
                Err(SendError::Transient { reason: self.scrub(reason), retry_after })
            }
            Err(SendError::Permanent { reason }) => {
                Err(SendError::Permanent { reason: self.scrub(reason) })
            }
        }
    }
}

impl Drop for EmailSender {
    fn drop(&mut self) {
        // A name lookup may still run on the blocking pool after a timeout: do not wait for it.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The EHLO name: the system host name if it is a plausible domain, else `localhost`.
fn helo_name(host: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    if !host.is_empty() && host.len() <= 253 && host.chars().all(ok) && !host.starts_with('.') {
        host.to_string()
    } else {
        "localhost".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn config() -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: 1,
            tls: EmailTls::None,
            username: None,
            password: None,
            from: "Hostwatch <hw@example.com>".into(),
            to: vec!["a@example.com".into(), "b@example.com".into()],
            ca_file: None,
            insecure_skip_verify: false,
            allow_plaintext_auth: false,
            timeout: None,
            templates: Default::default(),
        }
    }

    #[test]
    fn settings_are_checked_at_construction() {
        let mut c = config();
        c.username = Some("alerts".into());
        c.password = Some("hunter22".into());
        let e = EmailSender::new("mail", &c, Duration::from_secs(5)).unwrap_err();
        assert!(e.starts_with("channel mail: refusing to send a password without TLS"), "{e}");
        assert!(!e.contains("hunter22"));
        c.allow_plaintext_auth = true;
        let s = EmailSender::new("mail", &c, Duration::from_secs(5)).unwrap();
        assert!(!format!("{s:?}").contains("hunter22"));
        let mut c = config();
        c.to = vec!["not an address".into()];
        assert!(
            EmailSender::new("mail", &c, Duration::from_secs(5)).unwrap_err().contains("to[0]")
        );
        let mut c = config();
        c.timeout = Some(Duration::from_secs(3));
        assert_eq!(
            EmailSender::new("m", &c, Duration::from_secs(9)).unwrap().timeout(),
            c.timeout.unwrap()
        );
        assert_eq!(
            EmailSender::new("m", &config(), Duration::from_secs(9)).unwrap().timeout().as_secs(),
            9
        );
    }

    #[test]
    fn render_is_the_message_that_is_sent() {
        let s = EmailSender::new("mail", &config(), Duration::from_secs(5)).unwrap();
        let event = AlertEvent::test_event("web-01", Severity::Critical, 1_796_083_200.0);
        let r = s.render(&event);
        assert_eq!(r.content_type, "message/rfc822");
        assert_eq!(r.body, message::build(&event, &s.from, &s.to));
        assert!(r.body.contains("Subject: [CRITICAL] hostwatch_test firing on web-01"));
    }

    #[test]
    fn unreachable_server_is_a_transient_failure() {
        // Port 1 on loopback: nothing listens, the connect is refused at once.
        let mut s = EmailSender::new("mail", &config(), Duration::from_secs(5)).unwrap();
        let event = AlertEvent::test_event("web-01", Severity::Warning, 1_796_083_200.0);
        let e = s.send(&event).unwrap_err();
        assert!(matches!(e, SendError::Transient { .. }), "{e}");
        assert!(e.reason().starts_with("cannot connect to 127.0.0.1:1"), "{e}");
    }

    #[test]
    fn secrets_are_scrubbed() {
        let mut c = config();
        c.tls = EmailTls::Tls;
        c.username = Some("alerts".into());
        c.password = Some("s3cret!".into());
        let s = EmailSender::new("mail", &c, Duration::from_secs(5)).unwrap();
        let plain = base64(b"\0alerts\0s3cret!");
        let text = format!("x s3cret! {} {plain}", base64(b"s3cret!"));
        assert_eq!(
            s.scrub(text),
            "x <redacted> <redacted> <redacted>".replace("<redacted>", crate::config::REDACTED)
        );
    }

    #[test]
    fn base64_and_helo_names() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(helo_name("web-01.example.com"), "web-01.example.com");
        assert_eq!(helo_name("bad host\r\n"), "localhost");
    }
}
