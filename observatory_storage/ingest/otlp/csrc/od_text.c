/* Text: growable buffers, UTF-8, JSON output exactly as orjson writes it (string
 * escapes, the shortest round-trip text of a double), base64, hex, and the JSON
 * validator that accepts exactly what orjson.loads accepts (and indexes containers for
 * the walker, od_json.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "od_int.h"
#include "od_json.h"

/* --- buffers ------------------------------------------------------------------- */

int odb_grow(odb *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > OD_MAX_BUFFER || b->n > OD_MAX_BUFFER - extra) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->n + extra, cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > OD_MAX_BUFFER / 2 ? OD_MAX_BUFFER : cap * 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void odb_free(odb *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->failed = 0;
}

void odb_printf(odb *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    odb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* --- UTF-8 (strict, as Python's decoder, upb and orjson: no surrogates, no overlong
 * forms, nothing above U+10FFFF) ------------------------------------------------ */

/* length of the valid sequence at s (n bytes available), 0 if invalid */
static size_t utf8_seq(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;
        if (c == 0xED && s[1] > 0x9F) return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;
        if (c == 0xF4 && s[1] > 0x8F) return 0;
        return 4;
    }
    return 0;
}

int od_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* --- JSON output as orjson writes it ---------------------------------------------- */

static const char HEXD[] = "0123456789abcdef";

static void put_code_point(odb *w, uint32_t cp) {
    uint8_t t[4];
    if (cp < 0x80) {
        t[0] = (uint8_t)cp;
        odb_put(w, t, 1);
    } else if (cp < 0x800) {
        t[0] = (uint8_t)(0xC0 | (cp >> 6));
        t[1] = (uint8_t)(0x80 | (cp & 0x3F));
        odb_put(w, t, 2);
    } else if (cp < 0x10000) {
        t[0] = (uint8_t)(0xE0 | (cp >> 12));
        t[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (uint8_t)(0x80 | (cp & 0x3F));
        odb_put(w, t, 3);
    } else {
        t[0] = (uint8_t)(0xF0 | (cp >> 18));
        t[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        t[3] = (uint8_t)(0x80 | (cp & 0x3F));
        odb_put(w, t, 4);
    }
}

/* a byte that orjson escapes: '"', '\\' and control characters below 0x20 */
static inline int needs_escape(uint8_t c) { return c < 0x20 || c == '"' || c == '\\'; }

static void put_escape(odb *w, uint8_t c) {
    char t[6];
    switch (c) {
    case '"': odb_put(w, "\\\"", 2); return;
    case '\\': odb_put(w, "\\\\", 2); return;
    case '\b': odb_put(w, "\\b", 2); return;
    case '\f': odb_put(w, "\\f", 2); return;
    case '\n': odb_put(w, "\\n", 2); return;
    case '\r': odb_put(w, "\\r", 2); return;
    case '\t': odb_put(w, "\\t", 2); return;
    default:
        t[0] = '\\', t[1] = 'u', t[2] = '0', t[3] = '0', t[4] = HEXD[c >> 4], t[5] = HEXD[c & 15];
        odb_put(w, t, 6);
    }
}

/* a byte below 0x20, '"' or '\\' among 8 (SWAR; may flag more bytes once one is real) */
static inline int word_needs_escape(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high ? 1 : 0;
}

static void put_escaped_raw(odb *w, const uint8_t *s, size_t n) {
    size_t start = 0, i = 0;
    while (i + 8 <= n) { /* the usual text needs no escape: copy it in one go */
        uint64_t x;
        memcpy(&x, s + i, 8);
        if (word_needs_escape(x)) break;
        i += 8;
    }
    for (; i < n; i++) {
        if (needs_escape(s[i])) {
            odb_put(w, s + start, i - start);
            put_escape(w, s[i]);
            start = i + 1;
        }
    }
    odb_put(w, s + start, n - start);
}

void jw_raw_string(odb *w, const uint8_t *s, size_t n) {
    odb_putc(w, '"');
    put_escaped_raw(w, s, n);
    odb_putc(w, '"');
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static uint32_t hex4(const uint8_t *s) {
    return (uint32_t)(hexval(s[0]) << 12 | hexval(s[1]) << 8 | hexval(s[2]) << 4 | hexval(s[3]));
}

/* one escape of validated JSON string content at s[i] == '\\': code point and length */
static uint32_t read_escape(const uint8_t *s, size_t n, size_t i, size_t *len) {
    if (i + 1 >= n) {
        *len = 1;
        return 0xFFFD;
    }
    switch (s[i + 1]) {
    case 'b': *len = 2; return '\b';
    case 'f': *len = 2; return '\f';
    case 'n': *len = 2; return '\n';
    case 'r': *len = 2; return '\r';
    case 't': *len = 2; return '\t';
    case 'u':
        if (i + 6 <= n) {
            uint32_t cp = hex4(s + i + 2);
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 12 <= n && s[i + 6] == '\\' && s[i + 7] == 'u') {
                uint32_t lo = hex4(s + i + 8);
                *len = 12;
                return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            *len = 6;
            return cp;
        }
        *len = n - i;
        return 0xFFFD;
    default: *len = 2; return s[i + 1]; /* " \ / */
    }
}

void od_unescape(odb *w, const uint8_t *s, size_t n) {
    size_t start = 0, i = 0;
    while (i < n) {
        if (s[i] != '\\') {
            i++;
            continue;
        }
        odb_put(w, s + start, i - start);
        size_t len;
        put_code_point(w, read_escape(s, n, i, &len));
        i += len;
        start = i;
    }
    odb_put(w, s + start, n - start);
}

void jw_string(odb *w, od_str s) {
    odb_putc(w, '"');
    jw_string_body(w, s);
    odb_putc(w, '"');
}

void jw_string_body(odb *w, od_str s) {
    if (!s.esc) {
        put_escaped_raw(w, s.p, s.n);
        return;
    }
    size_t start = 0, i = 0;
    while (i < s.n) {
        if (s.p[i] != '\\') {
            i++;
            continue;
        }
        odb_put(w, s.p + start, i - start);
        size_t len;
        uint32_t cp = read_escape(s.p, s.n, i, &len);
        if (cp < 0x80 && needs_escape((uint8_t)cp))
            put_escape(w, (uint8_t)cp);
        else
            put_code_point(w, cp);
        i += len;
        start = i;
    }
    odb_put(w, s.p + start, s.n - start);
}

od_str od_str_plain(od_str s, od_arena *a) {
    if (!s.esc) return s;
    od_str out = {(const uint8_t *)"", 0, 0};
    uint8_t *p = arena_alloc(a, s.n); /* decoded text is never longer */
    if (!p) return out;
    odb w = {p, 0, s.n, 0};
    od_unescape(&w, s.p, s.n);
    out.p = p;
    out.n = w.failed ? 0 : w.n;
    return out;
}

void *arena_alloc(od_arena *a, size_t n) {
    if (a->failed) return NULL;
    n = (n + 7) & ~(size_t)7;
    od_ablk *b = a->head;
    if (!b || b->cap - b->n < n) {
        size_t cap = n > 65536 ? n : 65536;
        od_ablk *nb = malloc(sizeof *nb + cap);
        if (!nb) {
            a->failed = 1;
            return NULL;
        }
        nb->next = b;
        nb->n = 0;
        nb->cap = cap;
        a->head = b = nb;
    }
    void *p = b->data + b->n;
    b->n += n;
    return p;
}

void arena_reset(od_arena *a) {
    od_ablk *b = a->head;
    if (!b) return;
    /* keep the oldest block (the usual one), free the others */
    while (b->next) {
        od_ablk *next = b->next;
        free(b);
        b = next;
    }
    b->n = 0;
    a->head = b;
    a->failed = 0;
}

void arena_free(od_arena *a) {
    od_ablk *b = a->head;
    while (b) {
        od_ablk *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->failed = 0;
}

int od_str_eq(od_str a, const char *lit, size_t litn) {
    if (!a.esc) return a.n == litn && memcmp(a.p, lit, litn) == 0;
    /* decode on the fly: an escaped string is never longer once decoded */
    size_t i = 0, j = 0;
    while (i < a.n) {
        if (a.p[i] != '\\') {
            if (j >= litn || (uint8_t)lit[j] != a.p[i]) return 0;
            i++, j++;
            continue;
        }
        size_t len;
        uint32_t cp = read_escape(a.p, a.n, i, &len);
        uint8_t t[4];
        odb tmp = {t, 0, 4, 0};
        put_code_point(&tmp, cp);
        if (j + tmp.n > litn || memcmp(lit + j, t, tmp.n) != 0) return 0;
        j += tmp.n;
        i += len;
    }
    return j == litn;
}

void jw_uint(odb *w, uint64_t v) {
    char t[24];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    odb_put(w, t + i, sizeof t - i);
}

void jw_int(odb *w, int64_t v) {
    if (v < 0) {
        odb_putc(w, '-');
        jw_uint(w, (uint64_t)0 - (uint64_t)v);
    } else {
        jw_uint(w, (uint64_t)v);
    }
}

/* The shortest decimal digits that read back as x (what Python's repr, ryu and orjson
 * print), then orjson's layout: positional for 1e-5 <= |x| < 1e16 ("0.00001", "100.0",
 * "1234567890123456.8"), else scientific ("1e-6", "1e+16", "1.2345678901234568e+20").
 *
 * Digits: the 15-digit correctly rounded text reads back iff the shortest form has at
 * most 15 digits (a double's ulp/2 is below half a unit of the 15th digit), and then it
 * is that form padded with zeros; else the 16-digit one, or its neighbour on the other
 * side of x (where the rounding interval is wider, below a power of two); else 17. */
static int shortest_digits(double x, char *digits, int *exp10) {
    char t[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*e", prec - 1, x);
        if (strtod(t, NULL) == x || prec == 17) goto found;
        if (prec == 16) {
            /* the neighbour of the correctly rounded 16 digits on the other side of x */
            char alt[40];
            char *e = strchr(t, 'e');
            if (!e) continue;
            char m[20];
            int mi = 0;
            for (char *q = t; q < e && mi < 18; q++)
                if (*q >= '0' && *q <= '9') m[mi++] = *q;
            m[mi] = 0;
            double back = strtod(t, NULL);
            int up = back < x; /* the rounded digits lie below x: try one unit above */
            int k = mi - 1;
            if (up) {
                while (k >= 0 && m[k] == '9') m[k--] = '0';
                if (k < 0) continue; /* 9.99..9 -> 10.0: not a 16-digit neighbour */
                m[k]++;
            } else {
                while (k >= 0 && m[k] == '0') m[k--] = '9';
                if (k < 0 || (k == 0 && m[0] == '1')) continue; /* would lose a digit */
                m[k]--;
            }
            snprintf(alt, sizeof alt, "%c.%se%s", m[0], m + 1, e + 1);
            if (strtod(alt, NULL) == x) {
                memcpy(t, alt, strlen(alt) + 1);
                goto found;
            }
        }
    }
found:;
    /* t: [-]d.ddde[+-]XX */
    const char *q = t;
    if (*q == '-') q++;
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    *exp10 = (*q == 'e') ? atoi(q + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    return nd;
}

size_t od_format_double(double x, char *buf) {
    if (!isfinite(x)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    size_t n = 0;
    if (signbit(x)) buf[n++] = '-';
    if (x == 0) {
        memcpy(buf + n, "0.0", 4);
        return n + 3;
    }
    char d[24];
    int e;
    int nd = shortest_digits(fabs(x), d, &e);
    if (e >= -5 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++) buf[n++] = i < nd ? d[i] : '0';
            buf[n++] = '.';
            if (nd > e + 1)
                for (int i = e + 1; i < nd; i++) buf[n++] = d[i];
            else
                buf[n++] = '0';
        } else {
            buf[n++] = '0';
            buf[n++] = '.';
            for (int i = 0; i < -e - 1; i++) buf[n++] = '0';
            for (int i = 0; i < nd; i++) buf[n++] = d[i];
        }
    } else {
        buf[n++] = d[0];
        if (nd > 1) {
            buf[n++] = '.';
            for (int i = 1; i < nd; i++) buf[n++] = d[i];
        }
        n += (size_t)snprintf(buf + n, 8, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    buf[n] = 0;
    return n;
}

void jw_double(odb *w, double x) {
    char t[40];
    size_t n = od_format_double(x, t);
    odb_put(w, t, n);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void od_base64(odb *w, const uint8_t *s, size_t n) {
    size_t i = 0;
    char t[4];
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        t[0] = B64[v >> 18], t[1] = B64[(v >> 12) & 63], t[2] = B64[(v >> 6) & 63], t[3] = B64[v & 63];
        odb_put(w, t, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        t[0] = B64[v >> 18], t[1] = B64[(v >> 12) & 63], t[2] = '=', t[3] = '=';
        odb_put(w, t, 4);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        t[0] = B64[v >> 18], t[1] = B64[(v >> 12) & 63], t[2] = B64[(v >> 6) & 63], t[3] = '=';
        odb_put(w, t, 4);
    }
}

void jw_base64_string(odb *w, const uint8_t *s, size_t n) {
    odb_putc(w, '"');
    od_base64(w, s, n);
    odb_putc(w, '"');
}

void od_hex(odb *w, const uint8_t *s, size_t n) {
    if (n > OD_MAX_BUFFER / 2 || (w->cap - w->n < 2 * n && odb_grow(w, 2 * n))) return;
    uint8_t *o = w->p + w->n;
    for (size_t i = 0; i < n; i++) {
        o[2 * i] = (uint8_t)HEXD[s[i] >> 4];
        o[2 * i + 1] = (uint8_t)HEXD[s[i] & 15];
    }
    w->n += 2 * n;
}

void od_repr(odb *w, od_str s) {
    od_arena tmp = {0};
    od_str p = od_str_plain(s, &tmp);
    size_t shown = p.n > 200 ? 200 : p.n;
    int dq = memchr(p.p, '\'', shown) && !memchr(p.p, '"', shown);
    char q = dq ? '"' : '\'';
    odb_putc(w, q);
    for (size_t i = 0; i < shown; i++) {
        uint8_t c = p.p[i];
        if (c == (uint8_t)q || c == '\\') {
            odb_putc(w, '\\');
            odb_putc(w, (char)c);
        } else if (c == '\n') {
            odb_put(w, "\\n", 2);
        } else if (c == '\r') {
            odb_put(w, "\\r", 2);
        } else if (c == '\t') {
            odb_put(w, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            odb_printf(w, "\\x%02x", c);
        } else {
            odb_putc(w, (char)c);
        }
    }
    if (shown < p.n) odb_puts(w, "...");
    odb_putc(w, q);
    arena_free(&tmp);
}

uint64_t od_hash(const uint8_t *s, size_t n) {
    /* 8 bytes at a time (attribute names are ~20-40 bytes) */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n) memcpy(&w, s, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

/* --- the JSON validator: what orjson.loads accepts -------------------------------- */

static void jerr(char *err, size_t errlen, const uint8_t *s, size_t at, const char *what) {
    if (!err || !errlen) return;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (s[i] == '\n')
            line++, col = 1;
        else
            col++;
    }
    snprintf(err, errlen, "%s: line %zu column %zu (char %zu)", what, line, col, at);
}


/* a string starting after the opening quote at s[i]; returns the index after the closing
 * quote, or 0 with err set */
/* The bytes of 8 that are '"', '\\', control characters or non-ASCII: the lowest flagged
 * one is exact (a borrow only ever flags bytes above a real one). */
static inline uint64_t word_special(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high;
}

static size_t scan_string(const uint8_t *s, size_t n, size_t i, char *err, size_t errlen) {
    while (i < n) {
        while (i + 8 <= n) { /* plain ASCII 8 bytes at a time, up to the first special byte */
            uint64_t w;
            memcpy(&w, s + i, 8);
            uint64_t m = word_special(w);
            if (m) {
                i += (size_t)(__builtin_ctzll(m) >> 3);
                break;
            }
            i += 8;
        }
        if (i >= n) break;
        uint8_t c = s[i];
        if (c == '"') return i + 1;
        if (c == '\\') {
            if (i + 1 >= n) break;
            uint8_t e = s[i + 1];
            if (e == 'u') {
                if (i + 6 > n || hexval(s[i + 2]) < 0 || hexval(s[i + 3]) < 0 || hexval(s[i + 4]) < 0 ||
                    hexval(s[i + 5]) < 0) {
                    jerr(err, errlen, s, i, "invalid escaped sequence in string");
                    return 0;
                }
                uint32_t cp = hex4(s + i + 2);
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    jerr(err, errlen, s, i, "invalid high surrogate in string");
                    return 0;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u') {
                        jerr(err, errlen, s, i, "no low surrogate in string");
                        return 0;
                    }
                    for (int k = 8; k < 12; k++)
                        if (hexval(s[i + k]) < 0) {
                            jerr(err, errlen, s, i, "invalid escaped sequence in string");
                            return 0;
                        }
                    uint32_t lo = hex4(s + i + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        jerr(err, errlen, s, i, "invalid low surrogate in string");
                        return 0;
                    }
                    i += 12;
                } else {
                    i += 6;
                }
                continue;
            }
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
                e == 't') {
                i += 2;
                continue;
            }
            jerr(err, errlen, s, i, "invalid escaped sequence in string");
            return 0;
        }
        if (c < 0x20) {
            jerr(err, errlen, s, i, "unexpected control character in string");
            return 0;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (!k) {
                jerr(err, errlen, s, i, "str is not valid UTF-8: surrogates not allowed");
                return 0;
            }
            i += k;
            continue;
        }
        i++;
    }
    jerr(err, errlen, s, n, "unexpected end of data");
    return 0;
}

/* a number at s[i]; returns the index after it, or 0 with err set */
static size_t scan_number(const uint8_t *s, size_t n, size_t i, char *err, size_t errlen) {
    size_t start = i;
    int isfloat = 0;
    if (s[i] == '-') i++;
    if (i >= n) {
        jerr(err, errlen, s, i, "unexpected end of data");
        return 0;
    }
    if (s[i] == '0') {
        i++;
        if (i < n && s[i] >= '0' && s[i] <= '9') {
            jerr(err, errlen, s, start, "number with leading zero is not allowed");
            return 0;
        }
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    } else {
        jerr(err, errlen, s, start, "no digit after sign");
        return 0;
    }
    if (i < n && s[i] == '.') {
        isfloat = 1;
        i++;
        if (i >= n) {
            jerr(err, errlen, s, i, "unexpected end of data");
            return 0;
        }
        if (!(s[i] >= '0' && s[i] <= '9')) {
            jerr(err, errlen, s, i, "no digit after decimal point");
            return 0;
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        isfloat = 1;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n) {
            jerr(err, errlen, s, i, "unexpected end of data");
            return 0;
        }
        if (!(s[i] >= '0' && s[i] <= '9')) {
            jerr(err, errlen, s, i, "no digit after exponent sign");
            return 0;
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    size_t len = i - start;
    if (isfloat || len > 19) {
        /* a float for orjson (an integer beyond 64 bits too): refused if infinite; only a
         * long mantissa or a big exponent can overflow (then strtod says) */
        int big = len > 300;
        for (size_t k = start; k < i && !big; k++)
            if ((s[k] == 'e' || s[k] == 'E') && i - k > 3) big = 1; /* (an exponent >= 100) */
        int64_t iv;
        uint64_t uv;
        double d = 0;
        int kind = big ? od_json_number(s + start, len, &iv, &uv, &d) : JN_INT;
        if (kind == JN_FLOAT && isinf(d)) {
            jerr(err, errlen, s, start, "number is infinity when parsed as double");
            return 0;
        }
    }
    return i;
}

static const uint8_t WS[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

static inline size_t skip_ws(const uint8_t *s, size_t n, size_t i) {
    while (i < n && WS[s[i]]) i++;
    return i;
}

int od_json_validate(const uint8_t *s, size_t n, void *index_out, char *err, size_t errlen) {
    od_jindex *idx = index_out;
    /* the open containers: kind ('{' or '[') and index entry (UINT32_MAX: none) */
    uint8_t kind[OD_JSON_MAX_DEPTH + 1];
    uint32_t entry[OD_JSON_MAX_DEPTH + 1];
    int depth = 0;
    size_t i = 0;
    uint8_t c;
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        jerr(err, errlen, s, 0, "UTF-8 byte order mark (BOM) is not supported");
        return -1;
    }
    if (n == 0) {
        jerr(err, errlen, s, 0, "Input is a zero-length, empty document");
        return -1;
    }
    if (skip_ws(s, n, 0) == n) {
        jerr(err, errlen, s, 0, "input data is empty");
        return -1;
    }
value: /* a value is due (at the top, after '[' or ',' in a list, after ':') */
    i = skip_ws(s, n, i);
    if (i >= n) goto eof;
    c = s[i];
    if (c == '"') {
        i = scan_string(s, n, i + 1, err, errlen);
        if (!i) return -1;
        goto after_value;
    }
    if (c == '{' || c == '[') {
        if (depth >= OD_JSON_MAX_DEPTH) {
            jerr(err, errlen, s, i, "depth limit exceeded");
            return -1;
        }
        size_t j = skip_ws(s, n, i + 1);
        int empty = j < n && s[j] == (c == '{' ? '}' : ']');
        uint32_t e = UINT32_MAX;
        if (idx && depth < OD_JSON_INDEX_DEPTH && !empty) {
            /* non-empty: indexed (end and next filled at its close) */
            if (idx->n == idx->cap) {
                size_t cap = idx->cap ? idx->cap * 2 : 1024;
                od_jent *p = realloc(idx->e, cap * sizeof *p);
                if (!p) {
                    jerr(err, errlen, s, i, "out of memory");
                    return -1;
                }
                idx->e = p;
                idx->cap = cap;
            }
            e = (uint32_t)idx->n++;
        }
        kind[depth] = c;
        entry[depth] = e;
        depth++;
        i = j;
        if (empty) goto close;
        if (c == '{') goto key;
        goto value;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        i = scan_number(s, n, i, err, errlen);
        if (!i) return -1;
        goto after_value;
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t len = c == 'f' ? 5 : 4;
        if (n - i < len) {
            if (memcmp(s + i, lit, n - i) == 0) goto eof;
            jerr(err, errlen, s, i, "invalid literal");
            return -1;
        }
        if (memcmp(s + i, lit, len) != 0) {
            jerr(err, errlen, s, i, "invalid literal");
            return -1;
        }
        i += len;
        goto after_value;
    }
    if (c == ']' && depth > 0 && kind[depth - 1] == '[') {
        jerr(err, errlen, s, i - 1, "trailing comma is not allowed");
        return -1;
    }
    jerr(err, errlen, s, i, "unexpected character, expected a JSON value");
    return -1;
key: /* a member is due (after '{' or ',') */
    i = skip_ws(s, n, i);
    if (i >= n) goto eof;
    if (s[i] != '"') {
        if (s[i] == '}') {
            jerr(err, errlen, s, i - 1, "trailing comma is not allowed");
            return -1;
        }
        jerr(err, errlen, s, i, "unexpected character, expected a string key");
        return -1;
    }
    i = scan_string(s, n, i + 1, err, errlen);
    if (!i) return -1;
    i = skip_ws(s, n, i);
    if (i >= n) goto eof;
    if (s[i] != ':') {
        jerr(err, errlen, s, i, "unexpected character, expected ':' after key");
        return -1;
    }
    i++;
    goto value;
after_value:
    if (depth == 0) {
        i = skip_ws(s, n, i);
        if (i != n) {
            jerr(err, errlen, s, i, "unexpected content after document");
            return -1;
        }
        return 0;
    }
    i = skip_ws(s, n, i);
    if (i >= n) goto eof;
    c = s[i];
    if (c == ',') {
        i++;
        if (kind[depth - 1] == '{') goto key;
        goto value;
    }
    if (c == (kind[depth - 1] == '{' ? '}' : ']')) goto close;
    jerr(err, errlen, s, i, kind[depth - 1] == '{' ? "expected ',' or '}' after object value"
                                                   : "expected ',' or ']' after array element");
    return -1;
close: /* s[i] closes the innermost container */
    depth--;
    if (entry[depth] != UINT32_MAX) {
        idx->e[entry[depth]].end = (uint32_t)(i + 1);
        idx->e[entry[depth]].next = (uint32_t)idx->n;
    }
    i++;
    goto after_value;
eof:
    jerr(err, errlen, s, n, "unexpected end of data");
    return -1;
}

int od_json_valid(const uint8_t *s, size_t n) { return od_json_validate(s, n, NULL, NULL, 0) == 0; }
