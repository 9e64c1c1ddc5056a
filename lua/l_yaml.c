/* lfl.yaml: decode(text [, name [, {schema = "pyyaml" | "omegaconf"}]]) -> Lua value.
 * Parses with libyaml and builds values as PyYAML's SafeLoader does (YAML 1.1):
 * plain scalars resolve to null (~, null, empty), booleans (yes/no/on/off/
 * true/false in three casings), integers (decimal, 0b, 0x, leading-0 octal,
 * 1:30 sexagesimal, '_' separators), floats (a dot is needed: `1e-4` stays a
 * string, `1.0e-4` is a float; .inf, .nan) and strings; quoted and block
 * scalars are strings; !!str !!int !!float !!bool !!null tags; anchors,
 * aliases (one shared table) and `<<` merge keys. Null is lfl.json.null
 * (= lfl.yaml.null) inside tables, nil for an empty or null document.
 * Integers beyond 2^53 are lfl.json.Int values, as lfl.json reads them.
 * schema "omegaconf" is the loader LlamaFactory reads recipes with
 * (OmegaConf.load): it adds OmegaConf's float rule (`1e-4`, `1E5` are floats),
 * keeps timestamps as strings and refuses a duplicate string key.
 * Timestamps (2002-12-14) are kept as their text in both schemas (PyYAML
 * builds a datetime, which Lua has no type for); !!binary, !!set, !!omap and
 * !!pairs are refused by name. Errors read "<name>:<line>:<column>: <what>". */
#include <yaml.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bridge.h"

#define YAML_MT "lfl.yaml.parser"
#define MAX_DEPTH 512
#define TAG_PREFIX "tag:yaml.org,2002:"

/* the parser and the event being read live in a userdata so that a Lua error
 * raised anywhere in a decode (a bad key, out of memory) still frees them */
/* luaL_error would prefix the caller's file:line; the message already names
 * the document and the place in it */
#define raise(L, ...) (lua_pushfstring((L), __VA_ARGS__), lua_error(L))

typedef struct {
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_parser, have_ev;
} yaml_box;

typedef struct {
    lua_State *L;
    yaml_box *box;
    const char *name;
    bool omegaconf;
    int null_idx, anchors_idx, kinds_idx; /* stack slots */
} ctx;

enum { KIND_SCALAR, KIND_SEQ, KIND_MAP };

static void box_free(yaml_box *b)
{
    if (b->have_ev) yaml_event_delete(&b->ev);
    if (b->have_parser) yaml_parser_delete(&b->parser);
    b->have_ev = b->have_parser = false;
}

static int box_gc(lua_State *L)
{
    box_free(luaL_checkudata(L, 1, YAML_MT));
    return 0;
}

static int fail_at(ctx *c, yaml_mark_t m, const char *fmt, const char *arg)
{
    char what[400];
    snprintf(what, sizeof what, fmt, arg ? arg : "");
    return raise(c->L, "%s:%d:%d: %s", c->name, (int)m.line + 1, (int)m.column + 1, what);
}

/* reads the next event into box->ev (the previous one is freed) */
static void next_event(ctx *c)
{
    yaml_box *b = c->box;
    if (b->have_ev) { yaml_event_delete(&b->ev); b->have_ev = false; }
    if (!yaml_parser_parse(&b->parser, &b->ev)) {
        yaml_parser_t *p = &b->parser;
        const char *problem = p->problem ? p->problem : "invalid YAML";
        yaml_mark_t m = p->problem_mark;
        if (p->error == YAML_READER_ERROR) {
            raise(c->L, "%s: byte %d: %s", c->name, (int)p->problem_offset, problem);
        }
        if (p->context)
            raise(c->L, "%s:%d:%d: %s %s", c->name, (int)m.line + 1, (int)m.column + 1, problem, p->context);
        raise(c->L, "%s:%d:%d: %s", c->name, (int)m.line + 1, (int)m.column + 1, problem);
    }
    b->have_ev = true;
}

/* ---- scalar resolution (PyYAML's implicit resolvers, resolver.py) ---- */

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_hex(char ch) { return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'); }

static bool eq_any(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(s, *words, n) == 0) return true;
    return false;
}

static const char *const NULLS[] = {"~", "null", "Null", "NULL", NULL};
static const char *const TRUES[] = {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL};
static const char *const FALSES[] = {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL};

/* s[i..n) is one or more chars of `ok` or '_' (a class like [0-7_]+) */
static bool run_of(const char *s, size_t i, size_t n, bool (*ok)(char))
{
    if (i >= n) return false;
    for (; i < n; i++)
        if (s[i] != '_' && !ok(s[i])) return false;
    return true;
}
static bool is_bin(char ch) { return ch == '0' || ch == '1'; }
static bool is_oct(char ch) { return ch >= '0' && ch <= '7'; }

/* ([:][0-5]?[0-9])+ from i to the end (or to a '.' when stop_dot); returns
 * the index after it, or 0 when it does not match */
static size_t sexagesimal_tail(const char *s, size_t i, size_t n, bool stop_dot)
{
    size_t groups = 0;
    while (i < n && s[i] == ':') {
        i++;
        size_t d = 0;
        while (i + d < n && is_digit(s[i + d])) d++;
        if (d == 0 || d > 2 || (d == 2 && s[i] > '5')) return 0;
        i += d;
        groups++;
    }
    if (!groups) return 0;
    if (i == n || (stop_dot && s[i] == '.')) return i;
    return 0;
}

/* [0-9][0-9_]* from i: the index after it, or 0 */
static size_t dec_run(const char *s, size_t i, size_t n)
{
    if (i >= n || !is_digit(s[i])) return 0;
    i++;
    while (i < n && (is_digit(s[i]) || s[i] == '_')) i++;
    return i;
}

static bool match_int(const char *s, size_t n)
{
    size_t i = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i >= n) return false;
    if (n - i >= 2 && s[i] == '0' && s[i + 1] == 'b') return run_of(s, i + 2, n, is_bin);
    if (n - i >= 2 && s[i] == '0' && s[i + 1] == 'x') return run_of(s, i + 2, n, is_hex);
    if (s[i] == '0') return n - i == 1 || run_of(s, i + 1, n, is_oct);
    if (s[i] < '1' || s[i] > '9') return false;
    size_t j = dec_run(s, i, n);
    if (j == n) return true;
    return sexagesimal_tail(s, j, n, false) == n;
}

/* [eE] followed by a signed (or, when sign_optional, unsigned) exponent, to the end */
static bool exponent_to_end(const char *s, size_t i, size_t n, bool sign_optional)
{
    if (i >= n || (s[i] != 'e' && s[i] != 'E')) return false;
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    else if (!sign_optional) return false;
    if (i >= n) return false;
    for (; i < n; i++)
        if (!is_digit(s[i])) return false;
    return true;
}

static bool is_inf_nan_word(const char *s, size_t n, const char *lower, const char *title, const char *upper)
{
    return (n == 3) && (memcmp(s, lower, 3) == 0 || memcmp(s, title, 3) == 0 || memcmp(s, upper, 3) == 0);
}

/* PyYAML's float rule; omegaconf adds its own alternatives (LlamaFactory's
 * loader keeps both: add_implicit_resolver appends) */
static bool match_float(const char *s, size_t n, bool omegaconf)
{
    if (!n) return false;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    bool sign = i == 1;
    if (i < n && s[i] == '.') {
        /* [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN) | \.[0-9][0-9_]*(e[-+][0-9]+)? */
        if (is_inf_nan_word(s + i + 1, n - i - 1, "inf", "Inf", "INF")) return true;
        if (sign) return false;
        if (is_inf_nan_word(s + 1, n - 1, "nan", "NaN", "NAN")) return true;
        size_t j = 1;
        if (omegaconf) { /* \.[0-9_]+ */
            if (j >= n || !(is_digit(s[j]) || s[j] == '_')) goto pyyaml_dot;
            while (j < n && (is_digit(s[j]) || s[j] == '_')) j++;
            if (j == n || exponent_to_end(s, j, n, false)) return true;
        }
    pyyaml_dot:
        j = dec_run(s, 1, n);
        if (!j) return false;
        return j == n || exponent_to_end(s, j, n, false);
    }
    size_t j = dec_run(s, i, n);
    if (!j) return false;
    if (j < n && s[j] == '.') {
        size_t k = j + 1;
        while (k < n && (is_digit(s[k]) || s[k] == '_')) k++;
        return k == n || exponent_to_end(s, k, n, omegaconf);
    }
    if (j < n && s[j] == ':') {
        size_t k = sexagesimal_tail(s, j, n, true);
        if (k && k < n && s[k] == '.') {
            k++;
            while (k < n && (is_digit(s[k]) || s[k] == '_')) k++;
            return k == n;
        }
        return false;
    }
    return omegaconf && exponent_to_end(s, j, n, true);
}

/* [0-9]{4}-[0-9]{1,2}-[0-9]{1,2} then optionally a time: PyYAML's timestamp rule */
static bool match_timestamp(const char *s, size_t n)
{
    size_t i = 0;
    for (; i < 4; i++)
        if (i >= n || !is_digit(s[i])) return false;
    for (int part = 0; part < 2; part++) {
        if (i >= n || s[i] != '-') return false;
        i++;
        size_t d = 0;
        while (i + d < n && is_digit(s[i + d]) && d < 2) d++;
        if (!d) return false;
        i += d;
    }
    if (i == n) return true;
    if (s[i] == 'T' || s[i] == 't') i++;
    else {
        size_t w = i;
        while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i == w) return false;
    }
    size_t d = 0;
    while (i + d < n && is_digit(s[i + d]) && d < 2) d++;
    if (!d) return false;
    i += d;
    for (int part = 0; part < 2; part++) {
        if (i + 3 > n || s[i] != ':' || !is_digit(s[i + 1]) || !is_digit(s[i + 2])) return false;
        i += 3;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit(s[i])) i++;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i == n) return true;
    if (s[i] == 'Z') return i + 1 == n;
    if (s[i] != '-' && s[i] != '+') return false;
    i++;
    d = 0;
    while (i + d < n && is_digit(s[i + d]) && d < 2) d++;
    if (!d) return false;
    i += d;
    if (i == n) return true;
    return i + 3 == n && s[i] == ':' && is_digit(s[i + 1]) && is_digit(s[i + 2]);
}

/* ---- numbers ---- */

/* an unsigned integer of any size: base-1e9 limbs, least significant first */
typedef struct { uint32_t *limb; size_t n, cap; } bignum;

static bool big_muladd(bignum *b, uint32_t mul, uint32_t add)
{
    uint64_t carry = add;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t v = (uint64_t)b->limb[i] * mul + carry;
        b->limb[i] = (uint32_t)(v % 1000000000u);
        carry = v / 1000000000u;
    }
    while (carry) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 4;
            uint32_t *l = realloc(b->limb, cap * sizeof *l);
            if (!l) return false;
            b->limb = l;
            b->cap = cap;
        }
        b->limb[b->n++] = (uint32_t)(carry % 1000000000u);
        carry /= 1000000000u;
    }
    return true;
}

static int digit_value(char ch)
{
    if (is_digit(ch)) return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* pushes the integer (text without '_'); false when it is not one
 * (an explicit !!int tag on text that is no integer) */
static bool push_int(ctx *c, const char *s, size_t n)
{
    lua_State *L = c->L;
    bool neg = n && s[0] == '-';
    size_t i = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i >= n) return false;
    bignum b = {0};
    bool ok = true;
    if (n - i == 1 && s[i] == '0') {
        /* zero */
    } else if (memchr(s + i, ':', n - i)) {
        /* sexagesimal: each ':' group is a base-60 digit */
        for (; i < n && ok; i++) {
            if (s[i] == ':') {
                size_t j = i + 1;
                uint32_t g = 0;
                for (; j < n && is_digit(s[j]); j++) g = g * 10 + (uint32_t)(s[j] - '0');
                ok = j > i + 1 && j - i - 1 <= 9 && big_muladd(&b, 60, g);
                i = j - 1;
            } else {
                ok = is_digit(s[i]) && big_muladd(&b, 10, (uint32_t)(s[i] - '0'));
            }
        }
    } else {
        int base = 10;
        if (n - i >= 2 && s[i] == '0' && (s[i + 1] == 'b' || s[i + 1] == 'x')) {
            base = s[i + 1] == 'b' ? 2 : 16;
            i += 2;
            ok = i < n;
        } else if (s[i] == '0') {
            base = 8;
        }
        for (; i < n && ok; i++) {
            int d = digit_value(s[i]);
            ok = d >= 0 && d < base && big_muladd(&b, (uint32_t)base, (uint32_t)d);
        }
    }
    if (!ok) { free(b.limb); return false; }
    /* decimal digits, most significant first */
    size_t cap = b.n * 9 + 3;
    char *dec = malloc(cap), *p = dec;
    if (!dec) { free(b.limb); return raise(L, "%s: out of memory", c->name); }
    if (neg && b.n) *p++ = '-';
    if (!b.n) *p++ = '0';
    for (size_t k = b.n; k-- > 0;)
        p += sprintf(p, k == b.n - 1 ? "%u" : "%09u", (unsigned)b.limb[k]);
    *p = 0;
    free(b.limb);
    size_t dn = (size_t)(p - dec);
    /* up to 2^53 every integer is exact as a double; beyond, lfl.json's Int */
    size_t digits = dn - (dec[0] == '-');
    if (digits < 16 || (digits == 16 && memcmp(dec + (dec[0] == '-'), "9007199254740992", 16) <= 0)) {
        lua_pushnumber(L, strtod(dec, NULL));
        free(dec);
        return true;
    }
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "json");
    lua_getfield(L, -1, "int");
    lua_pushlstring(L, dec, dn);
    free(dec);
    lua_call(L, 1, 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return true;
}

/* construct_yaml_float on buf (lower case, no '_', NUL-terminated); false
 * when the text is not a number */
static bool parse_float(char *buf, double *res)
{
    double sign = 1;
    char *v = buf;
    if (*v == '-') sign = -1;
    if (*v == '-' || *v == '+') v++;
    double out;
    if (strcmp(v, ".inf") == 0) out = INFINITY;
    else if (strcmp(v, ".nan") == 0) out = NAN;
    else if (strchr(v, ':')) {
        /* the groups are base-60 digits, the last may have a fraction */
        double base = 1;
        out = 0;
        char *end = v + strlen(v);
        while (end > v) {
            char *colon = end;
            while (colon > v && colon[-1] != ':') colon--;
            char save = *end, *e;
            *end = 0;
            double d = strtod(colon, &e);
            *end = save;
            if (e != end || colon == end) return false;
            out += d * base;
            base *= 60;
            end = colon > v ? colon - 1 : v;
        }
    } else {
        /* Python's float(): no hex, and inf / nan only as words */
        if (!*v || strchr(v, 'x') || strchr(v, 'p')) return false;
        if ((strchr(v, 'n') || strchr(v, 'i')) && strcmp(v, "inf") != 0 && strcmp(v, "nan") != 0 &&
            strcmp(v, "infinity") != 0)
            return false;
        char *e;
        out = strtod(v, &e);
        if (*e) return false;
    }
    *res = sign * out;
    return true;
}

static bool push_float(ctx *c, const char *s, size_t n)
{
    char *buf = malloc(n + 1);
    if (!buf) raise(c->L, "%s: out of memory", c->name);
    size_t k = 0;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '_') continue;
        if (ch == 0) ok = false; /* strtod would stop there */
        buf[k++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    buf[k] = 0;
    double v = 0;
    ok = ok && parse_float(buf, &v);
    free(buf);
    if (ok) lua_pushnumber(c->L, v);
    return ok;
}

/* ---- building values ---- */

static int build(ctx *c, int depth);

static void remember_anchor(ctx *c, const yaml_char_t *anchor)
{
    if (!anchor) return;
    lua_pushstring(c->L, (const char *)anchor);
    lua_pushvalue(c->L, -2);
    lua_rawset(c->L, c->anchors_idx);
}

static void set_kind(ctx *c, int kind)
{
    lua_pushvalue(c->L, -1);
    lua_pushinteger(c->L, kind);
    lua_rawset(c->L, c->kinds_idx);
}

/* the value at idx was built from a mapping / a sequence */
static int kind_of(ctx *c, int idx)
{
    if (!lua_istable(c->L, idx)) return KIND_SCALAR;
    lua_pushvalue(c->L, idx);
    lua_rawget(c->L, c->kinds_idx);
    int k = (int)lua_tointeger(c->L, -1);
    lua_pop(c->L, 1);
    return k;
}

typedef struct { bool merge, str; } scalar_info;

/* pushes the value of the scalar event in box->ev */
static void build_scalar(ctx *c, scalar_info *info)
{
    lua_State *L = c->L;
    yaml_event_t *e = &c->box->ev;
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    const char *tag = (const char *)e->data.scalar.tag;
    yaml_mark_t m = e->start_mark;
    info->merge = info->str = false;
    /* the non-specific tag '!' resolves as an untagged plain scalar would
     * (PyYAML's composer and libyaml both set plain_implicit for it) */
    if (tag && strcmp(tag, "!") == 0) tag = NULL;
    if (!tag && e->data.scalar.plain_implicit) {
        /* implicit resolution of plain scalars */
        if (n == 0 || eq_any(s, n, NULLS)) { lua_pushvalue(L, c->null_idx); return; }
        if (eq_any(s, n, TRUES)) { lua_pushboolean(L, 1); return; }
        if (eq_any(s, n, FALSES)) { lua_pushboolean(L, 0); return; }
        if (match_float(s, n, c->omegaconf)) { tag = TAG_PREFIX "float"; }
        else if (match_int(s, n)) { tag = TAG_PREFIX "int"; }
        else if (n == 2 && s[0] == '<' && s[1] == '<') { info->merge = true; lua_pushlstring(L, s, n); return; }
        else if (n == 1 && s[0] == '=') {
            fail_at(c, m, "could not determine a constructor for the tag 'tag:yaml.org,2002:value' (a plain '=')", NULL);
        } else if (!c->omegaconf && match_timestamp(s, n)) {
            /* a datetime in PyYAML; kept as its text here */
        }
    }
    if (!tag || strcmp(tag, TAG_PREFIX "str") == 0 || strcmp(tag, TAG_PREFIX "timestamp") == 0) {
        if (tag && strcmp(tag, TAG_PREFIX "timestamp") == 0 && !match_timestamp(s, n))
            fail_at(c, m, "!!timestamp: the value is not a timestamp", NULL);
        info->str = !tag || strcmp(tag, TAG_PREFIX "str") == 0;
        lua_pushlstring(L, s, n);
        return;
    }
    if (strcmp(tag, TAG_PREFIX "null") == 0) { lua_pushvalue(L, c->null_idx); return; }
    if (strcmp(tag, TAG_PREFIX "bool") == 0) {
        char low[8] = {0};
        for (size_t i = 0; i < n && i < 7; i++) low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
        static const char *const T[] = {"yes", "true", "on", NULL}, *const F[] = {"no", "false", "off", NULL};
        if (n < 7 && eq_any(low, n, T)) { lua_pushboolean(L, 1); return; }
        if (n < 7 && eq_any(low, n, F)) { lua_pushboolean(L, 0); return; }
        fail_at(c, m, "!!bool: the value is not a boolean (yes/no, true/false, on/off)", NULL);
    }
    if (strcmp(tag, TAG_PREFIX "int") == 0 || strcmp(tag, TAG_PREFIX "float") == 0) {
        bool is_int = tag[sizeof TAG_PREFIX - 1] == 'i';
        char *clean = malloc(n + 1);
        if (!clean) raise(L, "%s: out of memory", c->name);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] != '_') clean[k++] = s[i];
        clean[k] = 0;
        bool ok = is_int ? push_int(c, clean, k) : push_float(c, s, n);
        free(clean);
        if (!ok) fail_at(c, m, is_int ? "!!int: the value is not an integer" : "!!float: the value is not a number", NULL);
        return;
    }
    fail_at(c, m, "the tag '%s' is not supported (lfl reads YAML's core types: strings, numbers, booleans, null, "
                  "sequences and mappings)", tag);
}

/* the tag of a collection must be absent, '!' or its own kind */
static void check_collection_tag(ctx *c, const yaml_char_t *tag, const char *kind)
{
    if (!tag || strcmp((const char *)tag, "!") == 0) return;
    char own[64];
    snprintf(own, sizeof own, TAG_PREFIX "%s", kind);
    if (strcmp((const char *)tag, own) != 0)
        fail_at(c, c->box->ev.start_mark, "the tag '%s' is not supported here", (const char *)tag);
}

static void build_sequence(ctx *c, int depth)
{
    lua_State *L = c->L;
    check_collection_tag(c, c->box->ev.data.sequence_start.tag, "seq");
    lua_newtable(L);
    set_kind(c, KIND_SEQ);
    remember_anchor(c, c->box->ev.data.sequence_start.anchor);
    for (int i = 1;; i++) {
        next_event(c);
        if (c->box->ev.type == YAML_SEQUENCE_END_EVENT) break;
        build(c, depth + 1);
        lua_rawseti(L, -2, i);
    }
}

/* applies the `<<` sources (a table at srcs_idx, in PyYAML's merge order:
 * later wins) under the keys the mapping at -1 sets itself */
static void apply_merges(ctx *c, int srcs_idx)
{
    lua_State *L = c->L;
    int map = lua_gettop(L);
    for (int i = (int)lua_objlen(L, srcs_idx); i >= 1; i--) {
        lua_rawgeti(L, srcs_idx, i);
        int src = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, src)) {
            lua_pushvalue(L, -2);
            lua_rawget(L, map);
            bool set = !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (!set) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, map);
            } else {
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
}

/* adds the merge value at -1 (a mapping or a sequence of mappings) to the
 * sources table at srcs_idx, then pops it */
static void add_merge(ctx *c, int srcs_idx, yaml_mark_t m)
{
    lua_State *L = c->L;
    int v = lua_gettop(L);
    int kind = kind_of(c, v);
    if (kind == KIND_MAP) {
        lua_rawseti(L, srcs_idx, (int)lua_objlen(L, srcs_idx) + 1);
        return;
    }
    if (kind != KIND_SEQ) fail_at(c, m, "expected a mapping or list of mappings for merging ('<<')", NULL);
    /* PyYAML reverses the list: the first mapping named wins */
    for (int i = (int)lua_objlen(L, v); i >= 1; i--) {
        lua_rawgeti(L, v, i);
        if (kind_of(c, -1) != KIND_MAP) fail_at(c, m, "expected a mapping for merging ('<<'), found another value", NULL);
        lua_rawseti(L, srcs_idx, (int)lua_objlen(L, srcs_idx) + 1);
    }
    lua_pop(L, 1);
}

/* " 'name'" for a key of name characters (what recipes have), "" for other
 * text: the message names the place, and arbitrary text in it could read as
 * something else (a Lua runtime error's words) */
static const char *simple_key(lua_State *L, int idx)
{
    size_t n;
    const char *k = lua_tolstring(L, idx, &n);
    if (!k || n == 0 || n > 64) return "";
    for (size_t i = 0; i < n; i++) {
        char ch = k[i];
        if (!(is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-' ||
              ch == '.'))
            return "";
    }
    lua_pushfstring(L, " '%s'", k);
    return lua_tostring(L, -1);
}

static void build_mapping(ctx *c, int depth)
{
    lua_State *L = c->L;
    check_collection_tag(c, c->box->ev.data.mapping_start.tag, "map");
    lua_newtable(L);
    int map = lua_gettop(L);
    set_kind(c, KIND_MAP);
    remember_anchor(c, c->box->ev.data.mapping_start.anchor);
    lua_newtable(L); /* the string keys seen (duplicates: omegaconf) */
    int seen = lua_gettop(L);
    lua_newtable(L); /* the `<<` sources */
    int srcs = lua_gettop(L);
    for (;;) {
        next_event(c);
        if (c->box->ev.type == YAML_MAPPING_END_EVENT) break;
        yaml_mark_t km = c->box->ev.start_mark;
        scalar_info ki = {false, false};
        if (c->box->ev.type == YAML_SCALAR_EVENT) {
            build_scalar(c, &ki);
            remember_anchor(c, c->box->ev.data.scalar.anchor);
        } else {
            build(c, depth + 1);
        }
        int key = lua_gettop(L);
        if (lua_istable(L, key) && kind_of(c, key) != KIND_SCALAR)
            fail_at(c, km, "found unhashable key (a mapping or a sequence)", NULL);
        if (lua_rawequal(L, key, c->null_idx)) fail_at(c, km, "a null mapping key is not supported", NULL);
        if (lua_type(L, key) == LUA_TNUMBER && lua_tonumber(L, key) != lua_tonumber(L, key))
            fail_at(c, km, "a NaN mapping key is not supported", NULL);
        if (c->omegaconf && ki.str) {
            lua_pushvalue(L, key);
            lua_rawget(L, seen);
            if (!lua_isnil(L, -1)) fail_at(c, km, "found duplicate key%s", simple_key(L, key));
            lua_pop(L, 1);
            lua_pushvalue(L, key);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
        }
        next_event(c);
        yaml_mark_t vm = c->box->ev.start_mark;
        build(c, depth + 1);
        if (ki.merge) {
            add_merge(c, srcs, vm); /* pops the value */
            lua_pop(L, 1);          /* the key "<<" is not kept */
        } else {
            lua_rawset(L, map);
        }
    }
    if (lua_objlen(L, srcs)) {
        lua_pushvalue(L, map);
        apply_merges(c, srcs);
        lua_pop(L, 1);
    }
    lua_pop(L, 2); /* srcs, seen */
}

/* pushes the value of the node whose first event is in box->ev */
static int build(ctx *c, int depth)
{
    lua_State *L = c->L;
    yaml_event_t *e = &c->box->ev;
    if (depth > MAX_DEPTH) fail_at(c, e->start_mark, "nesting deeper than %s levels", "512");
    if (!lua_checkstack(L, 16)) raise(L, "%s: out of Lua stack", c->name);
    switch (e->type) {
    case YAML_ALIAS_EVENT:
        lua_pushstring(L, (const char *)e->data.alias.anchor);
        lua_rawget(L, c->anchors_idx);
        if (lua_isnil(L, -1)) fail_at(c, e->start_mark, "found undefined alias '%s'", (const char *)e->data.alias.anchor);
        return KIND_SCALAR;
    case YAML_SCALAR_EVENT: {
        scalar_info info;
        build_scalar(c, &info);
        remember_anchor(c, e->data.scalar.anchor);
        return KIND_SCALAR;
    }
    case YAML_SEQUENCE_START_EVENT:
        build_sequence(c, depth);
        return KIND_SEQ;
    case YAML_MAPPING_START_EVENT:
        build_mapping(c, depth);
        return KIND_MAP;
    default:
        return fail_at(c, e->start_mark, "unexpected YAML event", NULL);
    }
}

static int l_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    ctx c = {.L = L, .name = luaL_optstring(L, 2, "yaml")};
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "schema");
        const char *schema = luaL_optstring(L, -1, "pyyaml");
        if (strcmp(schema, "omegaconf") == 0) c.omegaconf = true;
        else if (strcmp(schema, "pyyaml") != 0)
            return raise(L, "lfl.yaml.decode: schema must be \"pyyaml\" or \"omegaconf\", got \"%s\"", schema);
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "json");
    lua_getfield(L, -1, "null");
    lua_replace(L, -3);
    lua_pop(L, 1);
    c.null_idx = lua_gettop(L);
    lua_newtable(L);
    c.anchors_idx = lua_gettop(L);
    lua_newtable(L);
    c.kinds_idx = lua_gettop(L);
    c.box = lua_newuserdata(L, sizeof(yaml_box));
    memset(c.box, 0, sizeof *c.box);
    luaL_getmetatable(L, YAML_MT);
    lua_setmetatable(L, -2);
    if (!yaml_parser_initialize(&c.box->parser)) return raise(L, "%s: cannot start the YAML parser", c.name);
    c.box->have_parser = true;
    yaml_parser_set_input_string(&c.box->parser, (const unsigned char *)s, n);
    next_event(&c); /* stream start */
    next_event(&c);
    if (c.box->ev.type == YAML_STREAM_END_EVENT) {
        lua_pushnil(L);
    } else {
        /* document start, the root node, document end */
        next_event(&c);
        build(&c, 0);
        if (lua_rawequal(L, -1, c.null_idx)) { /* a null document */
            lua_pop(L, 1);
            lua_pushnil(L);
        }
        next_event(&c);
        next_event(&c);
        if (c.box->ev.type != YAML_STREAM_END_EVENT)
            fail_at(&c, c.box->ev.start_mark, "expected a single document in the stream, but found another document",
                    NULL);
    }
    box_free(c.box);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"decode", l_decode},
    {NULL, NULL},
};

/* runs after lfl.json's module (link order: l_json.c sorts first), whose
 * null this module shares */
LFL_LUA_MODULE(yaml)
{
    luaL_newmetatable(L, YAML_MT);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lfl_lua_register_funcs(L, "yaml", funcs);
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "yaml");
    lua_getfield(L, -2, "json");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "null");
        lua_setfield(L, -3, "null");
    }
    lua_pop(L, 3);
}
