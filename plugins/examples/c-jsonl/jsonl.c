/*
 * Example hostwatch notifier plugin in C: appends each alert, as one JSON line, to the file
 * named in the channel's config:
 *
 *     "audit": {"type": "plugin", "path": "/usr/lib/hostwatch/plugins/libhostwatch_jsonl.so",
 *               "config": {"path": "/var/log/hostwatch/alerts.jsonl"}}
 *
 * Copy this file to start your own plugin. Everything it needs is in hostwatch_plugin.h; the
 * small JSON reader below only extracts string members of the config object (use a real JSON
 * library, e.g. jansson or cJSON, if your config grows).
 *
 * Each line is written with a single write() on a descriptor opened with O_APPEND, so lines
 * from several writers do not interleave. A failure to open or write the file (disk full,
 * directory not mounted yet) asks hostwatch to retry; a file that cannot be opened for lack
 * of permission is a permanent failure.
 */
#define _POSIX_C_SOURCE 200809L

#include "hostwatch_plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The context: one per configured channel. */
struct jsonl {
    char *path;
};

/* printf into the host's error buffer. */
static void say(hostwatch_error *error, const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (n < 0) {
        return;
    }
    size_t len = (size_t)n < sizeof message ? (size_t)n : sizeof message - 1;
    hostwatch_error_write(error, message, len);
}

/* ---- a minimal JSON reader: an object whose members are strings ------------------------- */

struct cursor {
    const char *p;
    const char *end;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* Reads a JSON string at the cursor. With `out`, stores a malloc'ed, NUL-terminated, decoded
 * copy (UTF-8). Returns 0, or -1 if malformed. */
static int read_string(struct cursor *c, char **out)
{
    if (c->p >= c->end || *c->p != '"') return -1;
    c->p++;
    /* Decoded text is never longer than the escaped text. */
    char *buf = out ? malloc((size_t)(c->end - c->p) + 1) : NULL;
    size_t n = 0;
    if (out && buf == NULL) return -1;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch < 0x20) goto bad;
        if (ch != '\\') {
            if (buf) buf[n++] = (char)ch;
            continue;
        }
        if (c->p >= c->end) goto bad;
        char e = *c->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != 0 && simple != NULL) {
            if (buf) buf[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        if (e != 'u' || c->end - c->p < 4) goto bad;
        unsigned cp;
        if (hex4(c->p, &cp) < 0) goto bad;
        c->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
            unsigned lo;
            if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' || hex4(c->p + 2, &lo) < 0
                || lo < 0xDC00 || lo > 0xDFFF) goto bad;
            c->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            goto bad;
        }
        if (cp == 0) goto bad; /* no NUL inside C strings */
        if (!buf) continue;
        if (cp < 0x80) {
            buf[n++] = (char)cp;
        } else if (cp < 0x800) {
            buf[n++] = (char)(0xC0 | (cp >> 6));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[n++] = (char)(0xE0 | (cp >> 12));
            buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            buf[n++] = (char)(0xF0 | (cp >> 18));
            buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    if (c->p >= c->end) goto bad;
    c->p++; /* the closing quote */
    if (buf) {
        buf[n] = '\0';
        *out = buf;
    }
    return 0;
bad:
    free(buf);
    return -1;
}

/* ---- the plugin --------------------------------------------------------------------------- */

/* Opens the file for appending, creating it (mode 0640). */
static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* A failure worth retrying, or not. */
static hostwatch_status classify(int err)
{
    switch (err) {
    case EACCES:
    case EPERM:
    case EISDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case EROFS:
        return HOSTWATCH_STATUS_PERMANENT;
    default:
        return HOSTWATCH_STATUS_RETRY;
    }
}

static hostwatch_status jsonl_init(hostwatch_str config, void **context, hostwatch_error *error)
{
    struct cursor c = {config.ptr, config.ptr + config.len};
    char *path = NULL;
    skip_ws(&c);
    if (c.p >= c.end || *c.p++ != '{') {
        say(error, "config must be a JSON object like {\"path\": \"/var/log/alerts.jsonl\"}");
        return HOSTWATCH_STATUS_PERMANENT;
    }
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            char *key = NULL;
            skip_ws(&c);
            if (read_string(&c, &key) < 0) goto malformed;
            skip_ws(&c);
            if (c.p >= c.end || *c.p++ != ':') {
                free(key);
                goto malformed;
            }
            skip_ws(&c);
            if (strcmp(key, "path") == 0) {
                free(path);
                path = NULL;
                if (read_string(&c, &path) < 0) {
                    say(error, "config: \"path\" must be a string");
                    free(key);
                    free(path);
                    return HOSTWATCH_STATUS_PERMANENT;
                }
            } else {
                say(error, "config: unknown key \"%s\" (expected \"path\")", key);
                free(key);
                free(path);
                return HOSTWATCH_STATUS_PERMANENT;
            }
            free(key);
            skip_ws(&c);
            if (c.p >= c.end) goto malformed;
            char next = *c.p++;
            if (next == '}') break;
            if (next != ',') goto malformed;
        }
    }
    if (path == NULL || path[0] == '\0') {
        say(error, "config: \"path\" (the file to append JSON lines to) is required");
        free(path);
        return HOSTWATCH_STATUS_PERMANENT;
    }
    /* Fail at start-up, not at the first alert, if the file cannot be opened. */
    int fd = open_log(path);
    if (fd < 0) {
        int err = errno;
        say(error, "cannot open %s: %s", path, strerror(err));
        free(path);
        return classify(err);
    }
    close(fd);
    struct jsonl *self = malloc(sizeof *self);
    if (self == NULL) {
        say(error, "out of memory");
        free(path);
        return HOSTWATCH_STATUS_RETRY;
    }
    self->path = path;
    *context = self;
    return HOSTWATCH_STATUS_OK;
malformed:
    say(error, "config is not a valid JSON object");
    free(path);
    return HOSTWATCH_STATUS_PERMANENT;
}

static hostwatch_status jsonl_notify(void *context, const hostwatch_event *event,
                                     hostwatch_error *error)
{
    struct jsonl *self = context;
    size_t len = event->json.len + 1;
    char *line = malloc(len);
    if (line == NULL) {
        say(error, "out of memory");
        return HOSTWATCH_STATUS_RETRY;
    }
    memcpy(line, event->json.ptr, event->json.len);
    line[len - 1] = '\n';
    int fd = open_log(self->path);
    if (fd < 0) {
        int err = errno;
        free(line);
        say(error, "cannot open %s: %s", self->path, strerror(err));
        return classify(err);
    }
    ssize_t n;
    do {
        n = write(fd, line, len);
    } while (n < 0 && errno == EINTR);
    int err = errno;
    free(line);
    if (close(fd) < 0 && n >= 0) {
        n = -1;
        err = errno;
    }
    if (n < 0) {
        say(error, "cannot write to %s: %s", self->path, strerror(err));
        return HOSTWATCH_STATUS_RETRY;
    }
    if ((size_t)n != len) {
        say(error, "short write to %s (%zd of %zu bytes)", self->path, n, len);
        return HOSTWATCH_STATUS_RETRY;
    }
    say(error, "appended %zu bytes to %s", len, self->path);
    return HOSTWATCH_STATUS_OK;
}

static void jsonl_shutdown(void *context)
{
    struct jsonl *self = context;
    if (self != NULL) {
        free(self->path);
        free(self);
    }
}

static const hostwatch_plugin table = {
    .abi_version = HOSTWATCH_PLUGIN_ABI_VERSION,
    .name = {"jsonl", 5},
    .init = jsonl_init,
    .notify = jsonl_notify,
    .shutdown = jsonl_shutdown,
};

HOSTWATCH_PLUGIN_EXPORT const hostwatch_plugin *HOSTWATCH_PLUGIN_ENTRY(void)
{
    return &table;
}
