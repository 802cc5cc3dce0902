//! Rule context and channel templates end to end: one `hostwatch once` (the real binary)
//! fires a rule with a `summary`, a `runbook_url` and static `labels` on a tmpfs whose mount
//! point is hostile text, routed by a static label to Slack and Teams (the recording HTTP
//! receiver), a webhook, an exec hook, e-mail (aiosmtpd) and a real Alertmanager, each channel
//! with `title` and `text` templates. Every message is checked as its receiver got it: the
//! templates rendered, the operator's markup kept, the hostile values escaped for the
//! channel's format (Slack mrkdwn, Teams Markdown, the e-mail Subject header and HTML).

mod common;

use common::alertmanager::Alertmanager;
use common::receiver::Receiver;
use common::smtp::Smtp;
use common::tmpfs::Tmpfs;
use serde_json::{Value, json};
use std::path::Path;

/// What the mount point adds to its name: Slack and Markdown control sequences, HTML that
/// would close the e-mail's table, and a line break that would start a `Bcc` header.
const HOSTILE: &str = "<!channel> </td><script>x</script> & (c) _b_ \r\nBcc: evil@example.com";
/// A static label value as hostile as a config allows (one line).
const OWNER: &str = "<!here> <@U1> </td><b>boss</b> [x](https://evil)";
const RUNBOOK: &str = "https://wiki.example.com/runbooks/disk?team=db&x=1";

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(m) => m.values().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// The `env -0` file the recording hook wrote, as (name, value).
fn hook_env(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let raw = std::fs::read(dir.join("env")).expect("the hook ran");
    String::from_utf8_lossy(&raw)
        .split('\0')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

#[test]
fn templates_render_and_every_channel_escapes_hostile_values_for_its_format() {
    let dir = common::tempdir("templates-e2e");
    let fs = Tmpfs::mount(
        &std::env::temp_dir().join(format!("hw-tpl-{}-{HOSTILE}", std::process::id())),
        "1m",
    );
    if !fs.mounted {
        // As root (CI is) the mount must work: a skip there would be a test that cannot fail.
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(!root && std::env::var_os("CI").is_none(), "mount -t tmpfs failed as root");
        println!(
            "!!!!! SKIPPED templates end to end: mount -t tmpfs failed (not root); CI runs as \
             root !!!!!"
        );
        return;
    }
    let mount = fs.path.to_str().unwrap().to_string();
    let http = Receiver::start();
    let smtp = Smtp::start(&dir, &[]);
    let am = Alertmanager::start("templates");
    let hook_dir = dir.join("hook");
    std::fs::create_dir_all(&hook_dir).unwrap();
    let hook = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/hook_record.sh");

    let title = "{{severity}} {{rule}} on {{host}}: {{labels.mount}} ({{labels.owner}})";
    let cfg = json!({
        "host": "web-01", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "collect": {"include": {"mount": [mount]}},
        "delivery": {"timeout": "5s"},
        "rules": [
            {"name": "disk_tpl", "metric": "disk.used_percent", "match": {"mount": mount},
             "warn": ">= 0", "summary": "Disk almost full (really)", "runbook_url": RUNBOOK,
             "labels": {"team": "db", "owner": OWNER}},
            // Fires too, but no route matches its team: nothing is sent for it.
            {"name": "mem_other", "metric": "mem.used_percent", "warn": ">= 0",
             "labels": {"team": "web"}}
        ],
        "channels": {
            "slack": {"type": "slack", "webhook_url": http.url("/slack"), "title": title,
                      "text": "*Owner:* {{labels.owner}} <{{runbook_url}}|runbook> {{description|no description}}"},
            "teams": {"type": "teams", "webhook_url": http.url("/teams"), "title": title,
                      "text": "**Owner:** {{labels.owner}} on {{labels.mount}}"},
            "hook": {"type": "webhook", "url": http.url("/hook"), "title": title,
                     "text": "{{summary}}: {{labels.mount}}"},
            "exec": {"type": "exec", "command": [hook, hook_dir.display().to_string()],
                     "title": title},
            "mail": {"type": "email", "server": format!("127.0.0.1:{}", smtp.port),
                     "tls": "none", "from": "hostwatch@example.com",
                     "to": ["oncall@example.com"], "title": title,
                     "text": "<b>Owner</b> {{labels.owner}} on {{labels.mount}} <a href=\"{{runbook_url}}\">runbook</a>"},
            "am": {"type": "alertmanager", "url": am.base()}
        },
        "routes": [{"match": {"team": "db"},
                    "channels": ["slack", "teams", "hook", "exec", "mail", "am"]}]
    });
    let cfg = common::write(&dir, "config.json", &cfg.to_string());
    let cfg = cfg.to_str().unwrap();

    // `check` shows the templates and the rule's context in the effective config.
    let check = common::run(&["check", "--config", cfg]);
    assert!(check.status.success(), "{}", common::stderr(&check));
    let effective: Value = serde_json::from_str(&common::stdout(&check)).unwrap();
    assert_eq!(effective["channels"]["slack"]["title"], title);
    assert_eq!(effective["rules"][0]["runbook_url"], RUNBOOK);

    let o = common::run(&["once", "--config", cfg, "--first-interval", "200ms"]);
    assert_eq!(o.status.code(), Some(1), "warnings: {}{}", common::stdout(&o), common::stderr(&o));

    let requests = http.wait_for(3, std::time::Duration::from_secs(10));
    let by_path = |p: &str| -> Value {
        let found: Vec<&Value> = requests.iter().filter(|r| r["path"] == p).collect();
        assert_eq!(found.len(), 1, "one request on {p}: {requests:#?}");
        found[0]["json"].clone()
    };

    // Slack: the operator's mrkdwn link stays; no hostile `<…>` survives, every `&` is an
    // entity, and the header is one line.
    let slack = by_path("/slack");
    let header = slack["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(header.starts_with("\u{1F7E0} warning disk_tpl on web-01: "), "{header}");
    assert!(header.contains("&lt;!channel&gt; &lt;/td&gt;&lt;script&gt;x&lt;/script&gt; &amp; "));
    // Cut to Block Kit's header limit, never inside an entity.
    assert!(header.contains(" _b_   Bcc: evil@example.com ("), "{header}");
    assert!(header.encode_utf16().count() <= 150 && header.ends_with('\u{2026}'), "{header}");
    assert!(!header.contains(['\r', '\n']), "{header:?}");
    let all = strings(&slack).join("\n");
    let link = format!("<{}|runbook>", RUNBOOK.replace('&', "&amp;"));
    assert!(all.contains(&format!("*Owner:* &lt;!here&gt; &lt;@U1&gt; &lt;/td&gt;&lt;b&gt;boss&lt;/b&gt; [x](https://evil) {link} no description")), "{all}");
    let rest =
        all.replace(&link, "").replace(&format!("<{}|Runbook>", RUNBOOK.replace('&', "&amp;")), "");
    assert!(!rest.contains(['<', '>']), "only the runbook links are markup: {rest}");
    assert!(all.contains("*Disk almost full (really)*"), "the summary is shown: {all}");
    assert!(all.contains("*Labels*\nowner=&lt;!here&gt;"), "the static labels are shown: {all}");

    // Teams: Markdown escaped in values, the operator's `**` kept, the runbook an action.
    let teams = by_path("/teams");
    let card = &teams["attachments"][0]["content"];
    let title_block = card["body"][0]["text"].as_str().unwrap();
    assert!(title_block.starts_with("warning disk\\_tpl on web-01: "), "{title_block}");
    assert!(title_block.contains("&lt;/td&gt;&lt;script&gt;x&lt;/script&gt; & \\(c\\) \\_b\\_"));
    assert!(title_block.contains("\\[x\\]\\(https://evil\\)"), "{title_block}");
    let texts = strings(&card["body"]).join("\n");
    assert!(
        texts.contains(
            "**Owner:** &lt;\\!here&gt; &lt;@U1&gt; &lt;/td&gt;&lt;b&gt;boss&lt;/b&gt; \\[x\\]"
        ),
        "{texts}"
    );
    assert!(!texts.contains("<script>") && !texts.contains("[x](https://evil)"), "{texts}");
    assert_eq!(card["actions"][0]["url"], RUNBOOK);
    common::assert_valid_card(&teams, "templates");

    // The webhook: JSON needs no escaping; the context and the rendered templates are there.
    let hook = by_path("/hook");
    assert_eq!(hook["summary"], "Disk almost full (really)");
    assert_eq!(hook["runbook_url"], RUNBOOK);
    assert_eq!(hook["rule_labels"], json!({"owner": OWNER, "team": "db"}));
    assert_eq!(hook["labels"]["mount"], mount.as_str());
    assert_eq!(hook["text"], format!("Disk almost full (really): {mount}"));
    assert_eq!(hook["title"], format!("warning disk_tpl on web-01: {mount} ({OWNER})"));

    // The exec hook: the title as a variable, the context too, and on stdin.
    let env = hook_env(&hook_dir);
    assert_eq!(env["HOSTWATCH_TITLE"], format!("warning disk_tpl on web-01: {mount} ({OWNER})"));
    assert_eq!(env["HOSTWATCH_TEXT"], "");
    assert_eq!(env["HOSTWATCH_RUNBOOK_URL"], RUNBOOK);
    assert_eq!(env["HOSTWATCH_RULE_SUMMARY"], "Disk almost full (really)");
    assert_eq!(env["HOSTWATCH_LABEL_TEAM"], "db");
    let stdin: Value =
        serde_json::from_str(&std::fs::read_to_string(hook_dir.join("stdin")).unwrap()).unwrap();
    assert_eq!(stdin["title"], env["HOSTWATCH_TITLE"].as_str());

    // E-mail: the title is the Subject, one line (no Bcc header appears); the HTML part
    // keeps the operator's tags and escapes the values.
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["rcpt_tos"], json!(["oncall@example.com"]));
    let m = common::smtp::parse_mail(mails[0]["content"].as_str().unwrap());
    assert_eq!(m["defects"], json!([]), "{m}");
    let headers = m["headers"].as_array().unwrap();
    let named = |n: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(n))
            .map(|h| h[1].as_str().unwrap())
            .collect()
    };
    assert!(named("Bcc").is_empty(), "{m}");
    let subject = named("Subject");
    assert_eq!(subject.len(), 1, "{m}");
    assert_eq!(
        subject[0],
        format!("warning disk_tpl on web-01: {} ({OWNER})", mount.replace(['\r', '\n'], " "))
    );
    let html = m["parts"][1]["text"].as_str().unwrap();
    assert!(
        html.contains(
            "<div><b>Owner</b> &lt;!here&gt; &lt;@U1&gt; &lt;/td&gt;&lt;b&gt;boss&lt;/b&gt;"
        ),
        "{html}"
    );
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
    let href = RUNBOOK.replace('&', "&amp;");
    assert!(html.contains(&format!("<a href=\"{href}\">runbook</a></div>")), "{html}");
    assert!(html.contains(&format!("<td><a href=\"{href}\">{href}</a></td>")), "{html}");
    assert!(html.contains("<th align=\"left\">Summary</th><td>Disk almost full (really)</td>"));
    let text = m["parts"][0]["text"].as_str().unwrap();
    assert!(text.contains("Labels:            mount="), "{text}");
    assert!(text.contains(&format!("Runbook:           {RUNBOOK}")), "{text}");

    // Alertmanager: the standard annotations and the static labels.
    let alerts = am.wait_until("disk_tpl", "the templated alert", |a| !a.is_empty());
    assert_eq!(alerts[0]["annotations"]["summary"], "Disk almost full (really)");
    assert_eq!(alerts[0]["annotations"]["runbook_url"], RUNBOOK);
    assert_eq!(alerts[0]["labels"]["team"], "db");
    assert_eq!(alerts[0]["labels"]["owner"], OWNER);
    assert_eq!(alerts[0]["labels"]["mount"], mount.as_str());
    assert!(am.alerts("mem_other").is_empty(), "no route matches team=web");
}

#[test]
fn test_notify_dry_run_shows_a_template_rendered() {
    let dir = common::tempdir("templates-dry");
    let cfg = json!({"host": "web-01", "channels": {"ops": {"type": "slack",
        "webhook_url": "https://hooks.slack.com/services/T/B/X",
        "title": "{{severity}}: {{rule}} {{runbook_url|(no runbook)}}"}}});
    let cfg = common::write(&dir, "config.json", &cfg.to_string());
    let o = common::run(&["test-notify", "ops", "--dry-run", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let body: Value = serde_json::from_str(common::stdout(&o).trim()).unwrap();
    assert_eq!(body["blocks"][0]["text"]["text"], "\u{1F7E0} warning: hostwatch_test (no runbook)");
}

#[test]
fn check_refuses_an_unknown_template_field_with_its_position() {
    let dir = common::tempdir("templates-check");
    let text = "{\"channels\": {\"ops\": {\"type\": \"slack\",\n  \"webhook_url\": \"https://hooks.slack.com/x\",\n  \"text\": \"{{sumary}}\"}}}";
    let cfg = common::write(&dir, "config.json", text);
    let o = common::run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    let want = format!(
        "{}:3:14: channels.ops.text: unknown field \"sumary\" (did you mean \"summary\"?)",
        cfg.display()
    );
    assert!(common::stderr(&o).contains(&want), "{}", common::stderr(&o));
}
