"""Writes tests/golden/templates/jinja_fidelity.json: Jinja snippets where a
Python-faithful interpreter has to get details right that chat templates reach
(tojson and printing of dicts/lists, case mapping of non-ASCII text, str.format
and %-formatting specs, the slice/groupby/urlencode/wordcount filters, dict()).

Each case is rendered by the environment transformers' apply_chat_template
builds (transformers.utils.chat_template_utils._compile_jinja_template:
ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, the loopcontrols
extension and transformers' tojson/raise_exception/strftime_now). Printing a
list or dict uses Python's repr, so the escapes follow str.isprintable under
this Python's Unicode version (pick characters assigned long ago: lfl's
utf8proc may know a newer Unicode than the Python that wrote the golden).
When jinja2 raises, the error is recorded instead of the output.

Run by hand:  $(bash tests/ref/venv.sh) tests/ref/make_jinja_goldens.py
(only jinja2 and transformers are needed)
"""
import json
import os
import random
import sys
import unicodedata

from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "tests", "golden", "templates", "jinja_fidelity.json")

# strings whose repr() escapes: Cf (zero-width space/joiner, soft hyphen, BOM),
# Zs (no-break and ideographic space), Zl/Zp, Co (private use), Cn
# (unassigned), Cc (DEL, C1 controls); and some that print as they are
ESCAPED = ["a\u200bb", "zw\u200dj", "nb\xa0sp", "soft\xadhyphen", "line\u2028sep", "para\u2029sep",
           "pua\ue000", "pua15\U000f0001", "unassigned\u0378", "del\x7f", "c1\x85\x9f", "bom\ufeff",
           "ideo\u3000sp", "lrm\u200e", "tag\U000e0041"]
PRINTED = ["caf\xe9", "\u65e5\u672c", "smile\U0001f600", "ko\uac00", "it's", 'say "hi"', "both ' and \"",
           "tab\there", "nl\nx", "back\\slash", "combining e\u0301"]
CASE_WORDS = ["stra\xdfe", "\u01c6emo", "\u039f\u0394\u039f\u03a3 \u0391\u03a3. \u03a3", "\u0130stanbul",
              "\ufb01x \ufb02y", "\u0149", "\u24b6\u24d1", "\u01c8ub", "\u0400\u0442\u0435\u0441\u0442",
              "\u0531\u0532\u0563", "\u13a0\uab70", "\U00010400\U00010428", "\u01f0", "\u1fb3\u1f80",
              "\u1e9e\u1e9e", "mixed Stra\xdfe \u0130I i\u0131"]

USERS = [{"name": "ann", "city": "Paris", "age": 30}, {"name": "bob", "city": "berlin", "age": 25},
         {"name": "cy", "city": "paris", "age": 41}, {"name": "dee", "city": "Berlin", "age": 25},
         {"name": "eve", "city": "Rome", "tags": {"team": "a"}}]

CASES = [
    # ---- repr escapes in printed lists / dicts
    ("repr.escaped_list", "{{ xs }}", {"xs": ESCAPED}),
    ("repr.printed_list", "{{ xs }}", {"xs": PRINTED}),
    ("repr.dict", "{{ d }}", {"d": {"k\u200b": "v\xa0", "\u2028": ["\ue000", 1, None, True, 2.5]}}),
    ("repr.percent_r", "{{ '%r' % s }}", {"s": "zw\u200b\xad"}),
    ("repr.string_filter", "{{ xs|string }}", {"xs": ["a\u2029", "\U000e0041"]}),
    ("repr.tuple", "{{ ('\u200b', 'x') }}", {}),
    ("repr.items", "{{ d.items()|list }}", {"d": {"a\xa0": "\u200d"}}),
    ("repr.json_del", "{{ s }}|{{ s|tojson }}|{{ [s] }}", {"s": "a\x7fb"}),
    # ---- case mapping (str methods and filters)
    ("case.upper", "{% for w in ws %}{{ w.upper() }}|{{ w|upper }};{% endfor %}", {"ws": CASE_WORDS}),
    ("case.lower", "{% for w in ws %}{{ w.lower() }}|{{ w|lower }};{% endfor %}", {"ws": CASE_WORDS}),
    ("case.title", "{% for w in ws %}{{ w.title() }}|{{ w|title }};{% endfor %}", {"ws": CASE_WORDS}),
    ("case.capitalize", "{% for w in ws %}{{ w.capitalize() }}|{{ w|capitalize }};{% endfor %}",
     {"ws": CASE_WORDS}),
    ("case.swapcase", "{% for w in ws %}{{ w.swapcase() }};{% endfor %}", {"ws": CASE_WORDS}),
    ("case.casefold", "{% for w in ws %}{{ w.casefold() }};{% endfor %}", {"ws": CASE_WORDS}),
    ("case.sort_ignores_case", "{{ ws|sort|join(',') }}", {"ws": ["\xc9cole", "\xe9t\xe9", "Zebra", "apple"]}),
    ("case.predicates", "{% for w in ws %}{{ w.isalpha() }}{{ w.isalnum() }}{{ w.isdecimal() }}{{ w.isdigit() }}"
     "{{ w.isnumeric() }}{{ w.islower() }}{{ w.isupper() }}{{ w.isspace() }}{{ w is lower }}{{ w is upper }};{% endfor %}",
     {"ws": ["abc", "caf\xe9", "\u65e5\u672c", "\u0663\u0664", "\xb2", "\u2460", "\xbd", "\u4e07\u5341", "\u2167",
             "\xaa", "\u01c5", "\u03a3\u0391", "\u24b6", "\u24d0", "Ab", "a1", "\u0301", "", " \xa0\u3000",
             "ABC \xc9", "abc \xe9\u0131", "x\u0301"]}),
    # ---- str.format
    ("format.fixed", "{{ '{:.2f}'.format(x) }}|{{ '{:.0f}'.format(2.5) }}|{{ '{:8.3f}|'.format(-x) }}",
     {"x": 3.14159}),
    ("format.thousands", "{{ '{:,}'.format(1234567) }}|{{ '{:,}'.format(-987654321) }}|{{ '{:_}'.format(1234567) }}"
     "|{{ '{:,.2f}'.format(1234567.891) }}|{{ '{:,}'.format(12) }}", {}),
    ("format.zero_grouped", "{{ '{:010,}'.format(1234) }}|{{ '{:08,}'.format(1234) }}|{{ '{:+011,.1f}'.format(-1234.5) }}"
     "|{{ '{:#012_x}'.format(65535) }}|{{ '{:>10,}'.format(1234) }}|{{ '{:,}'.format(1234.5) }}", {}),
    ("format.hex", "{{ '{:x}'.format(255) }}|{{ '{:X}'.format(255) }}|{{ '{:#x}'.format(255) }}|{{ '{:o}'.format(8) }}"
     "|{{ '{:b}'.format(5) }}|{{ '{:x}'.format(-255) }}|{{ '{:04x}'.format(10) }}|{{ '{:#06b}'.format(5) }}", {}),
    ("format.conversion", "{{ '{!r}'.format('a') }}|{{ '{!r}'.format(xs) }}|{{ '{!s}'.format(none) }}"
     "|{{ '{0!r:>6}'.format('b') }}|{{ '{!r}'.format('\u200b') }}", {"xs": [1, "x"]}),
    ("format.index", "{{ '{0[0]}-{0[1]}'.format(xs) }}|{{ '{0[a]}'.format(d) }}|{{ '{1[0]}{0}'.format('z', 'yx') }}"
     "|{{ '{p[name]}'.format(p=d) }}", {"xs": [5, 6], "d": {"a": 1, "name": "n"}}),
    ("format.align", "{{ '{:>8}|{:<6}|{:^7}|{:*^9}|{:=+6}'.format('r', 'l', 'c', 'mid', 42) }}", {}),
    ("format.sign", "{{ '{:+d}'.format(5) }}|{{ '{:+d}'.format(-5) }}|{{ '{: d}'.format(5) }}|{{ '{:+.1f}'.format(2.25) }}"
     "|{{ '{:08.3f}'.format(-3.14159) }}|{{ '{:d}'.format(7) }}", {}),
    ("format.general", "{{ '{:e}'.format(12345.678) }}|{{ '{:.2e}'.format(0.000123) }}|{{ '{:g}'.format(0.0001) }}"
     "|{{ '{:g}'.format(1234567.0) }}|{{ '{:.1%}'.format(0.256) }}|{{ '{}'.format(1.0) }}|{{ '{:.3}'.format('abcdef') }}"
     "|{{ '{:10}|'.format('ab') }}|{{ '{:5}|'.format(42) }}|{{ '{{}}{}'.format(1) }}", {}),
    # ---- %-formatting
    ("percent.sign", "{{ '%+d' % 5 }}|{{ '%+d' % -5 }}|{{ '% d' % 5 }}|{{ '%+.2f' % 3.14159 }}|{{ '%+05d' % 42 }}", {}),
    ("percent.width", "{{ '%05d' % 42 }}|{{ '%-5d|' % 42 }}|{{ '%5s|' % 'ab' }}|{{ '%-5s|' % 'ab' }}|{{ '%.3s' % 'abcdef' }}"
     "|{{ '%5.1f' % 2.25 }}|{{ '%*d' % (4, 7) if false else '' }}", {}),
    ("percent.conversions", "{{ '%x %X %#x %o %#o' % (255, 255, 255, 8, 8) }}|{{ '%e' % 12345.678 }}|{{ '%g' % 0.00001 }}"
     "|{{ '%c' % 65 }}|{{ '%r' % 'a' }}|{{ '%i%%' % 50 }}|{{ '%d' % 3.7 }}|{{ '%s' % (xs,) }}", {"xs": [1, 2]}),
    ("percent.mapping", "{{ '%(a)s-%(b)03d' % {'a': 'x', 'b': 2} }}", {}),
    ("format.errors.d_on_float", "{{ '{:d}'.format(1.5) }}", {}),
    ("format.errors.mixed_numbering", "{{ '{0}{}'.format(1, 2) }}", {}),
    ("format.errors.single_brace", "{{ '}'.format(1) }}", {}),
    ("format.errors.none_with_spec", "{{ '{:>5}'.format(none) }}", {}),
    ("format.nested_spec", "{{ '{:{w}}|{:>{n}.{p}f}'.format('a', 3.14159, w=4, n=8, p=2) }}|{{ '{!a}'.format('\xe9') }}", {}),
    ("percent.errors.x_on_float", "{{ '%x' % 1.5 }}", {}),
    ("percent.errors.too_many", "{{ '%d' % (1, 2) }}", {}),
    # ---- filters
    ("filter.slice", "{{ xs|slice(3)|list }}|{{ xs|slice(3, 'x')|list }}|{{ xs|slice(2)|list }}|{{ xs[:2]|slice(4)|list }}"
     "|{% for col in xs|slice(3) %}[{{ col|join(',') }}]{% endfor %}", {"xs": [1, 2, 3, 4, 5, 6, 7]}),
    ("filter.groupby", "{% for g in users|groupby('city') %}{{ g.grouper }}: {{ g.list|map(attribute='name')|join(',') }};"
     "{% endfor %}", {"users": USERS}),
    ("filter.groupby_unpack", "{% for city, items in users|groupby('city', case_sensitive=true) %}{{ city }}={{ items|length }};"
     "{% endfor %}", {"users": USERS}),
    ("filter.groupby_repr", "{{ users|groupby('age', default=0) }}", {"users": USERS}),
    ("filter.groupby_dotted", "{% for g in users|groupby('tags.team', default='none') %}{{ g.grouper }}:{{ g.list|length }};"
     "{% endfor %}|{% for k, v in pairs|groupby(0) %}{{ k }}{{ v|map('last')|join }};{% endfor %}",
     {"users": USERS, "pairs": [["b", 1], ["a", 2], ["b", 3]]}),
    ("filter.urlencode", "{{ 'a b&c/d?e=f'|urlencode }}|{{ d|urlencode }}|{{ pairs|urlencode }}|{{ 'h\xe9llo \u65e5'|urlencode }}"
     "|{{ '~._-'|urlencode }}|{{ 42|urlencode }}",
     {"d": {"q": "x y/z", "n": 1, "e": "\xe9"}, "pairs": [["a", "b c"], ["d&", 2]]}),
    ("filter.wordcount", "{{ a|wordcount }}|{{ b|wordcount }}|{{ c|wordcount }}|{{ d|wordcount }}|{{ e|wordcount }}",
     {"a": "h\xe9llo \u2014 w\xf6rld \u3002 \u65e5\u672c\u8a9e x_y 3.5", "b": "a\xa0b\u3000c", "c": "x\u0301y",
      "d": "\u00bd \u2167 \u0661\u0662", "e": "\u2014\u2014 -- !!"}),
    # ---- dict()
    ("global.dict", "{{ dict(d, k=1) }}|{{ dict(d, a=5) }}|{{ dict(a=1, b=2) }}|{{ dict(pairs) }}|{{ dict() }}"
     "|{{ dict(pairs, x=0) }}|{{ dict(d) is mapping }}",
     {"d": {"a": 1, "b": 2}, "pairs": [["x", 1], ["y", 2]]}),
    ("global.dict_errors.bad_pair", "{{ dict([[1, 2, 3]]) }}", {}),
    ("global.dict_errors.two_args", "{{ dict({}, {}) }}", {}),
]


# format()/% specs sampled at random (fixed seed) over values that JSON keeps
# (ints, floats, str): each rendered by the environment through str.format /
# the % operator, so the Lua side walks the whole mini-language
MATRIX_VALUES = [0, 1, -1, 7, 42, -42, 255, 1234567, -987654321, 123456789012, 0.0, -0.0, 1.5, -2.25, 3.14159,
                 1234567.891, 1e-07, 1e20, 2.5, 0.125, 1e16, 0.0001, 99.99, 0.1, "ab", "h\xe9llo", ""]


def format_matrix(n_format=360, n_percent=180):
    rng = random.Random(20240611)
    cases = []
    for _ in range(n_format):
        align = rng.choice(["", "<", ">", "^", "="])
        fill = rng.choice(["", "*", "0", "\xe9"]) if align else ""
        spec = (fill + align + rng.choice(["", "+", "-", " "]) + rng.choice(["", "#"]) + rng.choice(["", "0"])
                + rng.choice(["", "1", "6", "12"]) + rng.choice(["", ",", "_"]) + rng.choice(["", ".0", ".1", ".3", ".10"])
                + rng.choice(["", "d", "b", "o", "x", "X", "e", "E", "f", "F", "g", "G", "%", "s", "c", "n"]))
        cases.append({"kind": "format", "spec": spec, "value": rng.choice(MATRIX_VALUES)})
    for _ in range(n_percent):
        flags = "".join(rng.sample(["-", "+", " ", "#", "0"], rng.randint(0, 2)))
        spec = ("%" + flags + rng.choice(["", "1", "6", "12"]) + rng.choice(["", ".0", ".2", ".5"])
                + rng.choice(list("sdixXoeEfFgGrc")))
        cases.append({"kind": "percent", "spec": spec, "value": rng.choice(MATRIX_VALUES)})
    fmt_t = _compile_jinja_template("{{ ('{:' ~ spec ~ '}').format(value) }}")
    pct_t = _compile_jinja_template("{{ spec % (value,) }}")
    for c in cases:
        try:
            c["out"] = (fmt_t if c["kind"] == "format" else pct_t).render(spec=c["spec"], value=c["value"])
        except Exception as e:  # noqa: BLE001
            c["error"] = f"{type(e).__name__}: {e}"
    return cases


def render(src, ctx):
    try:
        return {"out": _compile_jinja_template(src).render(**ctx)}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    cases = []
    names = set()
    for name, src, ctx in CASES:
        assert name not in names, name
        names.add(name)
        rec = {"name": name, "template": src, "context": ctx}
        rec.update(render(src, ctx))
        cases.append(rec)
        print(f"{name}: {'raises ' + rec['error'] if 'error' in rec else repr(rec['out'])[:100]}")
    matrix = format_matrix()
    print(f"format matrix: {len(matrix)} specs, {sum(1 for c in matrix if 'error' in c)} raise")
    doc = {"python": sys.version.split()[0], "unicode": unicodedata.unidata_version, "cases": cases,
           "format_matrix": matrix}
    tmp = OUT + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        # the matrix one case a line, to keep the file small and its diffs readable
        head = json.dumps({k: v for k, v in doc.items() if k != "format_matrix"}, ensure_ascii=False, indent=1)
        f.write(head[:-2] + ',\n "format_matrix": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in matrix))
        f.write("\n ]\n}\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
