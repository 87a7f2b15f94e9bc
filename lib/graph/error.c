/* Thread-local error state: the message of the last failed call and its status kind.
 * TG_ABORT_ON_ERROR=1 turns the first error into an abort that prints the message. */
#include <stdarg.h>
#include <string.h>

#include "lib/graph/error.h"

static _Thread_local char g_msg[1024];
static _Thread_local tg_status g_status;
_Thread_local const char *tg_api_name_;
_Thread_local int tg_api_depth_;

/* Length of a leading "name: " (a lower-case identifier and a colon), or 0. */
static size_t prefix_len(const char *m) {
    size_t i = 0;
    while ((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= '0' && m[i] <= '9') || m[i] == '_') i++;
    return i > 0 && m[i] == ':' && m[i + 1] == ' ' ? i + 2 : 0;
}

/* Puts the public function being called at the head of the message. */
static void name_api(void) {
    const char *api = tg_api_name_;
    if (!api) return;
    size_t n = strlen(api), p = prefix_len(g_msg);
    if (p == n + 2 && strncmp(g_msg, api, n) == 0) return;
    char out[sizeof g_msg];
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof out - 3; i++) out[len++] = api[i];
    out[len++] = ':', out[len++] = ' ';
    for (const char *r = g_msg + p; *r && len < sizeof out - 1; r++) out[len++] = *r;
    out[len] = '\0';
    memcpy(g_msg, out, len + 1);
}

static void abort_if_asked(void) {
    const char *e = getenv("TG_ABORT_ON_ERROR");
    if (e && e[0] == '1') {
        fprintf(stderr, "tapegrad: %s\n", g_msg);
        abort();
    }
}

static void set_message(tg_status kind, const char *fmt, va_list ap) {
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    name_api();
    g_status = kind;
    abort_if_asked();
}

tg_status tg_error(tg_status kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_message(kind, fmt, ap);
    va_end(ap);
    return kind;
}

void *tg_error_null(tg_status kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_message(kind, fmt, ap);
    va_end(ap);
    return NULL;
}

const char *tg_last_error(void) { return g_msg; }
tg_status tg_last_status(void) { return g_status; }

void tg_clear_error(void) {
    g_msg[0] = '\0';
    g_status = TG_OK;
}

const char *tg_status_str(tg_status s) {
    switch (s) {
    case TG_OK: return "ok";
    case TG_ERR_INVALID: return "invalid argument";
    case TG_ERR_SHAPE: return "shape mismatch";
    case TG_ERR_DTYPE: return "dtype mismatch";
    case TG_ERR_DEVICE: return "device error";
    case TG_ERR_NOMEM: return "out of memory";
    case TG_ERR_BACKEND: return "backend failure";
    case TG_ERR_STATE: return "invalid state";
    case TG_ERR_IO: return "I/O error";
    }
    return "unknown status";
}

void tg_error_save(tg_error_saved *out) {
    snprintf(out->msg, sizeof out->msg, "%s", g_msg);
    out->status = g_status;
}

void tg_error_restore(const tg_error_saved *saved) {
    snprintf(g_msg, sizeof g_msg, "%s", saved->msg);
    g_status = saved->status;
}
