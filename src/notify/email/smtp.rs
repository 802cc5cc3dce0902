//! One SMTP conversation, driven step by step with mail-send's client so that every failure
//! names the step it happened at and is classified: SMTP 4xx, connection problems and
//! timeouts are transient; 5xx (535: authentication failed), certificate and configuration
//! problems are permanent.
//!
//! The conversation is async (mail-send is tokio-based) but runs only inside the e-mail
//! sender's own current-thread runtime; the caller bounds it with one overall timeout and
//! reads [`Progress`] to say where a timeout struck.

use super::tls;
use crate::config::channels::EmailTls;
use crate::notify::SendError;
use mail_send::smtp::message::Parameters;
use mail_send::{Credentials, SmtpClient};
use std::cell::{Cell, RefCell};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The longest server reply text kept in a message, in characters.
const REPLY_LIMIT: usize = 300;

/// Everything one delivery needs, borrowed from the sender.
pub struct Plan<'a> {
    /// Host to connect to (and to check the certificate against).
    pub host: &'a str,
    /// Port.
    pub port: u16,
    /// `host:port` for messages.
    pub server: &'a str,
    /// Connection security.
    pub tls: EmailTls,
    /// The TLS connector (absent with `tls: none`).
    pub connector: Option<&'a TlsConnector>,
    /// Login, if any.
    pub credentials: Option<&'a Credentials<String>>,
    /// The login name, for messages.
    pub username: Option<&'a str>,
    /// The EHLO name.
    pub helo: &'a str,
    /// Envelope sender.
    pub from: &'a str,
    /// Envelope recipients.
    pub to: &'a [String],
    /// Limit of the TCP connect.
    pub connect_timeout: Duration,
    /// Limit of each command (the caller bounds the whole).
    pub command_timeout: Duration,
}

/// A step of the conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// TCP connect (and name resolution).
    #[default]
    Connect,
    /// Implicit TLS handshake.
    Handshake,
    /// Waiting for the 220 greeting.
    Greeting,
    /// EHLO.
    Ehlo,
    /// STARTTLS and its handshake.
    StartTls,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO (index into the recipients).
    Rcpt(usize),
    /// DATA and the message.
    Data,
    /// QUIT, after the message was accepted.
    Quit,
}

impl Stage {
    fn words(self) -> &'static str {
        match self {
            Stage::Connect => "connecting",
            Stage::Handshake => "during the TLS handshake",
            Stage::Greeting => "waiting for the server greeting",
            Stage::Ehlo => "at EHLO",
            Stage::StartTls => "at STARTTLS",
            Stage::Auth => "during AUTH",
            Stage::MailFrom => "at MAIL FROM",
            Stage::Rcpt(_) => "at RCPT TO",
            Stage::Data => "at DATA",
            Stage::Quit => "at QUIT",
        }
    }
}

/// Where the conversation got to; read after a timeout.
#[derive(Debug, Default)]
pub struct Progress {
    /// The current step.
    pub stage: Cell<Stage>,
    /// The server's answer once it accepted the message.
    pub accepted: RefCell<Option<String>>,
}

/// The transient error of a conversation cut by the overall timeout at `stage`.
pub fn timed_out(plan: &Plan<'_>, limit: Duration, stage: Stage) -> SendError {
    let hint = if stage == Stage::Greeting && plan.tls != EmailTls::Tls {
        "; if the server expects TLS from the first byte (port 465), set tls to \"tls\""
    } else {
        ""
    };
    SendError::transient(format!(
        "{}: timed out after {} {}{hint}",
        plan.server,
        seconds(limit),
        stage.words()
    ))
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{:?}", d) }
}

/// Runs the conversation; `Ok` is the server's answer to the message.
pub async fn deliver(
    plan: &Plan<'_>,
    message: &[u8],
    progress: &Progress,
) -> Result<String, SendError> {
    progress.stage.set(Stage::Connect);
    let tcp = match tokio::time::timeout(
        plan.connect_timeout,
        TcpStream::connect((plan.host, plan.port)),
    )
    .await
    {
        Err(_) => return Err(timed_out(plan, plan.connect_timeout, Stage::Connect)),
        Ok(Err(e)) => {
            return Err(SendError::transient(format!("cannot connect to {}: {e}", plan.server)));
        }
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let mut client = SmtpClient { stream: tcp, timeout: plan.command_timeout };
    let connector = || {
        plan.connector.ok_or_else(|| SendError::permanent("TLS is not configured for this channel"))
    };
    match plan.tls {
        EmailTls::Tls => {
            progress.stage.set(Stage::Handshake);
            let mut client = client
                .into_tls(connector()?, plan.host)
                .await
                .map_err(|e| fail(plan, Stage::Handshake, e))?;
            greeting(&mut client, plan, progress).await?;
            session(&mut client, plan, message, progress).await
        }
        EmailTls::StartTls => {
            greeting(&mut client, plan, progress).await?;
            progress.stage.set(Stage::Ehlo);
            client.ehlo(plan.helo).await.map_err(|e| fail(plan, Stage::Ehlo, e))?;
            progress.stage.set(Stage::StartTls);
            let mut client = client
                .start_tls(connector()?, plan.host)
                .await
                .map_err(|e| fail(plan, Stage::StartTls, e))?;
            session(&mut client, plan, message, progress).await
        }
        EmailTls::None => {
            greeting(&mut client, plan, progress).await?;
            session(&mut client, plan, message, progress).await
        }
    }
}

async fn greeting<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<S>,
    plan: &Plan<'_>,
    progress: &Progress,
) -> Result<(), SendError> {
    progress.stage.set(Stage::Greeting);
    let reply = client.read().await.map_err(|e| fail(plan, Stage::Greeting, e))?;
    if (200..300).contains(&reply.code) {
        Ok(())
    } else {
        Err(refused(
            plan,
            Stage::Greeting,
            reply.code,
            &reply_text(reply.code, reply.esc, &reply.message),
        ))
    }
}

/// EHLO, AUTH, the envelope and the message, on a connection that is as secure as it gets.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<S>,
    plan: &Plan<'_>,
    message: &[u8],
    progress: &Progress,
) -> Result<String, SendError> {
    progress.stage.set(Stage::Ehlo);
    let capabilities = client.ehlo(plan.helo).await.map_err(|e| fail(plan, Stage::Ehlo, e))?;
    if let Some(credentials) = plan.credentials {
        progress.stage.set(Stage::Auth);
        client
            .authenticate(credentials, &capabilities)
            .await
            .map_err(|e| fail(plan, Stage::Auth, e))?;
    }
    progress.stage.set(Stage::MailFrom);
    let none = Parameters::new();
    client.mail_from(plan.from, &none).await.map_err(|e| fail(plan, Stage::MailFrom, e))?;
    let mut refused_permanently = Vec::new();
    let mut refused_transiently = Vec::new();
    for (i, rcpt) in plan.to.iter().enumerate() {
        progress.stage.set(Stage::Rcpt(i));
        match client.rcpt_to(rcpt, &none).await {
            Ok(()) => {}
            Err(mail_send::Error::UnexpectedReply(r)) => {
                let entry = format!("{rcpt} ({})", reply_text(r.code, r.esc, &r.message));
                if (400..500).contains(&r.code) {
                    refused_transiently.push(entry);
                } else {
                    refused_permanently.push(entry);
                }
            }
            Err(e) => return Err(fail(plan, Stage::Rcpt(i), e)),
        }
    }
    let refused_count = refused_permanently.len() + refused_transiently.len();
    if !refused_transiently.is_empty() || refused_count == plan.to.len() {
        // Nobody gets the message now, so a retry reaches everyone exactly once.
        let _ = client.rset().await;
        quit(client).await;
        let all: Vec<String> =
            refused_transiently.iter().chain(&refused_permanently).cloned().collect();
        let reason = format!("{}: recipient refused at RCPT TO: {}", plan.server, all.join("; "));
        return Err(if refused_transiently.is_empty() {
            SendError::permanent(reason)
        } else {
            SendError::transient(reason)
        });
    }
    progress.stage.set(Stage::Data);
    let reply = client.data(message).await.map_err(|e| fail(plan, Stage::Data, e))?;
    let mut answer = reply_text(reply.code, reply.esc, &reply.message);
    if !refused_permanently.is_empty() {
        log::warn!(
            "SMTP {}: message delivered, but these recipients were refused: {}",
            plan.server,
            refused_permanently.join("; ")
        );
        answer.push_str(&format!("; refused recipients: {}", refused_permanently.join("; ")));
    }
    progress.stage.set(Stage::Quit);
    *progress.accepted.borrow_mut() = Some(answer.clone());
    quit(client).await;
    Ok(answer)
}

/// Says goodbye, briefly: the message is already accepted, so the answer does not matter.
async fn quit<S: AsyncRead + AsyncWrite + Unpin>(client: &mut SmtpClient<S>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), client.cmd(b"QUIT\r\n")).await;
}

/// `550 5.1.1 text`, on one line and cut to a readable length.
pub fn reply_text(code: u16, esc: [u8; 3], message: &str) -> String {
    let text = crate::notify::escape::one_line(message.trim());
    let text = match text.char_indices().nth(REPLY_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    };
    if esc == [0, 0, 0] {
        format!("{code} {text}")
    } else {
        format!("{code} {}.{}.{} {text}", esc[0], esc[1], esc[2])
    }
}

/// A non-success reply at `stage`: 4xx transient, anything else permanent.
pub fn refused(plan: &Plan<'_>, stage: Stage, code: u16, reply: &str) -> SendError {
    let reason = match stage {
        Stage::StartTls => format!(
            "{}: the server refused STARTTLS ({reply}); if it expects TLS from the first byte \
             (port 465), set tls to \"tls\"",
            plan.server
        ),
        Stage::Auth => {
            let user = plan.username.unwrap_or("");
            let hint = if code == 535 { "; check username and password" } else { "" };
            format!("{}: authentication failed for user {user:?}: {reply}{hint}", plan.server)
        }
        _ => format!("{}: refused {}: {reply}", plan.server, stage.words()),
    };
    if (400..500).contains(&code) {
        SendError::transient(reason)
    } else {
        SendError::permanent(reason)
    }
}

/// Words and classifies a mail-send error at `stage`.
pub fn fail(plan: &Plan<'_>, stage: Stage, error: mail_send::Error) -> SendError {
    use mail_send::Error as E;
    let server = plan.server;
    match error {
        E::UnexpectedReply(r) | E::AuthenticationFailed(r) => {
            refused(plan, stage, r.code, &reply_text(r.code, r.esc, &r.message))
        }
        E::Tls(e) => {
            let hint = match (stage, e.as_ref()) {
                (_, rustls::Error::InvalidCertificate(_)) => "",
                (Stage::Handshake, _) => {
                    "; if the server starts in plain text and offers STARTTLS (port 587), set \
                     tls to \"starttls\""
                }
                _ => "",
            };
            SendError::permanent(format!("{server}: {}{hint}", tls::describe(&e, plan.host)))
        }
        E::Timeout => timed_out(plan, plan.command_timeout, stage),
        E::Io(e) => {
            SendError::transient(format!("{server}: connection failed {}: {e}", stage.words()))
        }
        E::UnparseableReply => SendError::transient(format!(
            "{server}: connection closed or unreadable reply {}",
            stage.words()
        )),
        E::UnsupportedAuthMechanism => SendError::permanent(format!(
            "{server}: authentication failed: the server offers no AUTH mechanism hostwatch \
             can use (PLAIN, LOGIN){}",
            if plan.tls == EmailTls::None { " on this unencrypted connection" } else { "" }
        )),
        E::MissingStartTls => SendError::permanent(format!(
            "{server}: the server does not offer STARTTLS; set tls to \"tls\" for port 465"
        )),
        E::InvalidTLSName => {
            SendError::permanent(format!("{:?} is not a valid TLS server name", plan.host))
        }
        other => SendError::permanent(format!("{server}: {} failed: {other}", stage.words())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(tls: EmailTls) -> Plan<'static> {
        Plan {
            host: "mail.example.com",
            port: 587,
            server: "mail.example.com:587",
            tls,
            connector: None,
            credentials: None,
            username: Some("alerts"),
            helo: "web-01",
            from: "hw@example.com",
            to: &[],
            connect_timeout: Duration::from_secs(3),
            command_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn replies_are_classified_by_their_first_digit() {
        let p = plan(EmailTls::StartTls);
        let r = reply_text(451, [4, 3, 0], "try\r\nlater");
        assert_eq!(r, "451 4.3.0 try  later");
        let e = refused(&p, Stage::Rcpt(0), 451, &r);
        assert!(matches!(e, SendError::Transient { .. }), "{e}");
        assert_eq!(e.reason(), "mail.example.com:587: refused at RCPT TO: 451 4.3.0 try  later");
        let e = refused(&p, Stage::Data, 550, "550 no");
        assert!(matches!(e, SendError::Permanent { .. }));
        let e = refused(&p, Stage::Auth, 535, "535 5.7.8 invalid");
        assert!(matches!(e, SendError::Permanent { .. }));
        assert!(e.reason().contains("authentication failed for user \"alerts\""), "{e}");
        assert!(e.reason().contains("check username and password"));
        let e = refused(&p, Stage::Auth, 454, "454 later");
        assert!(matches!(e, SendError::Transient { .. }));
        let e = refused(&p, Stage::StartTls, 502, "502 unknown command");
        assert!(e.reason().contains("set tls to \"tls\""));
        assert_eq!(reply_text(250, [0, 0, 0], "ok"), "250 ok");
        assert_eq!(reply_text(250, [0, 0, 0], &"x".repeat(999)).chars().count(), 4 + 301);
    }

    #[test]
    fn connection_and_tls_errors_are_classified() {
        let p = plan(EmailTls::StartTls);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(matches!(
            fail(&p, Stage::Data, mail_send::Error::Io(io)),
            SendError::Transient { .. }
        ));
        let t = fail(&p, Stage::Greeting, mail_send::Error::Timeout);
        assert!(matches!(t, SendError::Transient { .. }));
        assert_eq!(
            t.reason(),
            "mail.example.com:587: timed out after 10s waiting for the server greeting; if the \
             server expects TLS from the first byte (port 465), set tls to \"tls\""
        );
        let implicit = fail(&plan(EmailTls::Tls), Stage::Greeting, mail_send::Error::Timeout);
        assert!(implicit.reason().ends_with("waiting for the server greeting"), "{implicit}");
        let garbage = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let e =
            fail(&plan(EmailTls::Tls), Stage::Handshake, mail_send::Error::Tls(Box::new(garbage)));
        assert!(e.reason().contains("set tls to \"starttls\""), "{e}");
        let closed = fail(&p, Stage::Ehlo, mail_send::Error::UnparseableReply);
        assert!(matches!(closed, SendError::Transient { .. }));
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let e = fail(&p, Stage::StartTls, mail_send::Error::Tls(Box::new(cert)));
        assert!(matches!(e, SendError::Permanent { .. }));
        assert!(e.reason().contains("certificate") && e.reason().contains("ca_file"), "{e}");
        let e =
            fail(&plan(EmailTls::None), Stage::Auth, mail_send::Error::UnsupportedAuthMechanism);
        assert!(matches!(e, SendError::Permanent { .. }));
        assert!(e.reason().contains("authentication failed") && e.reason().contains("unencrypted"));
        let e = fail(&p, Stage::Ehlo, mail_send::Error::MissingStartTls);
        assert!(matches!(e, SendError::Permanent { .. }));
    }

    #[test]
    fn timeouts_name_the_stage() {
        let p = plan(EmailTls::Tls);
        let e = timed_out(&p, Duration::from_millis(2500), Stage::Rcpt(1));
        assert_eq!(e.reason(), "mail.example.com:587: timed out after 2.5s at RCPT TO");
    }
}
