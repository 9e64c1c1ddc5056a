"""Writes tests/golden/json/bigint.json: integers past 2^53 (a tool call's
{"user_id": 1234567890123456789}) through every path where lfl handles JSON,
as the reference stack prints them; the Lua side is tests/lua/test_bigint.lua.

- json: json.loads + json.dumps of texts with big integers (and floats, which
  must keep Python's repr), plain and with sort_keys + compact separators.
- jinja: snippets that print, compare, format and compute with big integers,
  rendered by the environment transformers' apply_chat_template builds.
- chat_templates: transformers' apply_chat_template (the real qwen3 and llama3
  chat templates from ../shared/data/tokenizers) on a conversation whose tool
  call, tool result and tool schema carry big integers.
- lf: LlamaFactory's sharegpt converter and Template.encode_multiturn (a
  recording tokenizer: each slot string is one piece) on a dataset row with a
  function_call and tools holding big integers, for the qwen, llama3 and
  default templates; and its tool extractors on model output with one.
- serve_tools: json.dumps(..., ensure_ascii=False, separators=(",", ":")) of
  the function objects of a request's tools (what the server hands on).

Run by hand:  $(bash tests/ref/lf_venv.sh) tests/ref/make_bigint_goldens.py
(llamafactory, transformers and jinja2 are needed; CI reads the golden only).
"""
import copy
import datetime as _dt
import json
import os
import sys

import llamafactory
from llamafactory.data import tool_utils
from llamafactory.data.converter import get_dataset_converter
from llamafactory.data.parser import DatasetAttr
from llamafactory.data.template import TEMPLATES
from llamafactory.hparams import DataArguments
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data", "tokenizers")
OUT = os.path.join(REPO, "tests", "golden", "json", "bigint.json")

BIG = 1234567890123456789
DATE = "26 Jul 2024"


class FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2024, 7, 26, 12, 0, 0)


tool_utils.datetime = FixedDatetime  # the llama3 tool prompt carries today's date

JSON_TEXTS = [
    '{"user_id": 1234567890123456789}',
    "[9007199254740991, 9007199254740992, 9007199254740993, -9007199254740993, 18446744073709551615,"
    " 18446744073709551616, -9223372036854775808, 9223372036854775807, 123456789012345678901234567890123456789]",
    '[0, -0, 10, 999999999999999, 1000000000000000, 1234567890123456, 99999999999999999, -1]',
    '{"nested": {"ids": [1234567890123456789, {"x": -98765432109876543210}]}, "s": "1234567890123456789", "k": 7}',
    '{"a": 1.5, "b": 0.1, "c": 1e16, "d": 1.0, "e": 12345678901234567.0, "f": -2.5e-07, "g": 1e300,'
    ' "h": 123456789.123456789, "i": 1.2345678901234567e+19, "j": 5e-324}',
]

VARS = {"user_id": BIG, "small": 5, "neg": -98765432109876543210, "f": 1.5, "ids": [BIG, 3, -BIG],
        "d": {"user_id": BIG, "name": "Ann"}, "s": "12345678901234567890123"}

JINJA = [
    ("print", "{{ user_id }}|{{ user_id|string }}|{{ user_id|tojson }}|{{ d|tojson }}|{{ [user_id] }}|{{ d }}"
     "|{{ user_id ~ '!' }}|{{ neg }}|{{ ids }}"),
    ("arith", "{{ user_id + 1 }}|{{ user_id - small }}|{{ user_id * 2 }}|{{ neg // 7 }}|{{ neg % 7 }}"
     "|{{ user_id // -small }}|{{ user_id % -small }}|{{ -user_id }}|{{ user_id * user_id }}|{{ 2 ** 70 }}"
     "|{{ user_id / 2 }}|{{ user_id + f }}|{{ 9007199254740993 - 1 }}|{{ 9007199254740992 + 1 }}"
     "|{{ 4611686018427387904 * 4 }}|{{ ids|sum }}|{{ user_id|abs }}|{{ neg|abs }}"),
    ("compare", "{{ user_id == 1234567890123456789 }}|{{ user_id == 1234567890123456788 }}"
     "|{{ user_id > 1234567890123456788 }}|{{ user_id < 5 }}|{{ user_id in ids }}|{{ ids|max }}|{{ ids|min }}"
     "|{{ ids|sort }}|{{ user_id == user_id * 1 }}|{{ user_id != neg }}|{{ d.user_id == user_id }}"
     "|{{ 1152921504606846976 == 1152921504606846976.0 }}|{{ 1152921504606846977 > 1152921504606846976.0 }}"),
    ("tests_filters", "{{ user_id is integer }}|{{ user_id is number }}|{{ user_id is float }}|{{ user_id|int }}"
     "|{{ s|int + 1 }}|{{ user_id|float }}|{{ user_id|round }}|{{ neg is odd }}|{{ user_id is even }}"
     "|{{ user_id is divisibleby 3 }}|{{ user_id|string|length }}"),
    ("format", "{{ '%d %s %x %o %X %i'|format(user_id, user_id, user_id, user_id, neg, neg) }}"
     "|{{ '{:,}'.format(user_id) }}|{{ '{:>25}'.format(user_id) }}|{{ '{:#x}'.format(neg) }}"
     "|{{ '{:b}'.format(user_id) }}|{{ '{:_}'.format(neg) }}|{{ '{:+030d}'.format(user_id) }}"
     "|{{ '%30d|%-25d|'|format(user_id, neg) }}|{{ '{}'.format(d) }}|{{ '{!r}'.format(ids) }}"),
    ("literal", "{{ 12345678901234567890 }}|{{ 12_345_678_901_234_567_890 }}"
     "|{{ -12345678901234567890 }}|{{ 9007199254740993 }}"),
]

MESSAGES = [
    {"role": "user", "content": "Look up user 1234567890123456789."},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_user", "arguments": {"user_id": BIG, "shard": 3}}}]},
    {"role": "tool", "content": '{"user_id": 1234567890123456789, "name": "Ann"}'},
    {"role": "assistant", "content": "User 1234567890123456789 is Ann."},
]

TOOLS = [{"type": "function", "function": {
    "name": "get_user", "description": "Look a user up by id.",
    "parameters": {"type": "object", "properties": {
        "user_id": {"type": "integer", "description": "the user's id", "minimum": 1000000000000000000,
                    "maximum": 9223372036854775807},
        "shard": {"type": "integer", "enum": [3, 18446744073709551615]}},
        "required": ["user_id"]}}}]

# a sharegpt row as in glaive_toolcall: function_call and tools are JSON text
# (the tool without the enum: LlamaFactory's default format joins enums as str)
ROW_TOOL = copy.deepcopy(TOOLS[0]["function"])
del ROW_TOOL["parameters"]["properties"]["shard"]["enum"]
ROW = {
    "conversations": [
        {"from": "human", "value": "Who is user 1234567890123456789?"},
        {"from": "function_call",
         "value": '{"name": "get_user", "arguments": {"user_id": 1234567890123456789, "shard": 18446744073709551615}}'},
        {"from": "observation", "value": '{"user_id": 1234567890123456789, "name": "Ann"}'},
        {"from": "gpt", "value": "It is Ann."},
    ],
    "tools": json.dumps([ROW_TOOL]),
}

LF_TEMPLATES = ["qwen", "llama3", "default"]

EXTRACT = {
    "qwen": '<tool_call>\n{"name": "get_user", "arguments": {"user_id": 1234567890123456789, "shard": 3}}\n</tool_call>',
    "llama3": '{"name": "get_user", "parameters": {"user_id": 1234567890123456789}}',
    "default": 'Action: get_user\nAction Input: {"user_id": 1234567890123456789, "n": -98765432109876543210}',
}


class Recorder:
    bos_token, eos_token = "<BOS>", "<EOS>"
    bos_token_id, eos_token_id = {"special": "bos_token"}, {"special": "eos_token"}

    def encode(self, text, add_special_tokens=False):
        return [text]

    def convert_tokens_to_ids(self, tok):
        return {"token": tok}


def json_golden():
    out = []
    for text in JSON_TEXTS:
        v = json.loads(text)
        out.append({"in": text, "dumps": json.dumps(v),
                    "sorted_compact": json.dumps(v, sort_keys=True, separators=(",", ":"))})
    return out


def jinja_golden():
    out = []
    for name, src in JINJA:
        out.append({"name": name, "template": src, "out": _compile_jinja_template(src).render(**VARS)})
    return out


def chat_golden():
    out = {}
    for name in ["qwen3", "llama3", "deepseek_v3"]:
        tok = AutoTokenizer.from_pretrained(os.path.join(SHARED, name))
        kw = {"date_string": DATE} if name == "llama3" else {}
        specials = {k: v for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
        out[name] = {"out": tok.apply_chat_template(copy.deepcopy(MESSAGES), tools=TOOLS, tokenize=False, **kw),
                     "special_tokens": specials, "kwargs": kw}
    return out


def lf_golden():
    attr = DatasetAttr("file", dataset_name="bigint", formatting="sharegpt")
    attr.tools = "tools"
    conv = get_dataset_converter("sharegpt", attr, DataArguments())
    ex = conv(copy.deepcopy(ROW))
    msgs = ex["_prompt"] + ex["_response"]
    out = {"row": ROW, "templates": {}, "extract": {}}
    for name in LF_TEMPLATES:
        turns = TEMPLATES[name].encode_multiturn(Recorder(), copy.deepcopy(msgs), ex["_system"], ex["_tools"])
        out["templates"][name] = [[p, r] for p, r in turns]
    for fmt, text in EXTRACT.items():
        r = tool_utils.get_tool_utils(fmt).tool_extractor(text)
        out["extract"][fmt] = {"in": text, "calls": [{"name": c.name, "arguments": c.arguments} for c in r]}
    return out


def main():
    golden = {
        "meta": {"python": sys.version.split()[0], "llamafactory_version": llamafactory.__version__, "date": DATE},
        "json": json_golden(),
        "vars": json.dumps(VARS),
        "jinja": jinja_golden(),
        "messages": json.dumps(MESSAGES),
        "tools": json.dumps(TOOLS),
        "chat_templates": chat_golden(),
        "lf": lf_golden(),
        "serve_tools": json.dumps([t["function"] for t in TOOLS], ensure_ascii=False, separators=(",", ":")),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
