//! Notification channel settings (`channels` key): one typed config per channel type, and
//! their decoding and checks.
//!
//! Only the settings live here (decoding in `decode`); sending is `notify/<channel>.rs`.
//! Secrets (passwords, tokens, webhook URLs, header values, exec `env` values) are kept as
//! written in a [`Secret`], whose `Debug` redacts, so these types may derive `Debug`; plugin
//! settings keep their JSON and show it redacted (`effective`) in `Debug`. `check` output is
//! rendered by `effective`.

mod decode;
mod pacing;

pub(crate) use decode::{check_url, decode_channels};
pub(crate) use pacing::check_pacing;
pub use pacing::{Grouping, Pacing, RateLimit};

use super::Secret;
pub use crate::notify::template::Template;
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

/// A channel's message templates (`title`, `text`), compiled at load; `None`: the
/// channel's own message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Templates {
    /// The message's title (Slack header, Teams title, e-mail Subject, `title` in JSON).
    pub title: Option<Template>,
    /// The message's text, shown in place of the rule's description.
    pub text: Option<Template>,
}

/// A named notification channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// The name routes and rules use.
    pub name: String,
    /// The type and its settings.
    pub kind: ChannelKind,
    /// Grouping and rate limits (every type).
    pub pacing: Pacing,
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
        url: Secret,
    },
    /// `chat.postMessage` with a bot token.
    Bot {
        /// `xoxb-…` (secret).
        token: Secret,
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
    /// `title` and `text` templates.
    pub templates: Templates,
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
    pub webhook_url: Secret,
    /// Body format.
    pub format: TeamsFormat,
    /// `title` and `text` templates.
    pub templates: Templates,
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
    pub password: Option<Secret>,
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
    /// `title` and `text` templates.
    pub templates: Templates,
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
    /// Where to POST (secret: a generic webhook's path is often its credential).
    pub url: Secret,
    /// Extra headers, in file order (values are secrets).
    pub headers: Vec<(String, Secret)>,
    /// Body format.
    pub format: WebhookFormat,
    /// Time limit of one delivery; `None` means the channel's default.
    pub timeout: Option<Duration>,
    /// `title` and `text` templates.
    pub templates: Templates,
}

/// `type: "alertmanager"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// Alertmanager base URL (`http://alertmanager:9093`; secret: it may carry basic-auth
    /// user info).
    pub url: Secret,
    /// Time limit of one delivery; `None` means the channel's default.
    pub timeout: Option<Duration>,
    /// Re-send firing alerts this often (Alertmanager resolves alerts it stops hearing of).
    pub resend_every: Duration,
    /// Also keep an always-firing `HostwatchWatchdog` alert there while the agent is healthy
    /// (Alertmanager's dead-man's switch: a route that pages when it stops arriving).
    pub watchdog: bool,
}

/// `type: "exec"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// Program and arguments (never run through a shell).
    pub command: Vec<String>,
    /// Time limit of one run.
    pub timeout: Duration,
    /// Extra environment variables (values are secrets).
    pub env: BTreeMap<String, Secret>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// `title` and `text` templates.
    pub templates: Templates,
}

/// `type: "plugin"`.
#[derive(Clone, PartialEq)]
pub struct PluginConfig {
    /// The shared library.
    pub path: PathBuf,
    /// Plugin-specific settings, passed to the plugin as JSON (`{}` when absent). Any value
    /// may be a credential (hostwatch cannot tell): `Debug` shows the top-level keys only,
    /// every value `<redacted>`. (`check` output keeps the secret-key heuristic.)
    pub config: serde_json::Value,
}

impl std::fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginConfig")
            .field("path", &self.path)
            .field("config", &redact_all_values(&self.config))
            .finish()
    }
}

/// The top-level keys of a plugin's settings, each value `<redacted>`; anything but an
/// object is `<redacted>` as a whole.
fn redact_all_values(config: &serde_json::Value) -> serde_json::Value {
    match config {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.keys().map(|k| (k.clone(), super::REDACTED.into())).collect(),
        ),
        _ => super::REDACTED.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: &[&str] = &[
        "hooks-s3cret",
        "xoxb-s3cret",
        "sig-s3cret",
        "smtp-s3cret",
        "bearer-s3cret",
        "am-s3cret",
        "env-s3cret",
        "plugin-s3cret",
    ];

    #[test]
    fn debug_output_of_every_channel_type_holds_no_secret() {
        let kinds = vec![
            ChannelKind::Slack(SlackConfig {
                target: SlackTarget::Webhook {
                    url: "https://hooks.slack.com/T/B/hooks-s3cret".into(),
                },
                username: None,
                templates: Templates::default(),
            }),
            ChannelKind::Slack(SlackConfig {
                target: SlackTarget::Bot { token: "xoxb-s3cret".into(), channel: "#ops".into() },
                username: Some("hostwatch".into()),
                templates: Templates::default(),
            }),
            ChannelKind::Teams(TeamsConfig {
                webhook_url: "https://x.logic.azure.com/wf?sig=sig-s3cret".into(),
                format: TeamsFormat::Workflows,
                templates: Templates::default(),
            }),
            ChannelKind::Email(EmailConfig {
                host: "smtp.example.com".into(),
                port: 587,
                tls: EmailTls::StartTls,
                username: Some("alerts".into()),
                password: Some("smtp-s3cret".into()),
                from: "a@example.com".into(),
                to: vec!["b@example.com".into()],
                ca_file: None,
                insecure_skip_verify: false,
                allow_plaintext_auth: false,
                timeout: None,
                templates: Templates::default(),
            }),
            ChannelKind::Webhook(WebhookConfig {
                url: "https://u:hooks-s3cret@h.example/x".into(),
                headers: vec![("Authorization".into(), "Bearer bearer-s3cret".into())],
                format: WebhookFormat::Json,
                timeout: None,
                templates: Templates::default(),
            }),
            ChannelKind::Alertmanager(AlertmanagerConfig {
                url: "https://admin:am-s3cret@am.example:9093".into(),
                timeout: None,
                resend_every: DEFAULT_RESEND_EVERY,
                watchdog: false,
            }),
            ChannelKind::Exec(ExecConfig {
                command: vec!["/bin/true".into()],
                timeout: DEFAULT_EXEC_TIMEOUT,
                env: [("PAGER_TOKEN".to_string(), Secret::from("env-s3cret"))].into(),
                cwd: None,
                templates: Templates::default(),
            }),
            ChannelKind::Plugin(PluginConfig {
                path: "/usr/lib/hostwatch/plugins/libx.so".into(),
                config: serde_json::json!({"api_token": "plugin-s3cret", "team": "infra",
                                           "nested": {"password": "plugin-s3cret"},
                                           "endpoint": "https://h.example/hook/plugin-s3cret",
                                           "dsn": "plugin-s3cret"}),
            }),
        ];
        for kind in kinds {
            let channel = Channel { name: "c".into(), kind, pacing: Pacing::default() };
            for shown in [format!("{channel:?}"), format!("{channel:#?}")] {
                for secret in SECRETS {
                    assert!(!shown.contains(secret), "{secret} in {shown}");
                }
                assert!(shown.contains("<redacted>"), "{shown}");
            }
        }
    }
    #[test]
    fn plugin_debug_shows_keys_only() {
        let p = PluginConfig {
            path: "/p.so".into(),
            config: serde_json::json!({"team": "infra", "hook": "https://h/x/s3cret", "n": 3}),
        };
        let shown = format!("{p:?}");
        assert!(shown.contains(r#""team": String("<redacted>")"#), "{shown}");
        for value in ["infra", "s3cret", "3)"] {
            assert!(!shown.contains(value), "{value} in {shown}");
        }
        let p = PluginConfig { path: "/p.so".into(), config: serde_json::json!(["s3cret"]) };
        assert!(!format!("{p:?}").contains("s3cret"));
        // `check` output keeps the heuristic: a plain value stays readable there.
        let shown =
            crate::config::effective::redact_secret_keys(&serde_json::json!({"team": "infra"}));
        assert_eq!(shown["team"], "infra");
    }
}
