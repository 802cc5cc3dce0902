//! Decoding of `collect.processes`: the process groups whose `proc.*{name=…}` series the
//! collector keeps.
//!
//! Each group has a `name` (the series label, unique, `[A-Za-z0-9_.-]+`) and exactly one
//! matcher: `comm` (the kernel's process name, exact, at most 15 bytes: the kernel keeps no
//! more, so a longer name could never match and is refused), `cmdline` (a glob over the
//! arguments joined by spaces) or `pidfile` (an absolute path). Process checks read
//! `/proc/[pid]`, so a config that asks for them with the sysinfo backend is refused. Not the
//! place for scanning processes (`collect::linux::procs`).

use super::decode::{Decoder, get, member, valid_name};
use super::error::index_path;
use super::json::Node;
use super::{CollectBackend, ProcessGroup, ProcessMatcher};
use std::path::PathBuf;

/// The keys of one group.
const GROUP_KEYS: &[&str] = &["name", "comm", "cmdline", "pidfile"];
/// The matcher keys, of which a group has exactly one.
const MATCHER_KEYS: [&str; 3] = ["comm", "cmdline", "pidfile"];
/// The longest process name the kernel keeps (`TASK_COMM_LEN` − 1).
pub(crate) const COMM_MAX: usize = 15;
/// At most this many groups (each costs a match per process per tick; the scanner notes a
/// process's groups in a fixed array of this size).
pub(crate) const MAX_GROUPS: usize = 256;

/// Decodes the `processes` array of `collect` (at `path`), given the backend decoded there.
pub(crate) fn decode_processes(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    backend: CollectBackend,
) -> Vec<ProcessGroup> {
    let example = "[{\"name\": \"nginx\", \"comm\": \"nginx\"}]";
    let Some(items) = d.array(node, path, example) else { return Vec::new() };
    if items.is_empty() {
        return Vec::new();
    }
    let sysinfo = backend == CollectBackend::Sysinfo
        || (backend == CollectBackend::Auto && !cfg!(target_os = "linux"));
    if sysinfo {
        d.error(
            node,
            path,
            "process checks read /proc/[pid] and need the proc backend (Linux): the sysinfo \
             backend cannot provide proc.* (set collect.backend to \"auto\" or \"proc\", or \
             remove collect.processes)",
        );
        return Vec::new();
    }
    if items.len() > MAX_GROUPS {
        d.error(node, path, format!("at most {MAX_GROUPS} process groups"));
        return Vec::new();
    }
    let mut out: Vec<ProcessGroup> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = index_path(path, i);
        let Some(group) = decode_group(d, item, &item_path) else { continue };
        if out.iter().any(|g| g.name == group.name) {
            let name_node = get(object_members(item), "name").unwrap_or(item);
            d.error(
                name_node,
                &format!("{item_path}.name"),
                format!("duplicate process group name {:?} (names label the series: each must be unique)", group.name),
            );
            continue;
        }
        out.push(group);
    }
    out
}

/// The members of an object node (empty for anything else; already reported).
fn object_members(node: &Node) -> &[(super::json::Key, Node)] {
    match &node.value {
        super::json::NodeValue::Object(m) => m,
        _ => &[],
    }
}

fn decode_group(d: &mut Decoder<'_>, item: &Node, path: &str) -> Option<ProcessGroup> {
    let example = "{\"name\": \"nginx\", \"comm\": \"nginx\"}";
    let before = d.errors.len();
    let members = d.object(item, path, GROUP_KEYS, example)?;
    let unknown_keys = d.errors.len() != before;
    let name = d.required(get(members, "name"), item, path, "name").and_then(|n| {
        let p = format!("{path}.name");
        let name = d.non_empty(n, &p, "\"nginx\"")?;
        if !valid_name(&name) {
            d.error(
                n,
                &p,
                format!("invalid group name {name:?} (letters, digits, '_', '.' and '-' only)"),
            );
            return None;
        }
        Some(name)
    });
    let given: Vec<&str> =
        MATCHER_KEYS.iter().copied().filter(|k| get(members, k).is_some()).collect();
    let matcher = match given.as_slice() {
        // A misspelt matcher was reported as an unknown key (with its did-you-mean).
        [] if unknown_keys => None,
        [] => {
            d.error(
                item,
                path,
                "missing matcher: give one of \"comm\" (process name), \"cmdline\" (a glob over \
                 the arguments) or \"pidfile\"",
            );
            None
        }
        [key] => decode_matcher(d, members, path, key),
        [first, second, ..] => {
            let (n, p) = member(members, path, second).expect("the key is present");
            d.error(
                n,
                &p,
                format!("a process group has exactly one matcher: both {first:?} and {second:?} are given"),
            );
            None
        }
    };
    if d.errors.len() != before {
        return None;
    }
    Some(ProcessGroup { name: name?, matcher: matcher? })
}

fn decode_matcher(
    d: &mut Decoder<'_>,
    members: &[(super::json::Key, Node)],
    path: &str,
    key: &str,
) -> Option<ProcessMatcher> {
    let (n, p) = member(members, path, key)?;
    match key {
        "comm" => {
            let comm = d.string(n, &p, "\"nginx\"")?;
            if comm.is_empty() {
                d.error(n, &p, "must not be empty (expected a process name like \"nginx\")");
                return None;
            }
            if comm.len() > COMM_MAX {
                let cut = truncate(comm, COMM_MAX);
                d.error(
                    n,
                    &p,
                    format!(
                        "{comm:?} is {} bytes; the kernel keeps only the first {COMM_MAX} of a \
                         process name, so it can never match: write {cut:?}, or match the \
                         arguments with \"cmdline\"",
                        comm.len()
                    ),
                );
                return None;
            }
            if comm.contains(['\n', '\0']) {
                d.error(n, &p, "a process name holds no newline or NUL");
                return None;
            }
            Some(ProcessMatcher::Comm(comm.to_owned()))
        }
        "cmdline" => {
            let glob = d.string(n, &p, "\"*gunicorn*app:api*\"")?;
            if glob.trim().is_empty() {
                d.error(n, &p, "empty pattern (expected a glob like \"*gunicorn*app:api*\")");
                return None;
            }
            Some(ProcessMatcher::Cmdline(glob.to_owned()))
        }
        _ => {
            let file = d.non_empty(n, &p, "\"/run/nginx.pid\"")?;
            if !file.starts_with('/') {
                d.error(n, &p, format!("{file:?} is not an absolute path"));
                return None;
            }
            Some(ProcessMatcher::Pidfile(PathBuf::from(file)))
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::super::{ProcessMatcher, load_str};

    fn errors(collect: &str) -> Vec<String> {
        let text = format!("{{\"collect\": {collect}, \"rules\": []}}");
        let e = load_str(&text, "t.json", &|_| None).expect_err("expected errors");
        e.0.iter().map(|e| e.to_string().trim_start_matches("t.json:").to_owned()).collect()
    }

    fn one(collect: &str) -> String {
        let all = errors(collect);
        assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
        all.into_iter().next().unwrap()
    }

    #[test]
    fn the_three_matchers_decode_in_file_order() {
        let text = r#"{"collect": {"processes": [
            {"name": "nginx", "comm": "nginx"},
            {"name": "api", "cmdline": "*gunicorn*app:api*"},
            {"name": "db", "pidfile": "/run/postgresql/15-main.pid"}]}, "rules": []}"#;
        let c = load_str(text, "t.json", &|_| None).unwrap();
        let got: Vec<_> =
            c.collect.processes.iter().map(|g| (g.name.as_str(), g.matcher.clone())).collect();
        assert_eq!(
            got,
            [
                ("nginx", ProcessMatcher::Comm("nginx".into())),
                ("api", ProcessMatcher::Cmdline("*gunicorn*app:api*".into())),
                ("db", ProcessMatcher::Pidfile("/run/postgresql/15-main.pid".into())),
            ]
        );
        let effective = c.to_effective_json();
        assert_eq!(effective["collect"]["processes"][1]["cmdline"], "*gunicorn*app:api*");
    }

    #[test]
    fn unknown_keys_get_a_did_you_mean_with_position_and_path() {
        assert_eq!(
            one(r#"{"processes": [{"name": "nginx", "comn": "nginx"}]}"#),
            "1:46: collect.processes[0].comn: unknown key (did you mean \"comm\"?)"
        );
        assert_eq!(
            one(r#"{"proceses": []}"#),
            "1:14: collect.proceses: unknown key (did you mean \"processes\"?)"
        );
    }

    #[test]
    fn exactly_one_matcher_and_a_valid_unique_name() {
        let e = one(r#"{"processes": [{"name": "x", "comm": "a", "cmdline": "*a*"}]}"#);
        assert!(e.starts_with("1:66: collect.processes[0].cmdline: a process group has exactly one matcher: both \"comm\" and \"cmdline\""), "{e}");
        let e = one(r#"{"processes": [{"name": "x"}]}"#);
        assert!(e.starts_with("1:28: collect.processes[0]: missing matcher"), "{e}");
        let e = one(r#"{"processes": [{"name": "", "comm": "a"}]}"#);
        assert!(e.starts_with("1:37: collect.processes[0].name: must not be empty"), "{e}");
        let e = one(r#"{"processes": [{"comm": "a"}]}"#);
        assert_eq!(e, "1:28: collect.processes[0]: missing required key \"name\"");
        let e = one(r#"{"processes": [{"name": "a b", "comm": "a"}]}"#);
        assert!(e.contains("collect.processes[0].name: invalid group name \"a b\""), "{e}");
        let e = one(
            r#"{"processes": [{"name": "web", "comm": "nginx"}, {"name": "web", "comm": "apache2"}]}"#,
        );
        assert_eq!(
            e,
            "1:71: collect.processes[1].name: duplicate process group name \"web\" (names label \
             the series: each must be unique)"
        );
    }

    #[test]
    fn matcher_values_are_checked() {
        let e = one(r#"{"processes": [{"name": "j", "comm": "java-application"}]}"#);
        assert!(
            e.starts_with("1:50: collect.processes[0].comm: \"java-application\" is 16 bytes; the kernel keeps only the first 15")
                && e.contains("write \"java-applicatio\""),
            "{e}"
        );
        let e = one(r#"{"processes": [{"name": "j", "comm": ""}]}"#);
        assert!(e.contains("collect.processes[0].comm: must not be empty"), "{e}");
        let e = one(r#"{"processes": [{"name": "j", "cmdline": " "}]}"#);
        assert!(e.contains("collect.processes[0].cmdline: empty pattern"), "{e}");
        let e = one(r#"{"processes": [{"name": "j", "pidfile": "run/x.pid"}]}"#);
        assert!(
            e.contains("collect.processes[0].pidfile: \"run/x.pid\" is not an absolute path"),
            "{e}"
        );
        let e = one(r#"{"processes": {"name": "j"}}"#);
        assert!(e.contains("collect.processes: expected an array"), "{e}");
    }

    #[test]
    fn the_sysinfo_backend_and_name_filters_are_refused() {
        let e = one(r#"{"backend": "sysinfo", "processes": [{"name": "n", "comm": "nginx"}]}"#);
        assert!(
            e.contains(
                "collect.processes: process checks read /proc/[pid] and need the proc backend"
            ),
            "{e}"
        );
        let e = one(r#"{"exclude": {"name": ["x"]}}"#);
        assert!(
            e.contains("collect.exclude.name: process groups are chosen by collect.processes"),
            "{e}"
        );
    }
}
