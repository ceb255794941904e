/* The API of od.h around the encodings: messages, builder steps, and number text in the
 * "C" locale whatever the process's locale is (strtod and printf read LC_NUMERIC; Python,
 * orjson and upb never do). */
#include <locale.h>
#include <stdio.h>
#include <pthread.h>

#include "od_walk.h"

static locale_t c_locale;
static pthread_once_t locale_once = PTHREAD_ONCE_INIT;

static void make_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static locale_t push_locale(void) {
    pthread_once(&locale_once, make_locale);
    return c_locale ? uselocale(c_locale) : (locale_t)0;
}

static void pop_locale(locale_t old) {
    if (old) uselocale(old);
}

static void clear(od_error *err) {
    err->reason[0] = err->field[0] = err->path[0] = 0;
    err->row = -1;
}

int od_prepare(const od_tables *t, int encoding, const uint8_t *data, size_t len, od_msg **out,
               od_error *err) {
    *out = NULL;
    clear(err);
    od_msg *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err->reason, sizeof err->reason, "out of memory");
        return OD_ERROR;
    }
    m->enc = encoding;
    m->data = data;
    m->len = len;
    locale_t old = push_locale();
    int r = encoding == OD_JSON ? js_prepare(t, data, len, m, err) : pb_prepare(t, data, len, m, err);
    pop_locale(old);
    if (r < 0) {
        od_msg_free(m);
        return r;
    }
    *out = m;
    return r;
}

void od_msg_free(od_msg *m) {
    if (!m) return;
    free(m->jidx.e);
    free(m);
}

int od_builder_step(od_builder *b, od_error *err) {
    clear(err);
    if (!b->msg || b->w.level == 4) return 0;
    b->dec.err = err;
    locale_t old = push_locale();
    int r = b->msg->enc == OD_JSON ? js_step(b) : pb_step(b);
    pop_locale(old);
    if (r < 0) b->w.level = 4; /* (a builder stops at its first error) */
    return r;
}

size_t od_format_double_c(double x, char *buf) {
    locale_t old = push_locale();
    size_t n = od_format_double(x, buf);
    pop_locale(old);
    return n;
}

int od_json_valid_c(const uint8_t *s, size_t n) {
    locale_t old = push_locale();
    int r = od_json_valid(s, n);
    pop_locale(old);
    return r;
}
