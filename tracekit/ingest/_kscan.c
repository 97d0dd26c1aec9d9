/* _kscan: scan one block of Kineto Chrome-trace events straight into Arrow column buffers.
 *
 * scan(body) -> dict | None
 *
 * ``body`` holds complete events separated by commas (no surrounding brackets).
 * The scan runs without the GIL over a Py_buffer held for the whole call, into
 * malloc'ed growable buffers; Python bytes objects are built after the GIL is
 * taken back. Anything outside the supported subset (see kscan.py) makes the
 * whole block return None so that the caller falls back to the generic path.
 *
 * Each column in the returned dict is a tuple of bytes:
 *   fixed width: (validity | None, data)
 *   strings:     (validity | None, int32 offsets (n+1), utf-8 data)
 * validity is a packed LSB-first bitmap; None means no NULLs. ``n`` is the row count.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- buffers */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} Buf;

enum { E_UNSUPPORTED = 1, E_NOMEM = 2 };

typedef struct {
    const uint8_t *p;   /* cursor */
    const uint8_t *end; /* end of body */
    jmp_buf jb;
} Ctx;

static void fail(Ctx *c, int code) { longjmp(c->jb, code); }

static void buf_need(Ctx *c, Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + extra) nc *= 2;
    uint8_t *q = (uint8_t *)realloc(b->p, nc);
    if (!q) fail(c, E_NOMEM);
    b->p = q;
    b->cap = nc;
}

static inline void buf_put(Ctx *c, Buf *b, const void *src, size_t n) {
    if (n == 0) return;
    buf_need(c, b, n);
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static inline void buf_byte(Ctx *c, Buf *b, uint8_t v) {
    if (b->len + 1 > b->cap) buf_need(c, b, 1);
    b->p[b->len++] = v;
}

/* ---------------------------------------------------------------- columns */

enum { S_PH, S_CAT, S_NAME, S_BP, S_S, S_INPUT_DIMS, S_INPUT_TYPES, S_ARGS, N_STR };
static const char *STR_NAMES[N_STR] = {"ph", "cat", "name", "bp", "s", "input_dims", "input_types", "args"};

enum { I_PID, I_TID, I_TS, I_DUR, I_ID, I_CORR, I_STREAM, I_EXT, I_SHMEM, I_BYTES, I_GRAPH, N_I64 };
static const char *I64_NAMES[N_I64] = {"pid", "tid", "ts_ns", "dur_ns", "id", "correlation", "stream",
                                       "external_id", "shared_mem_bytes", "bytes", "graph_id"};

enum { D_DEVICE, D_REGS, D_GX, D_GY, D_GZ, D_BX, D_BY, D_BZ, N_I32 };
static const char *I32_NAMES[N_I32] = {"device", "registers", "grid_x", "grid_y", "grid_z",
                                       "block_x", "block_y", "block_z"};

typedef struct {
    Buf valid; /* packed bitmap */
    Buf data;
    Buf offs; /* strings only */
    Py_ssize_t nulls;
} Col;

typedef struct {
    Ctx c;
    Py_ssize_t n;
    Col str[N_STR];
    Col i64[N_I64];
    Col i32[N_I32];
    Col flops;
    Buf scratch; /* compacted args of the current event */
    Buf tmp;     /* an unescaped typed-arg string */
    Buf ktmp;    /* an unescaped args key */
    const uint8_t *good_end; /* just after the last event scanned completely */
    const uint8_t *ev_start; /* start of the event being scanned */
    int emitting;            /* failed while appending the row: columns may be uneven */
    /* rows whose pid / tid was JSON text read as a number (old torch, see ids_from_text): numeric pid,
       numeric tid, tid "stream N". Counted for complete rows only. */
    Py_ssize_t text_ids[3];
} Scan;

static void col_free(Col *k) {
    free(k->valid.p);
    free(k->data.p);
    free(k->offs.p);
}

static void scan_free(Scan *s) {
    for (int i = 0; i < N_STR; i++) col_free(&s->str[i]);
    for (int i = 0; i < N_I64; i++) col_free(&s->i64[i]);
    for (int i = 0; i < N_I32; i++) col_free(&s->i32[i]);
    col_free(&s->flops);
    free(s->scratch.p);
    free(s->tmp.p);
    free(s->ktmp.p);
}

/* set validity bit for row n (bitmap grows a byte every 8 rows) */
static inline void col_valid(Scan *s, Col *k, int ok) {
    Py_ssize_t n = s->n;
    if ((n & 7) == 0) buf_byte(&s->c, &k->valid, 0);
    if (ok)
        k->valid.p[n >> 3] |= (uint8_t)(1u << (n & 7));
    else
        k->nulls++;
}

static inline void col_i64(Scan *s, Col *k, int ok, int64_t v) {
    col_valid(s, k, ok);
    if (!ok) v = 0;
    buf_put(&s->c, &k->data, &v, 8);
}

static inline void col_i32(Scan *s, Col *k, int ok, int32_t v) {
    col_valid(s, k, ok);
    if (!ok) v = 0;
    buf_put(&s->c, &k->data, &v, 4);
}

static inline void col_f64(Scan *s, Col *k, int ok, double v) {
    col_valid(s, k, ok);
    if (!ok) v = 0.0;
    buf_put(&s->c, &k->data, &v, 8);
}

/* close the current row of a string column whose bytes were already appended to data */
static inline void col_str_end(Scan *s, Col *k, int ok) {
    col_valid(s, k, ok);
    if (k->data.len > INT32_MAX) fail(&s->c, E_UNSUPPORTED);
    int32_t o = (int32_t)k->data.len;
    buf_put(&s->c, &k->offs, &o, 4);
}

/* ---------------------------------------------------------------- lexing */

static inline void skip_ws(Ctx *c) {
    const uint8_t *p = c->p, *e = c->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    c->p = p;
}

static inline int peek(Ctx *c) { return c->p < c->end ? *c->p : -1; }

static inline void expect(Ctx *c, uint8_t ch) {
    if (c->p >= c->end || *c->p != ch) fail(c, E_UNSUPPORTED);
    c->p++;
}

/* byte classes inside a JSON string: 0 plain ASCII, 1 '"', 2 '\\', 3 control, 4 >= 0x80 */
static uint8_t SCLASS[256];

static void init_tables(void) {
    for (int i = 0; i < 256; i++) SCLASS[i] = i < 0x20 ? 3 : i >= 0x80 ? 4 : 0;
    SCLASS['"'] = 1;
    SCLASS['\\'] = 2;
}

static inline int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static unsigned read_u4(Ctx *c, const uint8_t *p) {
    if (c->end - p < 4) fail(c, E_UNSUPPORTED);
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) fail(c, E_UNSUPPORTED);
        v = (v << 4) | (unsigned)h;
    }
    return v;
}

/* Validate one string starting at the opening quote. Sets *a, *b to the content span
 * (between the quotes) and returns whether it contains escapes. Cursor ends after the
 * closing quote. Invalid UTF-8, control characters, bad escapes and lone surrogates fail. */
static int scan_string(Ctx *c, const uint8_t **a, const uint8_t **b) {
    const uint8_t *p = c->p + 1, *e = c->end;
    int esc = 0;
    *a = p;
    for (;;) {
        while (p < e && SCLASS[*p] == 0) p++;
        if (p >= e) fail(c, E_UNSUPPORTED);
        uint8_t ch = *p;
        switch (SCLASS[ch]) {
        case 1:
            *b = p;
            c->p = p + 1;
            return esc;
        case 2: {
            esc = 1;
            if (p + 1 >= e) fail(c, E_UNSUPPORTED);
            uint8_t x = p[1];
            if (x == 'u') {
                unsigned u = read_u4(c, p + 2);
                p += 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (e - p < 6 || p[0] != '\\' || p[1] != 'u') fail(c, E_UNSUPPORTED);
                    unsigned lo = read_u4(c, p + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF) fail(c, E_UNSUPPORTED);
                    p += 6;
                } else if (u >= 0xDC00 && u <= 0xDFFF) {
                    fail(c, E_UNSUPPORTED);
                }
            } else if (x == '"' || x == '\\' || x == '/' || x == 'b' || x == 'f' || x == 'n' || x == 'r' ||
                       x == 't') {
                p += 2;
            } else {
                fail(c, E_UNSUPPORTED);
            }
            break;
        }
        case 3:
            fail(c, E_UNSUPPORTED);
            break;
        default: { /* UTF-8 multi-byte sequence */
            size_t left = (size_t)(e - p);
            if (ch >= 0xC2 && ch <= 0xDF) {
                if (left < 2 || (p[1] & 0xC0) != 0x80) fail(c, E_UNSUPPORTED);
                p += 2;
            } else if (ch >= 0xE0 && ch <= 0xEF) {
                if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) fail(c, E_UNSUPPORTED);
                if (ch == 0xE0 && p[1] < 0xA0) fail(c, E_UNSUPPORTED);       /* overlong */
                if (ch == 0xED && p[1] >= 0xA0) fail(c, E_UNSUPPORTED);      /* surrogate */
                p += 3;
            } else if (ch >= 0xF0 && ch <= 0xF4) {
                if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
                    fail(c, E_UNSUPPORTED);
                if (ch == 0xF0 && p[1] < 0x90) fail(c, E_UNSUPPORTED);       /* overlong */
                if (ch == 0xF4 && p[1] >= 0x90) fail(c, E_UNSUPPORTED);      /* > U+10FFFF */
                p += 4;
            } else {
                fail(c, E_UNSUPPORTED);
            }
        }
        }
    }
}

static inline void put_utf8(Ctx *c, Buf *o, unsigned u) {
    uint8_t t[4];
    size_t n;
    if (u < 0x80) {
        t[0] = (uint8_t)u;
        n = 1;
    } else if (u < 0x800) {
        t[0] = (uint8_t)(0xC0 | (u >> 6));
        t[1] = (uint8_t)(0x80 | (u & 0x3F));
        n = 2;
    } else if (u < 0x10000) {
        t[0] = (uint8_t)(0xE0 | (u >> 12));
        t[1] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
        t[2] = (uint8_t)(0x80 | (u & 0x3F));
        n = 3;
    } else {
        t[0] = (uint8_t)(0xF0 | (u >> 18));
        t[1] = (uint8_t)(0x80 | ((u >> 12) & 0x3F));
        t[2] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
        t[3] = (uint8_t)(0x80 | (u & 0x3F));
        n = 4;
    }
    buf_put(c, o, t, n);
}

/* Append the unescaped content of an already validated string span. */
static void put_unescaped(Ctx *c, Buf *o, const uint8_t *a, const uint8_t *b, int esc) {
    if (!esc) {
        buf_put(c, o, a, (size_t)(b - a));
        return;
    }
    buf_need(c, o, (size_t)(b - a));
    const uint8_t *p = a;
    while (p < b) {
        const uint8_t *q = p;
        while (q < b && *q != '\\') q++;
        if (q > p) buf_put(c, o, p, (size_t)(q - p));
        if (q >= b) break;
        uint8_t x = q[1];
        switch (x) {
        case 'b': buf_byte(c, o, '\b'); p = q + 2; break;
        case 'f': buf_byte(c, o, '\f'); p = q + 2; break;
        case 'n': buf_byte(c, o, '\n'); p = q + 2; break;
        case 'r': buf_byte(c, o, '\r'); p = q + 2; break;
        case 't': buf_byte(c, o, '\t'); p = q + 2; break;
        case 'u': {
            unsigned u = read_u4(c, q + 2);
            p = q + 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo = read_u4(c, p + 2);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            put_utf8(c, o, u);
            break;
        }
        default: buf_byte(c, o, x); p = q + 2; break; /* " \ / */
        }
    }
}

/* Number token info. */
typedef struct {
    const uint8_t *a, *b; /* text span */
    int neg, has_frac, has_exp;
    int int_ok;           /* integer syntax and fits int64 */
    int64_t ival;
    const uint8_t *ia, *ib; /* integer digits */
    const uint8_t *fa, *fb; /* fraction digits */
} Num;

static void scan_number(Ctx *c, Num *n) {
    const uint8_t *p = c->p, *e = c->end;
    n->a = p;
    n->neg = 0;
    n->has_frac = n->has_exp = 0;
    if (p < e && *p == '-') {
        n->neg = 1;
        p++;
    }
    n->ia = p;
    if (p >= e || *p < '0' || *p > '9') fail(c, E_UNSUPPORTED);
    if (*p == '0') {
        p++;
    } else {
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    n->ib = p;
    n->fa = n->fb = p;
    if (p < e && *p == '.') {
        p++;
        n->fa = p;
        if (p >= e || *p < '0' || *p > '9') fail(c, E_UNSUPPORTED);
        while (p < e && *p >= '0' && *p <= '9') p++;
        n->fb = p;
        n->has_frac = 1;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') fail(c, E_UNSUPPORTED);
        while (p < e && *p >= '0' && *p <= '9') p++;
        n->has_exp = 1;
    }
    n->b = p;
    c->p = p;
    n->int_ok = 0;
    n->ival = 0;
    if (!n->has_frac && !n->has_exp) {
        uint64_t acc = 0;
        int ovf = 0;
        for (const uint8_t *q = n->ia; q < n->ib; q++) {
            unsigned d = (unsigned)(*q - '0');
            if (acc > (UINT64_MAX - d) / 10) {
                ovf = 1;
                break;
            }
            acc = acc * 10 + d;
        }
        if (!ovf) {
            if (!n->neg && acc <= (uint64_t)INT64_MAX) {
                n->int_ok = 1;
                n->ival = (int64_t)acc;
            } else if (n->neg && acc <= (uint64_t)INT64_MAX + 1) {
                n->int_ok = 1;
                n->ival = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
            }
        }
    }
}

/* microseconds (decimal text, no exponent) -> ns, exact, round half to even. 0 on overflow. */
static int us_to_ns(const Num *n, int64_t *out) {
    if (n->has_exp) return 0;
    uint64_t acc = 0;
    for (const uint8_t *q = n->ia; q < n->ib; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (acc > (UINT64_MAX - d) / 10) return 0;
        acc = acc * 10 + d;
    }
    if (acc > UINT64_MAX / 1000) return 0;
    acc *= 1000;
    const uint8_t *f = n->fa;
    size_t nf = (size_t)(n->fb - n->fa);
    static const unsigned SCALE[3] = {100, 10, 1};
    for (size_t i = 0; i < 3 && i < nf; i++) acc += (uint64_t)(f[i] - '0') * SCALE[i];
    if (nf > 3) {
        unsigned first = (unsigned)(f[3] - '0');
        int rest = 0;
        for (size_t i = 4; i < nf; i++)
            if (f[i] != '0') {
                rest = 1;
                break;
            }
        if (first > 5 || (first == 5 && (rest || (acc & 1)))) acc += 1;
    }
    if (acc > (uint64_t)INT64_MAX) return 0;
    *out = n->neg ? -(int64_t)acc : (int64_t)acc;
    return 1;
}

/* integer from string content without escapes: -?[0-9]+ or 0[xX][0-9a-fA-F]+ (like DuckDB's TRY_CAST) */
static int str_to_int(const uint8_t *a, const uint8_t *b, int64_t *out) {
    const uint8_t *p = a;
    int neg = 0;
    if (p < b && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= b) return 0;
    uint64_t acc = 0;
    if (b - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        if (neg) return 0; /* DuckDB: TRY_CAST('-0x1F' AS BIGINT) is NULL */
        p += 2;
        for (; p < b; p++) {
            int h = hexval(*p);
            if (h < 0) return 0;
            if (acc > ((uint64_t)INT64_MAX >> 4)) return 0;
            acc = (acc << 4) | (uint64_t)h;
        }
        if (acc > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)acc;
        return 1;
    }
    for (; p < b; p++) {
        if (*p < '0' || *p > '9') return 0;
        unsigned d = (unsigned)(*p - '0');
        if (acc > (UINT64_MAX - d) / 10) return 0;
        acc = acc * 10 + d;
    }
    if (!neg) {
        if (acc > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)acc;
    } else {
        if (acc > (uint64_t)INT64_MAX + 1) return 0;
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    }
    return 1;
}

static void expect_lit(Ctx *c, const char *lit, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) fail(c, E_UNSUPPORTED);
    c->p += n;
}

/* locale-independent strtod (the process locale may use ',' as decimal point) */
#if defined(__GLIBC__) || defined(__APPLE__)
#ifdef __APPLE__
#include <xlocale.h>
#endif
static locale_t C_LOCALE;
static double c_strtod(const char *t) { return C_LOCALE ? strtod_l(t, NULL, C_LOCALE) : strtod(t, NULL); }
static void init_locale(void) { C_LOCALE = newlocale(LC_ALL_MASK, "C", (locale_t)0); }
#else
static double c_strtod(const char *t) { return strtod(t, NULL); }
static void init_locale(void) {}
#endif

/* value kinds */
enum { V_STR, V_NUM, V_OBJ, V_ARR, V_TRUE, V_FALSE, V_NULL };

typedef struct {
    int kind;
    size_t oa, ob;          /* span of the compacted value in the output buffer */
    const uint8_t *sa, *sb; /* string content span in the input (V_STR) */
    int esc;                /* V_STR has escapes */
    int noncanon;           /* DuckDB's JSON re-serialisation would spell it differently: an escape in a string,
                               a fraction or exponent, -0, an integer outside int64 (somewhere inside it) */
    Num num;                /* V_NUM */
} Val;

/* Copy one JSON value to o with whitespace outside strings removed; validates it. */
static void copy_value(Ctx *c, Buf *o, Val *v, int depth) {
    if (depth > 512) fail(c, E_UNSUPPORTED);
    int ch = peek(c);
    v->oa = o->len;
    v->noncanon = 0;
    switch (ch) {
    case '"': {
        const uint8_t *start = c->p;
        v->kind = V_STR;
        v->esc = scan_string(c, &v->sa, &v->sb);
        v->noncanon = v->esc;
        buf_put(c, o, start, (size_t)(c->p - start));
        break;
    }
    case '{': {
        v->kind = V_OBJ;
        c->p++;
        buf_byte(c, o, '{');
        skip_ws(c);
        if (peek(c) == '}') {
            c->p++;
            buf_byte(c, o, '}');
            break;
        }
        for (;;) {
            if (peek(c) != '"') fail(c, E_UNSUPPORTED);
            const uint8_t *start = c->p, *a, *b;
            v->noncanon |= scan_string(c, &a, &b);
            buf_put(c, o, start, (size_t)(c->p - start));
            skip_ws(c);
            expect(c, ':');
            buf_byte(c, o, ':');
            skip_ws(c);
            Val sub;
            copy_value(c, o, &sub, depth + 1);
            v->noncanon |= sub.noncanon;
            skip_ws(c);
            ch = peek(c);
            if (ch == ',') {
                c->p++;
                buf_byte(c, o, ',');
                skip_ws(c);
            } else if (ch == '}') {
                c->p++;
                buf_byte(c, o, '}');
                break;
            } else {
                fail(c, E_UNSUPPORTED);
            }
        }
        break;
    }
    case '[': {
        v->kind = V_ARR;
        c->p++;
        buf_byte(c, o, '[');
        skip_ws(c);
        if (peek(c) == ']') {
            c->p++;
            buf_byte(c, o, ']');
            break;
        }
        for (;;) {
            Val sub;
            copy_value(c, o, &sub, depth + 1);
            v->noncanon |= sub.noncanon;
            skip_ws(c);
            ch = peek(c);
            if (ch == ',') {
                c->p++;
                buf_byte(c, o, ',');
                skip_ws(c);
            } else if (ch == ']') {
                c->p++;
                buf_byte(c, o, ']');
                break;
            } else {
                fail(c, E_UNSUPPORTED);
            }
        }
        break;
    }
    case 't':
        v->kind = V_TRUE;
        expect_lit(c, "true", 4);
        buf_put(c, o, "true", 4);
        break;
    case 'f':
        v->kind = V_FALSE;
        expect_lit(c, "false", 5);
        buf_put(c, o, "false", 5);
        break;
    case 'n':
        v->kind = V_NULL;
        expect_lit(c, "null", 4);
        buf_put(c, o, "null", 4);
        break;
    default:
        if (ch == '-' || (ch >= '0' && ch <= '9')) {
            v->kind = V_NUM;
            scan_number(c, &v->num);
            v->noncanon = !v->num.int_ok || (v->num.neg && v->num.ival == 0);
            buf_put(c, o, v->num.a, (size_t)(v->num.b - v->num.a));
        } else {
            fail(c, E_UNSUPPORTED);
        }
    }
    v->ob = o->len;
}

/* Skip one value in compact, already validated JSON text; returns the position after it. */
static const uint8_t *skip_compact(const uint8_t *p, const uint8_t *e) {
    int depth = 0;
    while (p < e) {
        uint8_t ch = *p;
        if (ch == '"') {
            p++;
            while (p < e && *p != '"') p += (*p == '\\') ? 2 : 1;
            p++;
        } else if (ch == '{' || ch == '[') {
            depth++;
            p++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0) return p;
            depth--;
            p++;
        } else if (ch == ',') {
            if (depth == 0) return p;
            p++;
        } else {
            p++;
        }
        if (depth == 0 && p < e && (*p == ',' || *p == ']' || *p == '}')) return p;
    }
    return p;
}

/* grid / block arrays: first three elements that are JSON integers within int32 */
static void int3_from_array(const uint8_t *p, const uint8_t *e, int has[3], int32_t val[3]) {
    /* p at '[' */
    p++;
    for (int i = 0; i < 3 && p < e && *p != ']'; i++) {
        const uint8_t *q = skip_compact(p, e);
        /* integer syntax: -?digits only */
        const uint8_t *r = p;
        int neg = 0;
        if (r < q && *r == '-') {
            neg = 1;
            r++;
        }
        int ok = r < q;
        int64_t acc = 0;
        for (const uint8_t *t = r; ok && t < q; t++) {
            if (*t < '0' || *t > '9') {
                ok = 0;
                break;
            }
            acc = acc * 10 + (*t - '0');
            if (acc > (int64_t)INT32_MAX + 1) { /* out of int32 either way; keep checking syntax */
                acc = (int64_t)INT32_MAX + 2;
            }
        }
        if (ok) {
            int64_t v = neg ? -acc : acc;
            if (v >= INT32_MIN && v <= INT32_MAX) {
                has[i] = 1;
                val[i] = (int32_t)v;
            }
        }
        p = q;
        if (p < e && *p == ',') p++;
    }
}

/* ---------------------------------------------------------------- events */

typedef struct {
    int seen; /* bitmask of top-level keys seen */
    /* top-level */
    int has_pid, has_tid, has_ts, has_dur, has_id;
    int64_t pid, tid, ts, dur, id;
    int str_ok[5];                         /* ph cat name bp s non-null */
    const uint8_t *bp_tok_a, *bp_tok_b;    /* raw token of bp (quotes incl.) */
    const uint8_t *s_tok_a, *s_tok_b;
    const uint8_t *pid_tok_a, *pid_tok_b;  /* raw token of a non-numeric string pid/tid (quotes incl.) */
    const uint8_t *tid_tok_a, *tid_tok_b;
    int text_ids[3];                       /* this event's share of Scan.text_ids */
    int has_args;
    /* args */
    int corr_key;
    int a_has[N_I64];
    int64_t a_i64[N_I64];
    int d_has[N_I32];
    int32_t d_i32[N_I32];
    int seen_grid, seen_block, seen_dims, seen_types, seen_flops;
    int has_flops;
    double flops;
    size_t dims_a, dims_b, types_a, types_b;
    int has_dims, has_types;
    int spellings;                         /* bit 0/1: "External id"/"external id" seen; 2/3: "Input Dims"/"Input dims" */
} Ev;

enum { K_PH, K_CAT, K_NAME, K_PID, K_TID, K_TS, K_DUR, K_ARGS, K_ID, K_BP, K_S };

static int top_key(const uint8_t *a, size_t n) {
#define KEQ(lit) (n == sizeof(lit) - 1 && memcmp(a, lit, n) == 0)
    switch (n) {
    case 1:
        return a[0] == 's' ? K_S : -1;
    case 2:
        if (KEQ("ph")) return K_PH;
        if (KEQ("ts")) return K_TS;
        if (KEQ("id")) return K_ID;
        if (KEQ("bp")) return K_BP;
        return -1;
    case 3:
        if (KEQ("cat")) return K_CAT;
        if (KEQ("pid")) return K_PID;
        if (KEQ("tid")) return K_TID;
        if (KEQ("dur")) return K_DUR;
        return -1;
    case 4:
        return KEQ("name") ? K_NAME : KEQ("args") ? K_ARGS : -1;
    default:
        return -1;
    }
}

/* typed int value of an args member: JSON integer within int64, or string holding one */
static int val_int(Ctx *c, Buf *tmp, const Val *v, int64_t *out) {
    if (v->kind == V_NUM) {
        if (!v->num.int_ok) return 0;
        *out = v->num.ival;
        return 1;
    }
    if (v->kind == V_STR) {
        if (!v->esc) return str_to_int(v->sa, v->sb, out);
        if (v->sb - v->sa > 4096) fail(c, E_UNSUPPORTED); /* absurd: let the generic path decide */
        tmp->len = 0;
        put_unescaped(c, tmp, v->sa, v->sb, 1);
        return str_to_int(tmp->p, tmp->p + tmp->len, out);
    }
    return 0;
}

static void typed_i64(Ctx *c, Buf *tmp, Ev *ev, int col, const Val *v) {
    if (ev->a_has[col] != 0) return; /* first occurrence wins, like DuckDB's json_extract */
    int64_t x;
    ev->a_has[col] = val_int(c, tmp, v, &x) ? 1 : -1; /* -1: key seen, not convertible */
    if (ev->a_has[col] == 1) ev->a_i64[col] = x;
}

static void typed_i32(Ctx *c, Buf *tmp, Ev *ev, int col, const Val *v) {
    if (ev->d_has[col] != 0) return;
    int64_t x;
    if (val_int(c, tmp, v, &x) && x >= INT32_MIN && x <= INT32_MAX) {
        ev->d_has[col] = 1;
        ev->d_i32[col] = (int32_t)x;
    } else {
        ev->d_has[col] = -1;
    }
}

/* [a, b) is plain decimal text of an int64 as Python's str() writes it ("0", or no leading zero, at most 18
 * digits, no sign or spaces): *out = its value. Other numeric text is the Python path's (kineto._as_int). */
static int dec_text(const uint8_t *a, const uint8_t *b, int64_t *out) {
    size_t n = (size_t)(b - a);
    if (n == 0 || n > 18 || (a[0] == '0' && n > 1)) return 0;
    int64_t v = 0;
    for (const uint8_t *q = a; q < b; q++) {
        if (*q < '0' || *q > '9') return 0;
        v = v * 10 + (*q - '0');
    }
    *out = v;
    return 1;
}

static void parse_args(Scan *s, Ev *ev) {
    Ctx *c = &s->c;
    Buf *o = &s->scratch;
    o->len = 0;
    if (peek(c) != '{') fail(c, E_UNSUPPORTED);
    c->p++;
    buf_byte(c, o, '{');
    skip_ws(c);
    if (peek(c) == '}') {
        c->p++;
        buf_byte(c, o, '}');
        return;
    }
    for (;;) {
        if (peek(c) != '"') fail(c, E_UNSUPPORTED);
        const uint8_t *start = c->p, *a, *b;
        int kesc = scan_string(c, &a, &b);
        buf_put(c, o, start, (size_t)(c->p - start));
        skip_ws(c);
        expect(c, ':');
        buf_byte(c, o, ':');
        skip_ws(c);
        Val v;
        copy_value(c, o, &v, 1);
        size_t kn = (size_t)(b - a);
        if (kesc) { /* a key spelled with escapes: match its decoded text */
            s->ktmp.len = 0;
            put_unescaped(c, &s->ktmp, a, b, 1);
            a = s->ktmp.p;
            kn = s->ktmp.len;
        }
#define AKEQ(lit) (kn == sizeof(lit) - 1 && memcmp(a, lit, kn) == 0)
        switch (kn) {
        case 4:
            if (AKEQ("grid") && !ev->seen_grid) {
                ev->seen_grid = 1;
                if (v.kind == V_ARR) {
                    int has[3] = {0, 0, 0};
                    int32_t val[3] = {0, 0, 0};
                    int3_from_array(o->p + v.oa, o->p + v.ob, has, val);
                    for (int i = 0; i < 3; i++) {
                        ev->d_has[D_GX + i] = has[i] ? 1 : -1;
                        ev->d_i32[D_GX + i] = val[i];
                    }
                }
            }
            break;
        case 5:
            if (AKEQ("block") && !ev->seen_block) {
                ev->seen_block = 1;
                if (v.kind == V_ARR) {
                    int has[3] = {0, 0, 0};
                    int32_t val[3] = {0, 0, 0};
                    int3_from_array(o->p + v.oa, o->p + v.ob, has, val);
                    for (int i = 0; i < 3; i++) {
                        ev->d_has[D_BX + i] = has[i] ? 1 : -1;
                        ev->d_i32[D_BX + i] = val[i];
                    }
                }
            } else if (AKEQ("bytes")) {
                typed_i64(c, &s->tmp, ev, I_BYTES, &v);
            } else if (AKEQ("flops") && !ev->seen_flops) {
                ev->seen_flops = 1;
                if (v.kind == V_NUM) {
                    size_t len = (size_t)(v.num.b - v.num.a);
                    char tmp[400];
                    if (len >= sizeof tmp) fail(c, E_UNSUPPORTED);
                    memcpy(tmp, v.num.a, len);
                    tmp[len] = 0;
                    double d = c_strtod(tmp);
                    if (isfinite(d)) {
                        ev->has_flops = 1;
                        ev->flops = d;
                    }
                }
            }
            break;
        case 6:
            if (AKEQ("stream")) typed_i64(c, &s->tmp, ev, I_STREAM, &v);
            else if (AKEQ("device")) typed_i32(c, &s->tmp, ev, D_DEVICE, &v);
            break;
        case 8:
            if (AKEQ("graph id")) typed_i64(c, &s->tmp, ev, I_GRAPH, &v);
            break;
        case 10:
            /* the column is the value's text: where DuckDB would re-spell it, the msgspec path decides */
            /* torch 1.8 wrote "Input dims": the same column. Both spellings in one event: Python decides. */
            if (AKEQ("Input Dims") || AKEQ("Input dims")) {
                ev->spellings |= AKEQ("Input Dims") ? 4 : 8;
                if (ev->spellings & 4 && ev->spellings & 8) fail(c, E_UNSUPPORTED);
            }
            if (((AKEQ("Input Dims") || AKEQ("Input dims")) && !ev->seen_dims) || (AKEQ("Input type") && !ev->seen_types)) {
                if (v.noncanon) fail(c, E_UNSUPPORTED);
            }
            if ((AKEQ("Input Dims") || AKEQ("Input dims")) && !ev->seen_dims) {
                ev->seen_dims = ev->has_dims = 1;
                ev->dims_a = v.oa;
                ev->dims_b = v.ob;
            } else if (AKEQ("Input type") && !ev->seen_types) {
                ev->seen_types = ev->has_types = 1;
                ev->types_a = v.oa;
                ev->types_b = v.ob;
            }
            break;
        case 11:
            if (AKEQ("correlation")) {
                ev->corr_key = 1;
                typed_i64(c, &s->tmp, ev, I_CORR, &v);
            } else if (AKEQ("External id") || AKEQ("external id")) {
                /* torch 1.8/1.9 spelled it lower case on GPU and runtime rows. Both in one event: Python decides. */
                ev->spellings |= AKEQ("External id") ? 1 : 2;
                if (ev->spellings & 1 && ev->spellings & 2) fail(c, E_UNSUPPORTED);
                typed_i64(c, &s->tmp, ev, I_EXT, &v);
            }
            break;
        case 13:
            if (AKEQ("shared memory")) typed_i64(c, &s->tmp, ev, I_SHMEM, &v);
            break;
        case 20:
            if (AKEQ("registers per thread")) typed_i32(c, &s->tmp, ev, D_REGS, &v);
            break;
        default:
            break;
        }
        skip_ws(c);
        int ch = peek(c);
        if (ch == ',') {
            c->p++;
            buf_byte(c, o, ',');
            skip_ws(c);
        } else if (ch == '}') {
            c->p++;
            buf_byte(c, o, '}');
            return;
        } else {
            fail(c, E_UNSUPPORTED);
        }
    }
}

static void parse_event(Scan *s) {
    Ctx *c = &s->c;
    Ev ev;
    memset(&ev, 0, sizeof ev);
    expect(c, '{');
    skip_ws(c);
    static const int STRCOL[] = {[K_PH] = S_PH, [K_CAT] = S_CAT, [K_NAME] = S_NAME, [K_BP] = S_BP, [K_S] = S_S};
    if (peek(c) != '}') {
        for (;;) {
            if (peek(c) != '"') fail(c, E_UNSUPPORTED);
            const uint8_t *a, *b;
            if (scan_string(c, &a, &b)) fail(c, E_UNSUPPORTED); /* escaped key */
            int k = top_key(a, (size_t)(b - a));
            if (k < 0 || (ev.seen & (1 << k))) fail(c, E_UNSUPPORTED); /* unknown or duplicate key */
            ev.seen |= 1 << k;
            skip_ws(c);
            expect(c, ':');
            skip_ws(c);
            int ch = peek(c);
            switch (k) {
            case K_PH:
            case K_CAT:
            case K_NAME:
            case K_BP:
            case K_S: {
                int si = k == K_PH ? 0 : k == K_CAT ? 1 : k == K_NAME ? 2 : k == K_BP ? 3 : 4;
                if (ch == 'n') {
                    expect_lit(c, "null", 4);
                } else if (ch == '"') {
                    const uint8_t *tok = c->p, *sa, *sb;
                    int esc = scan_string(c, &sa, &sb);
                    put_unescaped(c, &s->str[STRCOL[k]].data, sa, sb, esc);
                    ev.str_ok[si] = 1;
                    if (k == K_BP) {
                        ev.bp_tok_a = tok;
                        ev.bp_tok_b = c->p;
                    } else if (k == K_S) {
                        ev.s_tok_a = tok;
                        ev.s_tok_b = c->p;
                    }
                } else {
                    fail(c, E_UNSUPPORTED);
                }
                break;
            }
            case K_PID:
            case K_TID:
            case K_ID: {
                int64_t *dst = k == K_PID ? &ev.pid : k == K_TID ? &ev.tid : &ev.id;
                int *has = k == K_PID ? &ev.has_pid : k == K_TID ? &ev.has_tid : &ev.has_id;
                if (ch == 'n') {
                    expect_lit(c, "null", 4);
                } else if (ch == '"' && k != K_ID) {
                    /* Kineto's own rows use names as pid/tid ("Spans", "Traces", ""): NULL + "@pid" in args,
                       as the Python path does. Old torch wrote every tid as text: "31383" is read as 31383 and
                       the tid "stream 7" as 7 (the text kept as "@tid"), as kineto._Columns._ints does. Any other
                       string with a digit might be numeric: leave it to Python. */
                    const uint8_t *tok = c->p, *sa, *sb;
                    int esc = scan_string(c, &sa, &sb);
                    int64_t iv;
                    if (!esc && dec_text(sa, sb, &iv)) {
                        *dst = iv;
                        *has = 1;
                        ev.text_ids[k == K_PID ? 0 : 1] = 1;
                        break;
                    }
                    if (!esc && k == K_TID && sb - sa > 7 && memcmp(sa, "stream ", 7) == 0 && dec_text(sa + 7, sb, &iv)) {
                        *dst = iv;
                        *has = 1;
                        ev.text_ids[2] = 1;
                        ev.tid_tok_a = tok;
                        ev.tid_tok_b = c->p;
                        break;
                    }
                    for (const uint8_t *q = sa; q < sb; q++)
                        if ((*q >= '0' && *q <= '9') || *q == '\\') fail(c, E_UNSUPPORTED);
                    if (k == K_PID) {
                        ev.pid_tok_a = tok;
                        ev.pid_tok_b = c->p;
                    } else {
                        ev.tid_tok_a = tok;
                        ev.tid_tok_b = c->p;
                    }
                } else {
                    Num n;
                    scan_number(c, &n);
                    if (!n.int_ok) fail(c, E_UNSUPPORTED);
                    *dst = n.ival;
                    *has = 1;
                }
                break;
            }
            case K_TS:
            case K_DUR: {
                if (ch == 'n') {
                    expect_lit(c, "null", 4);
                } else {
                    Num n;
                    scan_number(c, &n);
                    int64_t v;
                    if (!us_to_ns(&n, &v)) fail(c, E_UNSUPPORTED);
                    if (k == K_TS) {
                        ev.ts = v;
                        ev.has_ts = 1;
                    } else {
                        if (v < 0) fail(c, E_UNSUPPORTED);
                        ev.dur = v;
                        ev.has_dur = 1;
                    }
                }
                break;
            }
            case K_ARGS:
                parse_args(s, &ev);
                ev.has_args = 1;
                break;
            }
            skip_ws(c);
            ch = peek(c);
            if (ch == ',') {
                c->p++;
                skip_ws(c);
            } else if (ch == '}') {
                break;
            } else {
                fail(c, E_UNSUPPORTED);
            }
        }
    }
    c->p++; /* '}' */

    /* ---- emit the row */
    s->emitting = 1;
    for (int i = 0; i < 5; i++) {
        static const int SC[5] = {S_PH, S_CAT, S_NAME, S_BP, S_S};
        col_str_end(s, &s->str[SC[i]], ev.str_ok[i]);
    }
    if (ev.has_dims) buf_put(c, &s->str[S_INPUT_DIMS].data, s->scratch.p + ev.dims_a, ev.dims_b - ev.dims_a);
    col_str_end(s, &s->str[S_INPUT_DIMS], ev.has_dims);
    if (ev.has_types) buf_put(c, &s->str[S_INPUT_TYPES].data, s->scratch.p + ev.types_a, ev.types_b - ev.types_a);
    col_str_end(s, &s->str[S_INPUT_TYPES], ev.has_types);

    int with_id = ev.has_id && ev.corr_key;
    Buf *ad = &s->str[S_ARGS].data;
    if (ev.str_ok[3] || ev.str_ok[4] || with_id || ev.pid_tok_a || ev.tid_tok_a) {
        int first = 1;
        buf_byte(c, ad, '{');
        if (ev.str_ok[3]) {
            buf_put(c, ad, "\"@bp\":", 6);
            buf_put(c, ad, ev.bp_tok_a, (size_t)(ev.bp_tok_b - ev.bp_tok_a));
            first = 0;
        }
        if (ev.str_ok[4]) {
            if (!first) buf_byte(c, ad, ',');
            buf_put(c, ad, "\"@s\":", 5);
            buf_put(c, ad, ev.s_tok_a, (size_t)(ev.s_tok_b - ev.s_tok_a));
            first = 0;
        }
        if (with_id) {
            char tmp[32];
            int len = snprintf(tmp, sizeof tmp, "%lld", (long long)ev.id);
            if (!first) buf_byte(c, ad, ',');
            buf_put(c, ad, "\"@id\":", 6);
            buf_put(c, ad, tmp, (size_t)len);
            first = 0;
        }
        if (ev.pid_tok_a) {
            if (!first) buf_byte(c, ad, ',');
            buf_put(c, ad, "\"@pid\":", 7);
            buf_put(c, ad, ev.pid_tok_a, (size_t)(ev.pid_tok_b - ev.pid_tok_a));
            first = 0;
        }
        if (ev.tid_tok_a) {
            if (!first) buf_byte(c, ad, ',');
            buf_put(c, ad, "\"@tid\":", 7);
            buf_put(c, ad, ev.tid_tok_a, (size_t)(ev.tid_tok_b - ev.tid_tok_a));
            first = 0;
        }
        if (ev.has_args && s->scratch.len > 2) {
            buf_byte(c, ad, ',');
            buf_put(c, ad, s->scratch.p + 1, s->scratch.len - 1);
        } else {
            buf_byte(c, ad, '}');
        }
        col_str_end(s, &s->str[S_ARGS], 1);
    } else if (ev.has_args) {
        buf_put(c, ad, s->scratch.p, s->scratch.len);
        col_str_end(s, &s->str[S_ARGS], 1);
    } else {
        col_str_end(s, &s->str[S_ARGS], 0);
    }

    col_i64(s, &s->i64[I_PID], ev.has_pid, ev.pid);
    col_i64(s, &s->i64[I_TID], ev.has_tid, ev.tid);
    col_i64(s, &s->i64[I_TS], ev.has_ts, ev.ts);
    col_i64(s, &s->i64[I_DUR], ev.has_dur, ev.dur);
    col_i64(s, &s->i64[I_ID], ev.has_id, ev.id);
    if (ev.a_has[I_CORR] == 1)
        col_i64(s, &s->i64[I_CORR], 1, ev.a_i64[I_CORR]);
    else
        col_i64(s, &s->i64[I_CORR], ev.has_id, ev.id);
    static const int ACOLS[] = {I_STREAM, I_EXT, I_SHMEM, I_BYTES, I_GRAPH};
    for (size_t i = 0; i < sizeof ACOLS / sizeof *ACOLS; i++)
        col_i64(s, &s->i64[ACOLS[i]], ev.a_has[ACOLS[i]] == 1, ev.a_i64[ACOLS[i]]);
    for (int i = 0; i < N_I32; i++) col_i32(s, &s->i32[i], ev.d_has[i] == 1, ev.d_i32[i]);
    col_f64(s, &s->flops, ev.has_flops, ev.flops);
    for (int i = 0; i < 3; i++) s->text_ids[i] += ev.text_ids[i];
    s->n++;
    s->emitting = 0;
}

/* Returns 0 ok, E_UNSUPPORTED, E_NOMEM. */
static int scan_body(Scan *s) {
    Ctx *c = &s->c;
    int rc = setjmp(c->jb);
    if (rc) return rc;
    for (int i = 0; i < N_STR; i++) {
        int32_t zero = 0;
        buf_put(c, &s->str[i].offs, &zero, 4);
    }
    skip_ws(c);
    s->good_end = s->ev_start = c->p;
    if (c->p >= c->end) return 0;
    for (;;) {
        s->ev_start = c->p;
        if (s->n >= INT32_MAX - 1) fail(c, E_UNSUPPORTED);
        parse_event(s);
        s->good_end = s->ev_start = c->p;
        skip_ws(c);
        if (c->p >= c->end) return 0;
        expect(c, ',');
        skip_ws(c);
    }
}

/* ---------------------------------------------------------------- structure splitter
 *
 * split(chunk, base, state, mode, first) -> (state, cut_end, cut_next, code, at)
 *
 * Follows the JSON structure (strings, escapes, nesting depth) over a stream fed chunk by chunk, without
 * parsing values: where events end, so that blocks are cut only between events (a `},{` inside a string is
 * not a boundary), in one linear pass whatever the input. Positions are absolute: ``base`` is the offset of
 * ``chunk`` in the stream. ``state`` is the tuple returned by the previous call (None at the start).
 *
 * mode 0 (events): the stream starts just after the `[` of the event list; depth 0 is between its
 *   elements. (cut_end, cut_next) is the last depth-0 comma of the chunk that follows a complete element
 *   (cut_end = the comma, cut_next = after it), or (-1, -1). With ``first`` the call returns at the first.
 * mode 1 (head): the stream starts at the document's `{`; looks for the top-level key "traceEvents".
 *
 * code: 0 chunk consumed; 1 events: the list's `]` at ``at``; 2 head: the event list starts at ``at``
 * (after its `[`; state[6] is where the key's `"` is); 3 head: "traceEvents" is not a list (its value
 * starts at ``at``); 4 head: the top-level object ended at ``at`` without it; 5 nested deeper than
 * SPLIT_MAX_DEPTH at ``at``; 6 not JSON at ``at`` (a control character in a string, a byte that cannot
 * appear outside one, a `}`/`]` without its opener, an empty element); 7 ``first`` found a boundary.
 * state[4] (``done``) is the position after the last complete depth-0 object/array/string: the end of
 * the last complete event when the stream is cut short. */
#define SPLIT_MAX_DEPTH 500

/* outside strings: 0 allowed and uninteresting (whitespace, number and literal characters), 1 '"',
 * 2 '{' '[', 3 '}' ']', 4 ',', 5 ':', 6 not JSON; whitespace is 7 (uninteresting but not a token) */
static uint8_t OCLASS[256];
/* inside strings: 1 for '"', '\\' and control characters (where the string scan stops) */
static uint8_t SSTOP[256];
/* inside an event, outside strings (the fast loop): 0 skipped (whitespace, number and literal characters,
 * ',' ':'), 1 '"', 2 '{' '[', 3 '}' ']', 4 anything else (left to the general loop) */
static uint8_t FAST[256];

static void init_split_tables(void) {
    for (int i = 0; i < 256; i++) OCLASS[i] = 6;
    for (int i = '0'; i <= '9'; i++) OCLASS[i] = 0;
    for (int i = 'a'; i <= 'z'; i++) OCLASS[i] = 0;
    for (int i = 'A'; i <= 'Z'; i++) OCLASS[i] = 0;
    OCLASS['-'] = OCLASS['+'] = OCLASS['.'] = 0;
    OCLASS[' '] = OCLASS['\t'] = OCLASS['\n'] = OCLASS['\r'] = 7;
    OCLASS['"'] = 1;
    OCLASS['{'] = OCLASS['['] = 2;
    OCLASS['}'] = OCLASS[']'] = 3;
    OCLASS[','] = 4;
    OCLASS[':'] = 5;
    for (int i = 0; i < 256; i++) SSTOP[i] = i < 0x20 || i == '"' || i == '\\';
    for (int i = 0; i < 256; i++) {
        int k = OCLASS[i];
        FAST[i] = (k == 0 || k == 7 || k == 4 || k == 5) ? 0 : k == 1 ? 1 : k == 2 ? 2 : k == 3 ? 3 : 4;
    }
}

typedef struct {
    long long depth, str, seen, key, done, kstate, kstart;
} SplitState;


static const char TE_KEY[] = "traceEvents";
#define TE_LEN 11

static PyObject *kscan_split(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t base;
    PyObject *st;
    int mode, first;
    if (!PyArg_ParseTuple(args, "y*nOii", &view, &base, &st, &mode, &first)) return NULL;
    SplitState s = {0, 0, 0, -1, -1, 0, -1};
    if (st != Py_None &&
        !PyArg_ParseTuple(st, "LLLLLLL", &s.depth, &s.str, &s.seen, &s.key, &s.done, &s.kstate, &s.kstart)) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const uint8_t *b0 = (const uint8_t *)view.buf, *p = b0, *e = b0 + view.len;
    Py_ssize_t cut_end = -1, cut_next = -1, at = -1;
    int code = 0;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        if (mode == 0 && !s.str && s.depth >= 1) {
            /* The fast loop: inside an event, where only strings and nesting matter (the bulk of the input).
             * It leaves to the general loop below the end of the event (depth 0), a string cut by the end
             * of the chunk or holding a control character, and any byte JSON cannot have there. */
            while (p < e) {
                uint8_t k = FAST[*p];
                if (k == 0) {
                    p++;
                } else if (k == 1) {
                    const uint8_t *q = p + 1;
                    for (;;) {
                        while (q < e && !SSTOP[*q]) q++;
                        if (q < e && *q == '\\' && q + 1 < e && q[1] >= 0x20) {
                            q += 2;
                            continue;
                        }
                        break;
                    }
                    if (q < e && *q == '"') {
                        p = q + 1;
                    } else { /* the chunk ends inside the string, or an odd byte: the general loop */
                        s.str = 1;
                        s.key = -1;
                        p = q;
                        break;
                    }
                } else if (k == 2) {
                    if (s.depth >= SPLIT_MAX_DEPTH) break;
                    s.depth++;
                    p++;
                } else if (k == 3) {
                    if (s.depth <= 1) break;
                    s.depth--;
                    p++;
                } else {
                    break;
                }
            }
            if (p >= e && !s.str) break;
            if (s.str) continue;
        }
        if (s.str) {
            /* inside a string: s.str 1 plain, 2 after a backslash */
            if (s.str == 2) {
                if (p >= e) break;
                if (*p < 0x20) { code = 6; at = base + (p - b0); break; }
                s.str = 1;
                if (s.key >= 0) s.key = -1; /* an escape: not spelled "traceEvents" */
                p++;
            }
            /* head mode, a depth-1 string: compare with the key as it goes (until it differs) */
            while (s.key >= 0 && p < e && *p != '"' && *p != '\\' && *p >= 0x20) {
                s.key = (s.key < TE_LEN && *p == (uint8_t)TE_KEY[s.key]) ? s.key + 1 : -1;
                p++;
            }
            while (p < e && SSTOP[*p] == 0) p++;
            if (p >= e) break;
            uint8_t ch = *p++;
            if (ch == '\\') { s.str = 2; continue; }
            if (ch < 0x20) { code = 6; at = base + (p - 1 - b0); break; }
            /* closing quote */
            s.str = 0;
            if (mode == 0) {
                if (s.depth == 0) s.done = base + (p - b0);
            } else if (s.depth == 1) {
                s.kstate = (s.key == TE_LEN) ? 1 : 0;
            }
            s.key = -1;
            continue;
        }
        while (p < e && OCLASS[*p] == 7) p++;
        if (p >= e) break;
        uint8_t ch = *p;
        int cls = OCLASS[ch];
        Py_ssize_t pos = base + (p - b0);
        if (mode == 1 && s.depth == 1 && s.kstate) {
            if (s.kstate == 1) {
                s.kstate = (cls == 5) ? 2 : 0;
                if (s.kstate) { p++; continue; }
            } else { /* the value of "traceEvents" */
                if (ch == '[') { code = 2; at = pos + 1; break; }
                code = 3; at = pos; break;
            }
        }
        if (mode == 0 && s.depth == 0) {
            if (cls == 4) {
                if (!s.seen) { code = 6; at = pos; break; }
                s.seen = 0;
                cut_end = pos;
                cut_next = pos + 1;
                p++;
                if (first) { code = 7; break; }
                continue;
            }
            if (cls == 3 && ch == ']') {
                if (!s.seen && s.done >= 0) { code = 6; at = pos; break; } /* a trailing comma */
                code = 1; at = pos; break;
            }
            if (cls == 5 || cls == 3 || cls == 6) { code = 6; at = pos; break; }
            s.seen = 1;
        }
        switch (cls) {
        case 0:
            p++;
            while (p < e && OCLASS[*p] == 0) p++;
            break;
        case 1:
            s.str = 1;
            if (mode == 1 && s.depth == 1) { s.key = 0; s.kstart = pos; }
            p++;
            break;
        case 2:
            if (++s.depth > SPLIT_MAX_DEPTH) { code = 5; at = pos; goto out; }
            p++;
            break;
        case 3:
            if (s.depth <= 0) { code = 6; at = pos; goto out; }
            p++;
            if (--s.depth == 0) {
                if (mode == 1) { code = 4; at = pos + 1; goto out; }
                s.done = pos + 1;
            }
            break;
        case 4:
        case 5:
            p++;
            break;
        default:
            code = 6; at = pos; goto out;
        }
    }
out:
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return Py_BuildValue("((LLLLLLL)nnin)", s.depth, s.str, s.seen, s.key, s.done, s.kstate, s.kstart, cut_end,
                         cut_next, code, at);
}

/* ---------------------------------------------------------------- Python glue */

/* A read-only buffer that owns memory the scanner malloc'ed: the columns go to Arrow (pa.py_buffer) without
 * being copied into bytes objects first. That copy held the GIL and touched fresh pages for every byte of
 * output; it was ~10% of the decode's CPU time (perf: memmove + page faults). */
typedef struct {
    PyObject_HEAD
    uint8_t *p;
    Py_ssize_t len;
} OwnedBuf;

static void owned_dealloc(OwnedBuf *o) {
    free(o->p);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static int owned_getbuffer(OwnedBuf *o, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)o, o->p, o->len, 1, flags);
}

static PyBufferProcs owned_as_buffer = {(getbufferproc)owned_getbuffer, NULL};

static PyTypeObject OwnedBufType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tracekit.ingest._kscan.OwnedBuf",
    .tp_basicsize = sizeof(OwnedBuf),
    .tp_dealloc = (destructor)owned_dealloc,
    .tp_as_buffer = &owned_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Column memory handed over by the scanner (read-only buffer).",
};

/* The contents of b as a Python buffer object; b's memory is handed over (b is left empty). */
static PyObject *bytes_of(Buf *b) {
    if (!b->len || !b->p) return PyBytes_FromStringAndSize("", 0);
    OwnedBuf *o = PyObject_New(OwnedBuf, &OwnedBufType);
    if (!o) return NULL;
    o->p = b->p;
    o->len = (Py_ssize_t)b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return (PyObject *)o;
}

static PyObject *col_tuple(Col *k, int is_str) {
    PyObject *valid, *data, *offs = NULL, *t;
    if (k->nulls) {
        valid = bytes_of(&k->valid);
    } else {
        valid = Py_None;
        Py_INCREF(valid);
    }
    data = bytes_of(&k->data);
    if (is_str) offs = bytes_of(&k->offs);
    if (!valid || !data || (is_str && !offs)) {
        Py_XDECREF(valid);
        Py_XDECREF(data);
        Py_XDECREF(offs);
        return NULL;
    }
    t = is_str ? PyTuple_Pack(3, valid, offs, data) : PyTuple_Pack(2, valid, data);
    Py_DECREF(valid);
    Py_DECREF(data);
    Py_XDECREF(offs);
    return t;
}

static int dict_put(PyObject *d, const char *name, PyObject *v) {
    if (!v) return -1;
    int r = PyDict_SetItemString(d, name, v);
    Py_DECREF(v);
    return r;
}

/* Scan [p, p+len) without the GIL. Returns the Scan (caller frees) or NULL with MemoryError set;
 * *rc is 0 or E_UNSUPPORTED. */
static Scan *run_scan(const uint8_t *p, size_t len, int *rc) {
    Scan *s = (Scan *)calloc(1, sizeof(Scan));
    if (!s) {
        PyErr_NoMemory();
        return NULL;
    }
    s->c.p = p;
    s->c.end = p + len;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = scan_body(s);
    Py_END_ALLOW_THREADS
    if (r == E_NOMEM) {
        scan_free(s);
        free(s);
        PyErr_NoMemory();
        return NULL;
    }
    *rc = r;
    return s;
}

static void scan_release(Scan *s) {
    scan_free(s);
    free(s);
}

/* The column dict of a finished scan. */
static PyObject *build_dict(Scan *s) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    if (dict_put(d, "n", PyLong_FromSsize_t(s->n)) < 0) goto error;
    for (int i = 0; i < N_STR; i++)
        if (dict_put(d, STR_NAMES[i], col_tuple(&s->str[i], 1)) < 0) goto error;
    for (int i = 0; i < N_I64; i++)
        if (dict_put(d, I64_NAMES[i], col_tuple(&s->i64[i], 0)) < 0) goto error;
    for (int i = 0; i < N_I32; i++)
        if (dict_put(d, I32_NAMES[i], col_tuple(&s->i32[i], 0)) < 0) goto error;
    if (dict_put(d, "flops", col_tuple(&s->flops, 0)) < 0) goto error;
    if (dict_put(d, "text_ids", Py_BuildValue("(nnn)", s->text_ids[0], s->text_ids[1], s->text_ids[2])) < 0) goto error;
    return d;
error:
    Py_DECREF(d);
    return NULL;
}

static PyObject *kscan_scan(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    int rc = 0;
    Scan *s = run_scan((const uint8_t *)view.buf, (size_t)view.len, &rc);
    PyBuffer_Release(&view);
    if (!s) return NULL;
    PyObject *d = rc ? Py_NewRef(Py_None) : build_dict(s);
    scan_release(s);
    return d;
}

/* After a failed scan with complete rows 0..n-1: drop what the failing event left in the string columns. */
static void truncate_rows(Scan *s) {
    for (int i = 0; i < N_STR; i++) {
        int32_t o;
        memcpy(&o, s->str[i].offs.p + 4 * (size_t)s->n, 4);
        s->str[i].data.len = (size_t)o;
    }
}

/* End of the well-formed JSON value at s->ev_start when a ',' or the end of the body follows it; NULL if none. */
static const uint8_t *bad_event_end(Scan *s) {
    Ctx *c = &s->c;
    c->p = s->ev_start;
    if (setjmp(c->jb)) return NULL;
    Val v;
    s->scratch.len = 0;
    copy_value(c, &s->scratch, &v, 0);
    const uint8_t *e = c->p;
    skip_ws(c);
    if (c->p < c->end && *c->p != ',') return NULL;
    return e;
}

/* scan_prefix(body) -> (dict | None, stop, bad_end): the columns of the leading events the scanner
 * supports; the offset in body where the first event it does not support starts (len(body) when all
 * are supported); and where that event ends when it is well-formed JSON followed by ',' or the end
 * (-1 otherwise, or when all are supported). */
static PyObject *kscan_scan_prefix(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *base = (const uint8_t *)view.buf;
    int rc = 0;
    PyObject *d = NULL, *res = NULL;
    Py_ssize_t stop = view.len, bad_end = -1;
    Scan *s = run_scan(base, (size_t)view.len, &rc);
    if (!s) goto done;
    if (rc) {
        const uint8_t *good = s->good_end, *be;
        stop = (Py_ssize_t)(s->ev_start - base);
        Py_BEGIN_ALLOW_THREADS
        be = bad_event_end(s);
        Py_END_ALLOW_THREADS
        if (be) bad_end = (Py_ssize_t)(be - base);
        if (s->n == 0) {
            d = Py_NewRef(Py_None);
            stop = 0;
        } else if (!s->emitting) {
            truncate_rows(s);
            d = build_dict(s);
        } else { /* rare (a string column over 2 GiB): scan the good prefix again */
            scan_release(s);
            s = run_scan(base, (size_t)(good - base), &rc);
            if (!s) goto done;
            if (rc) {
                d = Py_NewRef(Py_None);
                stop = 0;
            } else {
                d = build_dict(s);
            }
        }
    } else {
        d = build_dict(s);
    }
    if (d) res = Py_BuildValue("(Nnn)", d, stop, bad_end);
done:
    if (s) scan_release(s);
    PyBuffer_Release(&view);
    return res;
}

/* ---- emit_nvtx suffixes -------------------------------------------------------------------------------------
 * emit_nvtx_cut(offsets, data, first, n) -> (offsets', data') | None: each of the n strings of an Arrow string array
 * (int32 offsets[first .. first+n], data) cut where tracekit.ingest.nsys.EMIT_NVTX_SUFFIX's leftmost match starts,
 * the prefixes packed into a new array's buffers (offsets from 0). The regex,
 *     (, seq = \d+)?(, op_id = \d+)?(, sizes = \[.*\])?(, input_op_ids = \[.*\])?$
 * matches at the first i where s[i:] is, in order: an optional ", seq = " with digits, an optional ", op_id = " with
 * digits, then the end, or ", sizes = [" or ", input_op_ids = [" with no newline up to a final ']' (`.` is any
 * character but '\n'; digits must run to a ',' or the end, so the longest run is the only one; a group whose
 * digits are missing is skipped, and then nothing else can start there). Every group starts with ','.
 * None when a string holds a byte >= 0x80 after its first ',' (RE2 reads UTF-8 there: the caller uses the regex),
 * or when the offsets do not fit the buffers. tests/test_emit_nvtx_cut.py checks it against the regex. */
static int starts_with(const uint8_t *s, Py_ssize_t len, Py_ssize_t at, const char *lit, Py_ssize_t n) {
    return len - at >= n && memcmp(s + at, lit, (size_t)n) == 0;
}

static Py_ssize_t digits_from(const uint8_t *s, Py_ssize_t len, Py_ssize_t at) {
    while (at < len && s[at] >= '0' && s[at] <= '9') at++;
    return at;
}

static int emit_suffix_at(const uint8_t *s, Py_ssize_t len, Py_ssize_t i, Py_ssize_t last_nl) {
    Py_ssize_t j = i, d;
    if (starts_with(s, len, j, ", seq = ", 8) && (d = digits_from(s, len, j + 8)) > j + 8) j = d;
    if (starts_with(s, len, j, ", op_id = ", 10) && (d = digits_from(s, len, j + 10)) > j + 10) j = d;
    if (j == len) return 1;
    Py_ssize_t open = starts_with(s, len, j, ", sizes = [", 11) ? 11 : starts_with(s, len, j, ", input_op_ids = [", 18) ? 18 : 0;
    return open && s[len - 1] == ']' && len - 1 >= j + open && last_nl < j;
}

/* Where the suffix starts in s (len when there is none); -1 for a byte >= 0x80 after the first ','. */
static Py_ssize_t emit_cut_one(const uint8_t *s, Py_ssize_t len) {
    const uint8_t *c = memchr(s, ',', (size_t)len);
    if (!c) return len;
    Py_ssize_t first = c - s, last_nl = -1;
    for (Py_ssize_t k = first; k < len; k++) {
        if (s[k] >= 0x80) return -1;
        if (s[k] == '\n') last_nl = k;
    }
    for (Py_ssize_t i = first; i < len; i++)
        if (s[i] == ',' && emit_suffix_at(s, len, i, last_nl)) return i;
    return len;
}

static PyObject *kscan_emit_nvtx_cut(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer ov, dv;
    Py_ssize_t first, n;
    if (!PyArg_ParseTuple(args, "y*y*nn", &ov, &dv, &first, &n)) return NULL;
    PyObject *res = NULL;
    Buf offs = {0}, data = {0};
    int fallback = 0;
    if (first < 0 || n < 0 || (first + n + 1) * 4 > ov.len) {
        fallback = 1;
        goto done;
    }
    const int32_t *o = (const int32_t *)ov.buf + first;
    const uint8_t *base = (const uint8_t *)dv.buf;
    if (n && (o[0] < 0 || o[n] > dv.len)) {
        fallback = 1;
        goto done;
    }
    offs.p = (uint8_t *)malloc(4 * ((size_t)n + 1));
    data.p = (uint8_t *)malloc(n && o[n] > o[0] ? (size_t)(o[n] - o[0]) : 1);
    if (!offs.p || !data.p) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    int32_t at = 0;
    memcpy(offs.p, &at, 4);
    for (Py_ssize_t r = 0; r < n && !fallback; r++) {
        Py_ssize_t len = o[r + 1] - o[r];
        if (len < 0) {
            fallback = 1;
            break;
        }
        Py_ssize_t cut = emit_cut_one(base + o[r], len);
        if (cut < 0) {
            fallback = 1;
            break;
        }
        memcpy(data.p + at, base + o[r], (size_t)cut);
        at += (int32_t)cut;
        memcpy(offs.p + 4 * (r + 1), &at, 4);
    }
    offs.len = 4 * ((size_t)n + 1);
    data.len = (size_t)at;
    Py_END_ALLOW_THREADS
    if (!fallback) res = Py_BuildValue("(NN)", bytes_of(&offs), bytes_of(&data));
done:
    free(offs.p);
    free(data.p);
    PyBuffer_Release(&ov);
    PyBuffer_Release(&dv);
    if (fallback && !PyErr_Occurred()) res = Py_NewRef(Py_None);
    return res;
}

static PyMethodDef methods[] = {
    {"scan", kscan_scan, METH_O,
     "scan(body) -> dict | None\n\nScan comma-separated Kineto events into Arrow column buffers; None when the "
     "block is outside the supported subset."},
    {"scan_prefix", kscan_scan_prefix, METH_O,
     "scan_prefix(body) -> (dict | None, stop, bad_end)\n\nColumns of the leading events the scanner supports, "
     "the offset where the first unsupported event starts (len(body) when none) and where it ends (-1 if unknown)."},
    {"split", kscan_split, METH_VARARGS,
     "split(chunk, base, state, mode, first) -> (state, cut_end, cut_next, code, at)\n\nFollow the JSON "
     "structure of a stream fed chunk by chunk: event boundaries (mode 0) or the top-level traceEvents key "
     "(mode 1); see the comment in _kscan.c."},
    {"emit_nvtx_cut", kscan_emit_nvtx_cut, METH_VARARGS,
     "emit_nvtx_cut(offsets, data, first, n) -> (offsets, data) | None\n\nThe strings of an Arrow string array "
     "without torch emit_nvtx's per-call suffixes; see the comment in _kscan.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_kscan", "Kineto event block scanner.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kscan(void) {
    init_tables();
    init_split_tables();
    init_locale();
    if (PyType_Ready(&OwnedBufType) < 0) return NULL;
    return PyModule_Create(&moddef);
}
