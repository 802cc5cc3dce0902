//! The `state` section: where alert states, the outbox and shared silences are kept besides
//! the local state file. `state.store` is a Redis URL (`redis://[:password@]host[:port][/db]`),
//! kept as a [`Secret`] since it may carry a password; `state.key_prefix` (default
//! `hostwatch`) starts every key.
//!
//! Not for talking to Redis (`crate::store`); `state_dir` stays the top-level key of the
//! local directory.

use super::Secret;
use super::decode::{Decoder, member};
use super::json::Node;

const STATE_SECTION_KEYS: &[&str] = &["store", "key_prefix"];

/// The default `state.key_prefix`.
pub const DEFAULT_KEY_PREFIX: &str = "hostwatch";

/// What a build without the `redis` feature says of a config that names a store.
pub const NO_REDIS_SUPPORT: &str = "this build has no redis support (cargo feature `redis`)";

/// `state.store`: a Redis server the state is mirrored to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The URL as written (it may hold a password): shown only redacted.
    pub url: Secret,
    /// What every key starts with (`{prefix}:{host}:state`, `{prefix}:silences`).
    pub key_prefix: String,
}

/// Decodes `state`; `None` when it names no store (or is wrong, reported).
pub(crate) fn decode_state_section(d: &mut Decoder<'_>, node: &Node) -> Option<StoreConfig> {
    let example = "{\"store\": \"redis://127.0.0.1:6379/0\", \"key_prefix\": \"hostwatch\"}";
    let members = d.object(node, "state", STATE_SECTION_KEYS, example)?;
    let key_prefix = match member(members, "state", "key_prefix") {
        Some((n, path)) => {
            let p = d.non_empty(n, &path, "\"hostwatch\"")?;
            if p.contains(|c: char| c.is_whitespace() || c.is_control()) {
                d.error(n, &path, "must not contain spaces or control characters");
                return None;
            }
            p
        }
        None => DEFAULT_KEY_PREFIX.to_owned(),
    };
    let (n, path) = member(members, "state", "store")?;
    let url = d.string(n, &path, "\"redis://127.0.0.1:6379/0\"")?;
    if let Err(m) = check_store_url(url) {
        d.error(n, &path, m);
        return None;
    }
    if !cfg!(feature = "redis") {
        d.error(n, &path, NO_REDIS_SUPPORT);
        return None;
    }
    Some(StoreConfig { url: Secret::new(url), key_prefix })
}

/// Checks a store URL without ever quoting it (it may hold a password).
fn check_store_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("expected a URL like \"redis://127.0.0.1:6379/0\"".to_owned());
    };
    match scheme {
        "redis" => {}
        "rediss" => {
            return Err("rediss:// (Redis over TLS) is not supported yet: use redis:// on a \
                 trusted network or through a local TLS tunnel"
                .to_owned());
        }
        _ => {
            return Err(format!(
                "unsupported scheme \"{}\" (expected redis://)",
                scheme.escape_debug()
            ));
        }
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("the URL names no host (expected redis://HOST[:PORT][/DB])".to_owned());
    }
    let db = rest[authority.len()..].trim_start_matches('/');
    let db = db.split(['?', '#']).next().unwrap_or("");
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err("the database after the host must be a number (redis://HOST/0)".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_decoded_and_shown_redacted_or_refused_without_the_feature() {
        let text = r#"{"state": {"store": "redis://:hunter2@127.0.0.1:6379/0"}}"#;
        let loaded = crate::config::load_str(text, "c.json", &|_| None);
        if cfg!(feature = "redis") {
            let c = loaded.unwrap();
            let store = c.store.as_ref().unwrap();
            assert_eq!(store.key_prefix, DEFAULT_KEY_PREFIX);
            assert_eq!(format!("{store:?}").matches("hunter2").count(), 0);
            let shown = c.to_effective_json()["state"].to_string();
            assert_eq!(
                shown,
                r#"{"key_prefix":"hostwatch","store":"redis://<redacted>@127.0.0.1:6379/0"}"#
            );
        } else {
            let e = loaded.unwrap_err().to_string();
            assert!(e.contains(NO_REDIS_SUPPORT) && !e.contains("hunter2"), "{e}");
        }
        let e = crate::config::load_str(r#"{"state": {"stor": "x"}}"#, "c.json", &|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("state.stor: unknown key (did you mean \"store\"?)"), "{e}");
    }

    #[test]
    fn store_urls_are_checked_without_quoting_them() {
        assert!(check_store_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_store_url("redis://:hunter2@cache.internal/3").is_ok());
        let e = check_store_url("rediss://:hunter2@cache/0").unwrap_err();
        assert!(e.contains("not supported") && !e.contains("hunter2"), "{e}");
        let e = check_store_url("redis://:hunter2@/0").unwrap_err();
        assert!(e.contains("no host") && !e.contains("hunter2"), "{e}");
        assert!(check_store_url("redis://h/zero").is_err());
        assert!(check_store_url("http://h/0").is_err());
        assert!(check_store_url("h:6379").is_err());
    }
}
