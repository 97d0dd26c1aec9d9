/* _chrome: render rows of queries/export_chrome.sql's `export_chrome` output as Chrome-trace event JSON.
 *
 * render(rows, fallback) -> bytes
 *
 * ``rows``: a sequence of 9-tuples (ph, cat, name, pid, tid, ts_ns, dur_ns, id, args), what DuckDB's fetchmany
 * gives for that output. Returns the events joined by ",\n": for each row the bytes that
 * tracekit.export_chrome.render_event(*row) returns. A row this code does not render itself goes to
 * ``fallback(*row)`` (render_event), which must return bytes:
 *   - args holding '"@' (top-level fields to hoist back out of args: render_event re-encodes the object);
 *   - a value of another type than str / None (ph, cat, name, args) or int / None (pid, tid, ts_ns, dur_ns,
 *     id), an int outside int64, or a str that is not valid UTF-8 (a lone surrogate).
 * Strings are escaped as msgspec.json.encode escapes them (the Python path's encoder): '"' and '\\' with a
 * backslash, \b \t \n \f \r, every other byte below 0x20 as \u00xx (lowercase hex), everything else (DEL,
 * non-ASCII UTF-8) as is. ts and dur are exact decimal microseconds of integer ns (export_chrome.us_text).
 *
 * Why: on a median step of 39k events the Python renderer was ~0.1 s of the page's export, its largest part
 * after the SQL (issue 25 item 3); tests/test_chrome_render.py holds the two to the same bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
} Out;

static int out_need(Out *o, size_t extra) {
    if (o->len + extra <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->len + extra) cap *= 2;
    char *p = (char *)realloc(o->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    o->p = p;
    o->cap = cap;
    return 0;
}

static int out_put(Out *o, const char *s, size_t n) {
    if (out_need(o, n) < 0) return -1;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

/* a JSON string of UTF-8 ``s`` as msgspec writes it */
static int out_str(Out *o, const char *s, Py_ssize_t n) {
    if (out_need(o, (size_t)n * 6 + 2) < 0) return -1;
    char *d = o->p + o->len;
    *d++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *d++ = (char)c;
            continue;
        }
        *d++ = '\\';
        switch (c) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '\b': *d++ = 'b'; break;
        case '\t': *d++ = 't'; break;
        case '\n': *d++ = 'n'; break;
        case '\f': *d++ = 'f'; break;
        case '\r': *d++ = 'r'; break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = HEX[c >> 4];
            *d++ = HEX[c & 15];
        }
    }
    *d++ = '"';
    o->len = (size_t)(d - o->p);
    return 0;
}

static int out_int(Out *o, long long v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    return out_put(o, tmp, (size_t)n);
}

/* export_chrome.us_text: exact decimal microseconds of integer ns (1234567 -> 1234.567, 5000 -> 5) */
static int out_us(Out *o, long long ns) {
    unsigned long long a = ns < 0 ? (unsigned long long)(-(ns + 1)) + 1 : (unsigned long long)ns;
    unsigned long long q = a / 1000, r = a % 1000;
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%s%llu", ns < 0 ? "-" : "", q);
    if (r) {
        n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%03llu", r);
        while (tmp[n - 1] == '0') n--;
    }
    return out_put(o, tmp, (size_t)n);
}

enum { PH, CAT, NAME, PID, TID, TS, DUR, ID, ARGS, NCOL };

/* 1: rendered into ``o``; 0: not this code's row (the caller uses the fallback); -1: an error is set */
static int render_row(Out *o, PyObject *row) {
    if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != NCOL) return 0;
    const char *str[NCOL] = {0};
    Py_ssize_t slen[NCOL] = {0};
    long long num[NCOL] = {0};
    int has[NCOL] = {0};
    for (int k = 0; k < NCOL; k++) {
        PyObject *v = PyTuple_GET_ITEM(row, k);
        if (v == Py_None) continue;
        has[k] = 1;
        if (k == PH || k == CAT || k == NAME || k == ARGS) {
            if (!PyUnicode_CheckExact(v)) return 0;
            str[k] = PyUnicode_AsUTF8AndSize(v, &slen[k]);
            if (!str[k]) {
                PyErr_Clear(); /* a lone surrogate: the fallback says what it says */
                return 0;
            }
        } else {
            if (!PyLong_CheckExact(v)) return 0;
            int overflow = 0;
            num[k] = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow) return 0;
            if (num[k] == -1 && PyErr_Occurred()) return -1;
        }
    }
    if (has[ARGS] && slen[ARGS] >= 2) {
        for (Py_ssize_t i = 0; i + 1 < slen[ARGS]; i++)
            if (str[ARGS][i] == '"' && str[ARGS][i + 1] == '@') return 0;
    }
    static const char *const KEY[] = {"\"ph\":", "\"cat\":", "\"name\":", "\"pid\":", "\"tid\":"};
    int first = 1;
    if (out_put(o, "{", 1) < 0) return -1;
    for (int k = PH; k <= TID; k++) {
        if (!has[k]) continue;
        if (!first && out_put(o, ",", 1) < 0) return -1;
        first = 0;
        if (out_put(o, KEY[k], strlen(KEY[k])) < 0) return -1;
        if ((k <= NAME ? out_str(o, str[k], slen[k]) : out_int(o, num[k])) < 0) return -1;
    }
    if (has[TS]) {
        if ((!first && out_put(o, ",", 1) < 0) || out_put(o, "\"ts\":", 5) < 0 || out_us(o, num[TS]) < 0) return -1;
        first = 0;
    }
    if (has[PH] && slen[PH] == 1 && str[PH][0] == 'X' && has[DUR]) {
        if ((!first && out_put(o, ",", 1) < 0) || out_put(o, "\"dur\":", 6) < 0 || out_us(o, num[DUR]) < 0) return -1;
        first = 0;
    }
    if (has[ID]) {
        if ((!first && out_put(o, ",", 1) < 0) || out_put(o, "\"id\":", 5) < 0 || out_int(o, num[ID]) < 0) return -1;
        first = 0;
    }
    if (has[ARGS]) {
        if ((!first && out_put(o, ",", 1) < 0) || out_put(o, "\"args\":", 7) < 0 ||
            out_put(o, str[ARGS], (size_t)slen[ARGS]) < 0)
            return -1;
    }
    return out_put(o, "}", 1) < 0 ? -1 : 1;
}

static PyObject *chrome_render(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *rows, *fallback;
    if (!PyArg_ParseTuple(args, "OO", &rows, &fallback)) return NULL;
    PyObject *seq = PySequence_Fast(rows, "render: rows must be a sequence");
    if (!seq) return NULL;
    Out o = {0};
    PyObject *res = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PySequence_Fast_GET_ITEM(seq, i);
        if (i && out_put(&o, ",\n", 2) < 0) goto done;
        size_t at = o.len;
        int got = render_row(&o, row);
        if (got < 0) goto done;
        if (got == 0) {
            o.len = at; /* drop a partly written row */
            PyObject *b = PyTuple_Check(row) ? PyObject_Call(fallback, row, NULL) : NULL;
            if (!b) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "render: a row must be a tuple");
                goto done;
            }
            if (!PyBytes_Check(b)) {
                Py_DECREF(b);
                PyErr_SetString(PyExc_TypeError, "render: the fallback must return bytes");
                goto done;
            }
            int bad = out_put(&o, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
            Py_DECREF(b);
            if (bad < 0) goto done;
        }
    }
    res = PyBytes_FromStringAndSize(o.p ? o.p : "", (Py_ssize_t)o.len);
done:
    free(o.p);
    Py_DECREF(seq);
    return res;
}

static PyMethodDef methods[] = {
    {"render", chrome_render, METH_VARARGS,
     "render(rows, fallback) -> bytes\n\nThe Chrome-trace events of export_chrome.sql's output rows, joined by "
     "',\\n'; see the comment in _chrome.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_chrome", "Chrome-trace event writer.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__chrome(void) { return PyModule_Create(&moddef); }
