//! Notification channel settings (`channels` key): one typed config per channel type, and
//! their decoding and checks.
//!
//! Only the settings live here (decoding in `decode`); sending is `notify/<channel>.rs`.
//! Secrets (passwords, tokens, webhook URLs, header values) are kept as written here and
//! redacted by `effective`.

mod decode;

pub(crate) use decode::decode_channels;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Every channel type, as written in `type`.
pub const CHANNEL_TYPES: &[&str] =
    &["slack", "teams", "email", "webhook", "alertmanager", "exec", "plugin"];

/// Default re-send period of firing alerts to Alertmanager.
pub const DEFAULT_RESEND_EVERY: Duration = Duration::from_secs(60);
/// Default time limit of an exec hook.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// A named notification channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// The name routes and rules use.
    pub name: String,
    /// The type and its settings.
    pub kind: ChannelKind,
}

/// A channel type with its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum ChannelKind {
    /// Slack incoming webhook or bot token.
    Slack(SlackConfig),
    /// Microsoft Teams Workflows (or legacy MessageCard) webhook.
    Teams(TeamsConfig),
    /// E-mail over SMTP.
    Email(EmailConfig),
    /// A generic HTTP webhook.
    Webhook(WebhookConfig),
    /// Push to an Alertmanager (`/api/v2/alerts`).
    Alertmanager(AlertmanagerConfig),
    /// Run a program (argv, never a shell string).
    Exec(ExecConfig),
    /// A shared-library plugin.
    Plugin(PluginConfig),
}

impl ChannelKind {
    /// The `type` as written in configs.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Slack(_) => "slack",
            ChannelKind::Teams(_) => "teams",
            ChannelKind::Email(_) => "email",
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Alertmanager(_) => "alertmanager",
            ChannelKind::Exec(_) => "exec",
            ChannelKind::Plugin(_) => "plugin",
        }
    }
}

/// How a Slack channel posts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlackTarget {
    /// An incoming webhook URL (secret).
    Webhook {
        /// `https://hooks.slack.com/services/…`.
        url: String,
    },
    /// `chat.postMessage` with a bot token.
    Bot {
        /// `xoxb-…` (secret).
        token: String,
        /// Channel ID (`C…`) or `#name`.
        channel: String,
    },
}

/// `type: "slack"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackConfig {
    /// Webhook or bot.
    pub target: SlackTarget,
    /// Display name override.
    pub username: Option<String>,
}

/// The body format of a Teams webhook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TeamsFormat {
    /// Adaptive Card for a Workflows webhook (the default).
    #[default]
    Workflows,
    /// Legacy MessageCard.
    MessageCard,
}

/// `type: "teams"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamsConfig {
    /// The webhook URL (secret: it is a signed link).
    pub webhook_url: String,
    /// Body format.
    pub format: TeamsFormat,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain connect, then `STARTTLS` (submission, port 587). The default.
    #[default]
    StartTls,
    /// Implicit TLS from the first byte (port 465).
    Tls,
    /// No TLS (trusted networks only).
    None,
}

/// `type: "email"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    /// SMTP server host name or address (IPv6 without brackets).
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// Connection security.
    pub tls: EmailTls,
    /// Login name (always together with `password`).
    pub username: Option<String>,
    /// Password (secret).
    pub password: Option<String>,
    /// Sender address.
    pub from: String,
    /// Recipients (at least one).
    pub to: Vec<String>,
    /// Extra CA certificate file (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    pub insecure_skip_verify: bool,
    /// Allow login over a connection without TLS (`tls: "none"`).
    pub allow_plaintext_auth: bool,
    /// Time limit of one delivery; `None` means the channel's default.
    pub timeout: Option<Duration>,
}

impl EmailConfig {
    /// `host:port` as written in configs (IPv6 hosts in brackets).
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The body format of a generic webhook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebhookFormat {
    /// hostwatch's own JSON notification (the default).
    #[default]
    Json,
    /// Alertmanager's webhook_config body.
    AlertmanagerWebhook,
}

/// `type: "webhook"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// Extra headers, in file order (values are secrets).
    pub headers: Vec<(String, String)>,
    /// Body format.
    pub format: WebhookFormat,
    /// Time limit of one delivery; `None` means the channel's default.
    pub timeout: Option<Duration>,
}

/// `type: "alertmanager"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// Alertmanager base URL (`http://alertmanager:9093`).
    pub url: String,
    /// Time limit of one delivery; `None` means the channel's default.
    pub timeout: Option<Duration>,
    /// Re-send firing alerts this often (Alertmanager resolves alerts it stops hearing of).
    pub resend_every: Duration,
}

/// `type: "exec"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// Program and arguments (never run through a shell).
    pub command: Vec<String>,
    /// Time limit of one run.
    pub timeout: Duration,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
}

/// `type: "plugin"`.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginConfig {
    /// The shared library.
    pub path: PathBuf,
    /// Plugin-specific settings, passed to the plugin as JSON (`{}` when absent).
    pub config: serde_json::Value,
}
