//! The plugin channel (`type: "plugin"`): a shared library behind the versioned C ABI of
//! `plugins/include/hostwatch_plugin.h`, loaded once at start-up.
//!
//! Loading refuses, each with a message naming the file: a file or directory others could
//! change ([`trust`]), a library without the `hostwatch_plugin_v1` entry symbol, a table of
//! another ABI version or with a NULL function, and a failed `init`. Afterwards the channel is
//! a [`Sender`] like any other: the delivery worker calls `notify` from one thread at a time
//! and maps its status onto [`SendError`]; `render` (for `--dry-run`) shows the event JSON the
//! plugin would receive without calling it. `shutdown` runs when the sender is dropped.
//!
//! Not for static builds: `dlopen` from a static glibc binary crashes, so the module exists
//! only with the `plugins` cargo feature, which the static build leaves out.

pub mod ffi;
pub mod trust;

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::PluginConfig;
use crate::event::AlertEvent;
use ffi::{EntryFn, ErrorBuf, HwEvent, InitFn, NotifyFn, OwnedStr, ShutdownFn};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use std::ffi::c_void;
use std::path::{Path, PathBuf};

/// A loaded plugin and its context.
pub struct PluginSender {
    /// The plugin's own name (from its table).
    plugin: String,
    notify: NotifyFn,
    shutdown: ShutdownFn,
    context: Context,
    /// Keeps the code behind the function pointers mapped; dropped (dlclose) after
    /// [`Drop::drop`] has called `shutdown`.
    _library: Library,
}

/// The plugin's opaque context pointer.
struct Context(*mut c_void);

// SAFETY: the ABI's threading contract (hostwatch_plugin.h, "Threading") lets a context be
// used from any thread as long as calls on it never overlap. The context is only reached
// through `PluginSender`, which is not `Sync` (this type is not) and calls into the plugin only
// from `&mut self` methods and `Drop`, so calls on one context are serialized.
unsafe impl Send for Context {}

impl PluginSender {
    /// Checks and loads the library, verifies its entry symbol and ABI version, and calls
    /// `init` with the channel's `config` as JSON.
    pub fn new(name: &str, config: &PluginConfig) -> Result<PluginSender, String> {
        let fail =
            |what: String| format!("channel {name}: plugin {}: {what}", config.path.display());
        let Loaded { library, path, plugin, init, notify, shutdown } =
            load(&config.path).map_err(|e| fail(e.cause))?;
        let config_json = OwnedStr::new(&config.config.to_string());
        let mut error = ErrorBuf::new();
        let mut context: *mut c_void = std::ptr::null_mut();
        // SAFETY: `init` comes from a checked v1 table; every pointer passed is valid for the
        // call (the config string and error buffer are owned here and outlive it).
        let status = unsafe { init(config_json.as_hw(), &mut context, error.as_mut_ptr()) };
        if status != ffi::STATUS_OK {
            let kind = if status == ffi::STATUS_RETRY { " (temporary)" } else { "" };
            return Err(format!(
                "channel {name}: plugin {plugin} ({}): init failed{kind}: {}",
                path.display(),
                or_no_message(error.message())
            ));
        }
        log::info!("channel {name}: loaded plugin {plugin} from {}", path.display());
        Ok(PluginSender { plugin, notify, shutdown, context: Context(context), _library: library })
    }
}

/// Why a plugin library can never be used, before `init` is called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadError {
    /// What made it fail, naming the file where it matters (`missing symbol
    /// hostwatch_plugin_v1: ...`, `plugin ABI version mismatch: ...`).
    pub(crate) cause: String,
}

impl LoadError {
    fn new(cause: impl Into<String>) -> LoadError {
        LoadError { cause: cause.into() }
    }
}

/// A library that passed every check but `init`.
struct Loaded {
    library: Library,
    path: PathBuf,
    plugin: String,
    init: InitFn,
    notify: NotifyFn,
    shutdown: ShutdownFn,
}

/// Checks trust, loads the library, calls the entry symbol for its table and checks the ABI
/// version and the functions, without calling any of them.
fn load(configured: &Path) -> Result<Loaded, LoadError> {
    if std::fs::symlink_metadata(configured)
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(LoadError::new("no such file"));
    }
    let path = trust::check(configured).map_err(LoadError::new)?;
    // SAFETY: loading runs the library's initialisers, i.e. its code. That is the trust
    // decision the operator made by configuring it; `trust::check` made sure the file is
    // the one they installed (owned by root or us, not writable by anyone else).
    let library = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| LoadError::new(format!("cannot load the library: {e}")))?;
    // SAFETY: the entry symbol's type is fixed by the ABI header; a library exporting the
    // name with another type is not a hostwatch plugin, which the ABI cannot detect.
    let entry = match unsafe { library.get::<EntryFn>(ffi::ENTRY_SYMBOL) } {
        Ok(symbol) => *symbol,
        Err(_) => return Err(LoadError::new(missing_entry(&library))),
    };
    // SAFETY: calling the entry function the ABI defines; it takes nothing and returns a
    // pointer to a static table.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(LoadError::new("hostwatch_plugin_v1() returned NULL instead of its table"));
    }
    // SAFETY: `table` is non-NULL and, per the ABI, points to a table valid while the
    // library is loaded; every version starts with the `uint32_t abi_version`, which is
    // read before anything else.
    let abi = unsafe { (*table).abi_version };
    if abi != ffi::ABI_VERSION {
        return Err(LoadError::new(format!(
            "plugin ABI version mismatch: the library's table says version {abi}, this \
             hostwatch speaks version {} (rebuild the plugin against this hostwatch's \
             plugins/include/hostwatch_plugin.h)",
            ffi::ABI_VERSION
        )));
    }
    // SAFETY: a version-1 table has the version-1 layout of `ffi::PluginTable`.
    let table = unsafe { &*table };
    // SAFETY: the ABI promises `name` points to `len` bytes of static storage.
    let plugin = unsafe { ffi::read_str(table.name) };
    let (Some(init), Some(notify), Some(shutdown)) = (table.init, table.notify, table.shutdown)
    else {
        return Err(LoadError::new(format!("the table of plugin {plugin} has a NULL function")));
    };
    Ok(Loaded { library, path, plugin, init, notify, shutdown })
}

/// The start-up check of a plugin file: everything [`PluginSender::new`] checks before it
/// calls `init` (trust, loading, the entry symbol, the ABI version, the table's functions).
/// The library is unloaded again; `init` is never called, so nothing that may heal by itself
/// (a plugin asking to retry its `init`) is judged here. Returns the plugin's name.
pub(crate) fn probe(path: &Path) -> Result<String, LoadError> {
    load(path).map(|loaded| loaded.plugin)
}

/// The explanation for a library without `hostwatch_plugin_v1`: an entry of another version,
/// or not a hostwatch plugin at all.
fn missing_entry(library: &Library) -> String {
    let other = (0..=9).filter(|&v| v != ffi::ABI_VERSION).find(|v| {
        let name = format!("hostwatch_plugin_v{v}\0");
        // SAFETY: only the symbol's presence is checked; the pointer is never used.
        unsafe { library.get::<*const c_void>(name.as_bytes()) }.is_ok()
    });
    match other {
        Some(v) => format!(
            "missing symbol hostwatch_plugin_v1: the library exports hostwatch_plugin_v{v}, so \
             it was built for plugin ABI version {v}; this hostwatch speaks version {}",
            ffi::ABI_VERSION
        ),
        None => "missing symbol hostwatch_plugin_v1: not a hostwatch notifier plugin (see \
                 plugins/include/hostwatch_plugin.h)"
            .to_string(),
    }
}

fn or_no_message(message: String) -> String {
    if message.is_empty() { "(the plugin gave no message)".to_string() } else { message }
}

/// The event exactly as the plugin receives it in `hostwatch_event.json`.
fn event_json(event: &AlertEvent) -> String {
    serde_json::to_string(event).unwrap_or_else(|_| "{}".to_string())
}

impl Sender for PluginSender {
    fn render(&self, event: &AlertEvent) -> Rendered {
        Rendered { content_type: "application/json".to_string(), body: event_json(event) }
    }

    fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError> {
        self.call([
            event_json(event),
            event.summary(),
            event.host.clone(),
            event.rule.clone(),
            event.series.clone(),
            event.severity.as_str().to_string(),
            event.event.as_str().to_string(),
            event.key.clone(),
        ])
    }

    fn group_capacity(&self) -> usize {
        GROUP_CAPACITY
    }

    /// A grouped call (`"group": true`): `json` is the group object (`"events"` holds each
    /// notification), `event` is `group`, `key` the group's key, `summary` its headline,
    /// `severity` the worst not resolved; `rule` and `series` are empty.
    fn send_group(&mut self, events: &[AlertEvent]) -> Result<Receipt, SendError> {
        let group = crate::notify::group::group_json(events);
        let text = |key: &str| group[key].as_str().unwrap_or("").to_string();
        let severity = crate::notify::group::worst_open(events)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        self.call([
            group.to_string(),
            text("summary"),
            text("host"),
            String::new(),
            String::new(),
            severity,
            "group".to_string(),
            text("key"),
        ])
    }

    fn render_group(&self, events: &[AlertEvent]) -> Rendered {
        Rendered {
            content_type: "application/json".to_string(),
            body: crate::notify::group::group_json(events).to_string(),
        }
    }
}

/// Notifications in one grouped call (`"group": true`).
const GROUP_CAPACITY: usize = 100;

impl PluginSender {
    /// Calls the plugin's `notify` with these fields (json, summary, host, rule, series,
    /// severity, event, key).
    fn call(&mut self, fields: [String; 8]) -> Result<Receipt, SendError> {
        let fields = fields.map(|s| OwnedStr::new(&s));
        let [json, summary, host, rule, series, severity, kind, key] =
            fields.each_ref().map(|s| s.as_hw());
        let hw = HwEvent { json, summary, host, rule, series, severity, event: kind, key };
        let mut error = ErrorBuf::new();
        // SAFETY: `notify` comes from the checked v1 table of the library this sender keeps
        // loaded; the context is the one `init` returned and is not shut down; `hw`, the
        // strings it points into and the error buffer are owned here and outlive the call;
        // `&mut self` ensures no other call on this context runs meanwhile.
        let status = unsafe { (self.notify)(self.context.0, &hw, error.as_mut_ptr()) };
        let message = error.message();
        let plugin = &self.plugin;
        match status {
            ffi::STATUS_OK if message.is_empty() => {
                Ok(Receipt { answer: format!("plugin {plugin}: delivered") })
            }
            ffi::STATUS_OK => Ok(Receipt { answer: format!("plugin {plugin}: {message}") }),
            ffi::STATUS_RETRY => Err(SendError::transient(format!(
                "plugin {plugin} asks to retry later: {}",
                or_no_message(message)
            ))),
            ffi::STATUS_PERMANENT => Err(SendError::permanent(format!(
                "plugin {plugin} failed: {}",
                or_no_message(message)
            ))),
            other => Err(SendError::permanent(format!(
                "plugin {plugin} returned the unknown status {other}: {}",
                or_no_message(message)
            ))),
        }
    }
}

impl Drop for PluginSender {
    fn drop(&mut self) {
        // SAFETY: `shutdown` comes from the checked v1 table; the context came from `init` and
        // is shut down exactly once, here, before the library is unloaded (the `_library` field
        // is dropped after this).
        unsafe { (self.shutdown)(self.context.0) };
    }
}
