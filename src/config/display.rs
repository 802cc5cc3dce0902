//! The `display` section: how times are shown to people. `display.timezone` is read from the
//! system's time zone database here, so an unknown name is refused at load with its position
//! (the one check of decoding that reads files). Not the place for formatting (`timefmt`).

use super::DisplayConfig;
use super::decode::{Decoder, member};
use super::json::Node;
use std::sync::Arc;

const DISPLAY_KEYS: &[&str] = &["timezone"];

/// Decodes `display`; on an error, the default (UTC) and the error recorded.
pub(crate) fn decode_display(d: &mut Decoder<'_>, node: &Node) -> DisplayConfig {
    let example = "{\"timezone\": \"Europe/Berlin\"}";
    let mut out = DisplayConfig::default();
    let Some(members) = d.object(node, "display", DISPLAY_KEYS, example) else { return out };
    if let Some((n, path)) = member(members, "display", "timezone") {
        let Some(name) = d.non_empty(n, &path, "\"Europe/Berlin\"") else { return out };
        match crate::zone::Zone::by_name(&name) {
            Ok(zone) => out = DisplayConfig { timezone: name, zone: Arc::new(zone) },
            Err(e) => d.error(n, &path, e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    fn load(text: &str) -> Result<super::DisplayConfig, String> {
        crate::config::load_str(text, "t.json", &|_| None)
            .map(|c| c.display)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn utc_by_default_and_named_zones_are_read() {
        let d = load("{}").unwrap();
        assert_eq!(d.timezone, "UTC");
        assert!(d.zone.is_utc());
        let d = load(r#"{"display": {"timezone": "Asia/Kolkata"}}"#).unwrap();
        assert_eq!((d.timezone.as_str(), d.zone.at(0).offset), ("Asia/Kolkata", 19_800));
        assert_eq!(load(r#"{"display": {"timezone": "local"}}"#).unwrap().zone.name(), "local");
    }

    #[test]
    fn an_unknown_zone_is_refused_with_its_position_and_key() {
        let e =
            load("{\"rules\": [],\n  \"display\": {\"timezone\": \"Europe/Berln\"}}").unwrap_err();
        assert_eq!(
            e,
            "t.json:2:27: display.timezone: unknown time zone \"Europe/Berln\" (did you mean \"Europe/Berlin\"?)"
        );
        let e = load(r#"{"display": {"timezone": "", "timezon": 1}}"#).unwrap_err();
        assert!(e.contains("1:26: display.timezone: must not be empty"), "{e}");
        assert!(
            e.contains("1:30: display.timezon: unknown key (did you mean \"timezone\"?)"),
            "{e}"
        );
    }
}
