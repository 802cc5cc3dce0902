/*
 * hostwatch_plugin.h: the hostwatch notifier plugin ABI, version 1.
 *
 * This header is the single source of truth for the ABI. The host (src/notify/plugin/ffi.rs)
 * and the Rust SDK (plugins/sdk/src/ffi.rs) mirror it field for field; when they disagree,
 * this file is right.
 *
 * A plugin is a shared library that exports one function, HOSTWATCH_PLUGIN_ENTRY
 * (`hostwatch_plugin_v1`): the ABI version is in the symbol's name, and the table it returns
 * carries the version again. A later, incompatible ABI gets a new symbol (`hostwatch_plugin_v2`),
 * so a library built for another version is refused by name before anything is called.
 *
 * Life cycle, per configured channel:
 *   1. the host checks the file (owner, permissions), dlopen()s it (RTLD_NOW | RTLD_LOCAL),
 *      looks up hostwatch_plugin_v1, calls it, and checks table->abi_version;
 *   2. init(config_json, &context, error): once, at start-up, with the channel's "config"
 *      object serialized as JSON;
 *   3. notify(context, event, error): once per delivery attempt (the host retries RETRY);
 *   4. shutdown(context): once, when the host stops or drops the channel; the host then
 *      dlclose()s the library, so shutdown must stop every thread the plugin started.
 *
 * Memory: the host owns every buffer it passes. Strings (config_json, every field of the
 * event) are valid only for the duration of the call: copy what you keep. The error buffer
 * belongs to the host too; the plugin writes at most `cap` bytes into it and sets `len`.
 * The plugin owns its context and frees it in shutdown.
 *
 * Strings are pointer + length, UTF-8, not counted with a terminator. As a courtesy the host
 * puts a NUL byte right after each string it passes (ptr[len] == 0, not counted in len), so
 * C code may use ptr as a C string where it knows there is no embedded NUL (the JSON never
 * has one; a label value may).
 *
 * Threading: the host never makes two calls on one context at the same time: calls on a
 * context come from one thread at a time, in order init, notify..., shutdown. They may come
 * from different threads over the context's life (init on the start-up thread, notify on the
 * channel's delivery thread, shutdown wherever the channel is dropped), so keep state in the
 * context, not in thread-locals. Two channels configured with the same library get two
 * contexts, which may be used concurrently from two threads: global state needs a lock.
 *
 * Blocking: notify may block (it is called on a delivery thread, never on the thread that
 * samples), but the host cannot interrupt it: enforce your own network timeouts.
 *
 * Errors: a non-OK status comes with a message for operators written into the error buffer
 * (hostwatch_error_write below). On OK, a short message written there (e.g. "appended to
 * /var/log/alerts.jsonl") is shown by `hostwatch test-notify` as the receiver's answer.
 *
 * A C plugin must not let a C++ exception or a longjmp cross these functions. A Rust plugin
 * built with plugins/sdk (export_notifier!) catches panics at the boundary and reports them
 * as HOSTWATCH_STATUS_PERMANENT with a "plugin panicked" message.
 */
#ifndef HOSTWATCH_PLUGIN_H
#define HOSTWATCH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes; also in the entry symbol's name. */
#define HOSTWATCH_PLUGIN_ABI_VERSION 1u

/* The entry symbol, as an identifier and as a string (what the host looks up). */
#define HOSTWATCH_PLUGIN_ENTRY hostwatch_plugin_v1
#define HOSTWATCH_PLUGIN_ENTRY_NAME "hostwatch_plugin_v1"

/* Marks the entry symbol exported when a plugin is built with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define HOSTWATCH_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define HOSTWATCH_PLUGIN_EXPORT
#endif

/* The smallest error buffer the host passes (it usually passes more). */
#define HOSTWATCH_ERROR_MIN_CAP 256u

/* What init and notify return. Any other value is treated as PERMANENT. */
typedef int32_t hostwatch_status;
/* Done: delivered (notify) or ready (init). */
#define HOSTWATCH_STATUS_OK ((hostwatch_status)0)
/* Failed for now; the host keeps the event in its outbox and retries with backoff. */
#define HOSTWATCH_STATUS_RETRY ((hostwatch_status)1)
/* Failed for good: retrying the same event cannot help (from init: the channel is refused). */
#define HOSTWATCH_STATUS_PERMANENT ((hostwatch_status)2)

/* A borrowed UTF-8 string: `len` bytes at `ptr` (ptr[len] == 0 as a courtesy). */
typedef struct hostwatch_str {
    const char *ptr;
    size_t len;
} hostwatch_str;

/* A host-owned buffer for a message: write at most `cap` bytes at `buf`, then set `len`. */
typedef struct hostwatch_error {
    char *buf;
    size_t cap;
    size_t len;
} hostwatch_error;

/* One notification. `json` is the whole event (the JSON object documented for the webhook
 * channel and exec hooks: host, rule, series, metric, labels, severity, event, value,
 * value_text, threshold, since, seq, key, episode_key, description, test, and when they
 * apply reason, last_seen, escalated_by ("threshold" | "time": then threshold is the warning
 * threshold that held), episode_duration_s, peak, peak_text); the other fields
 * are copies of the most used members, so a simple plugin needs no JSON parser. */
typedef struct hostwatch_event {
    hostwatch_str json;     /* {"ts":...,"host":"web-01",...} */
    hostwatch_str summary;  /* "CRITICAL firing disk_root on web-01: ... = 96.1% (> 95)" */
    hostwatch_str host;     /* "web-01" */
    hostwatch_str rule;     /* "disk_root" */
    hostwatch_str series;   /* "disk.used_percent{mount=/}" */
    hostwatch_str severity; /* "warning" | "critical" */
    hostwatch_str event;    /* "firing" | "reminder" | "escalated" | "resolved" | "nodata"
                             * (the series stopped reporting; the alert stays open) |
                             * "flapping" | "flap_end" (its state in `json`: "state" "ok"
                             * ends the episode, "firing" goes on) | "report"
                             * (a periodic report: `json` holds it under "report"; `summary`
                             * is one line of it) | "held_back" (a rate limit's summary of
                             * a period) | "group" (several notifications in one call, with
                             * "group": true: `json` holds them under "events"); treat
                             * unknown values like "report": deliver, never refuse */
    hostwatch_str key;      /* stable per notification: de-duplicate retries with it */
} hostwatch_event;

/* The table the entry symbol returns. It must stay valid while the library is loaded
 * (a `static const` in the plugin). Every function pointer must be non-NULL. */
typedef struct hostwatch_plugin {
    /* HOSTWATCH_PLUGIN_ABI_VERSION; checked by the host before anything else. */
    uint32_t abi_version;
    /* The plugin's name for logs and messages ("jsonl"); static storage. */
    hostwatch_str name;
    /* Reads the channel's config (a JSON object, "{}" when absent) and sets *context (which
     * may be left NULL). On failure: return RETRY or PERMANENT with a message; the host then
     * refuses the channel at start-up and does not call shutdown. */
    hostwatch_status (*init)(hostwatch_str config_json, void **context, hostwatch_error *error);
    /* Delivers one event. */
    hostwatch_status (*notify)(void *context, const hostwatch_event *event,
                               hostwatch_error *error);
    /* Frees the context; the library is unloaded right after. */
    void (*shutdown)(void *context);
} hostwatch_plugin;

/* The entry point every plugin exports:
 *
 *     static const hostwatch_plugin table = {HOSTWATCH_PLUGIN_ABI_VERSION, {"name", 4},
 *                                            my_init, my_notify, my_shutdown};
 *     HOSTWATCH_PLUGIN_EXPORT const hostwatch_plugin *HOSTWATCH_PLUGIN_ENTRY(void)
 *     {
 *         return &table;
 *     }
 */
HOSTWATCH_PLUGIN_EXPORT const hostwatch_plugin *hostwatch_plugin_v1(void);

/* Copies `len` bytes of `message` into the host's error buffer, cut to its capacity. */
static inline void hostwatch_error_write(hostwatch_error *error, const char *message, size_t len)
{
    if (error == NULL || error->buf == NULL || message == NULL) {
        return;
    }
    if (len > error->cap) {
        len = error->cap;
    }
    memcpy(error->buf, message, len);
    error->len = len;
}

#ifdef __cplusplus
}
#endif

#endif /* HOSTWATCH_PLUGIN_H */
