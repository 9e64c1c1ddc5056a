"""Writes recipes/templates/<name>.lua for every chat template the installed
`llamafactory` package registers (llamafactory.data.template.TEMPLATES) that
has no recipe yet, from LlamaFactory's own definition: the fields a recipe
leaves out are the ones lfl.text.template.new derives the same way
register_template does. Existing recipes are left alone (pass names to
rewrite them). The model family line of each header comes from FAMILIES
below; the rest of the header (template class, tool format, multimodal
plugin) is read from the definition. tests/ref/make_lf_template_goldens.py
then records LlamaFactory's encodings for every recipe and
tests/lua/test_templates.lua checks the two agree.

Run by hand:  $(bash tests/ref/lf_venv.sh) tests/ref/make_lf_template_recipes.py [name ...]
"""
import dataclasses
import os
import sys

from llamafactory.data import template as lf_template
from llamafactory.data.formatter import EmptyFormatter, FunctionFormatter, StringFormatter, ToolFormatter
from llamafactory.data.mm_plugin import PLUGINS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DIR = os.path.join(REPO, "recipes", "templates")

FAMILIES = {
    "aeva": "Aeva (by Zongzhi Lou), on glm4_7's strings",
    "bailing": "Ling / Bailing v1 (inclusionAI)",
    "bailing_v2": "Ling / Ring 2.0 (inclusionAI), turns closed by <|role_end|>",
    "breeze": "Breeze (MediaTek Research) [INST] turns",
    "chatglm3": "ChatGLM3: role markers emitted by token id",
    "chatml_de": "ChatML with a German default system prompt",
    "cpm4": "MiniCPM4: ChatML after BOS",
    "dbrx": "DBRX Instruct: ChatML with Databricks' default system prompt",
    "deepseekcoder": "DeepSeek-Coder instruct: ### Instruction / ### Response",
    "dots_ocr": "dots.ocr (rednote): <|user|> / <|assistant|> turns",
    "ernie": "ERNIE 4.5 (thinking): ChatML-like turns with blank lines, think_mode in the default system",
    "ernie_nothink": "ERNIE 4.5 (no thinking): User: / Assistant: turns",
    "ernie_vl": "ERNIE 4.5 VL: User: / Assistant: turns",
    "exaone": "EXAONE 3.x (LG AI): [|user|] / [|assistant|] turns",
    "falcon": "Falcon (first generation): User: / Falcon: turns",
    "falcon_h1": "Falcon-H1: ChatML after BOS",
    "fewshot": "few-shot prompts (the MMLU-style evaluator): answers end with a blank line",
    "gemma3": "Gemma 3: gemma's turns",
    "gemma3n": "Gemma 3n: gemma's turns",
    "gemma4": "Gemma 4: <|turn> turns, <|think|> in the system turn",
    "gemma4n": "Gemma 4 (audio variant): <|turn> turns, <|think|> in the system turn",
    "glm4_5v": "GLM-4.5V: glm4's turns",
    "glm4_7": "GLM-4.7: glm4's turns, <think></think> thought words",
    "glm4_moe": "GLM-4.5 / 4.6 (MoE): glm4's turns",
    "glm4v": "GLM-4.1V-Thinking: glm4's turns, </answer> as a stop word",
    "glm_ocr": "GLM-OCR: glm4's turns",
    "glmz1": "GLM-Z1: glm4's turns",
    "gpt_oss": "gpt-oss (harmony format): the analysis channel is the thought",
    "granite3": "Granite 3.x (IBM): <|start_of_role|> turns",
    "granite3_vision": "Granite 3.x Vision (IBM): <|user|> / <|assistant|> turns",
    "granite4": "Granite 4 (IBM): granite3's turns with tool calls and IBM's default system",
    "hunyuan": "Hunyuan-Large (Tencent): <|extra_0|> turn ends",
    "hunyuan_small": "Hunyuan dense 0.5B-7B (Tencent): <｜hy_User｜> turns",
    "hy3": "Hunyuan 3 (Tencent): <｜hy_User｜> / <｜hy_Assistant｜> turns, <think></think> thought words",
    "index": "Index-1.9B (bilibili): reserved_0 / reserved_1 turns",
    "intern2": "InternLM2 / 2.5 chat: ChatML after BOS with InternLM's default system",
    "intern_s1": "Intern-S1: ChatML after BOS",
    "intern_vl": "InternVL 2.5 / 3: ChatML after BOS with a Chinese default system",
    "keye_vl": "Kwai Keye-VL: qwen's strings",
    "kimi_vl": "Kimi-VL (Moonshot AI): <|im_user|> turns, ◁think▷ thought words",
    "lfm2": "LFM2 / LFM2.5 (Liquid AI): ChatML with Pythonic tool calls",
    "lfm2_vl": "LFM2-VL (Liquid AI): lfm2's strings",
    "llama4": "Llama 4: <|header_start|> headers",
    "llava": "LLaVA 1.5: vicuna's strings",
    "llava_next": "LLaVA-NeXT (Vicuna base): vicuna's strings",
    "llava_next_llama3": "LLaVA-NeXT on Llama 3: llama3's strings",
    "llava_next_mistral": "LLaVA-NeXT on Mistral: mistral's strings",
    "llava_next_qwen": "LLaVA-NeXT on Qwen: qwen's strings",
    "llava_next_video": "LLaVA-NeXT-Video (Vicuna base): vicuna's strings",
    "llava_next_video_mistral": "LLaVA-NeXT-Video on Mistral: mistral's strings",
    "llava_next_video_yi": "LLaVA-NeXT-Video on Yi: ChatML",
    "llava_next_yi": "LLaVA-NeXT on Yi: ChatML",
    "mimo": "MiMo (Xiaomi): qwen's strings",
    "mimo_v2": "MiMo-V2 (Xiaomi): qwen's strings, <think></think> thought words",
    "mimo_vl": "MiMo-VL (Xiaomi): qwen's strings",
    "minicpm_o": "MiniCPM-o 2.6: ChatML",
    "minicpm_v": "MiniCPM-V 2.6: ChatML",
    "minicpm_v_4_6": "MiniCPM-V 4.6: ChatML",
    "minimax1": "MiniMax-M1 / Text-01: <beginning_of_sentence> turns",
    "minimax2": "MiniMax-M2 / M2.1: ]~b] turns",
    "ministral3": "Ministral 3 (Mistral tokenizer v3 tekken) with its [IMG] image token",
    "mistral_small": "Mistral Small 3.1+: [SYSTEM_PROMPT] and [INST] without spaces",
    "mllama": "Llama 3.2 Vision: llama3's strings",
    "moonlight": "Moonlight (Moonshot AI): <|im_user|> turns",
    "olmo": "OLMo 1 / 2: <|user|> / <|assistant|> turns after EOS",
    "openchat": "OpenChat 3.5: GPT4 Correct User / Assistant turns",
    "openchat-3.6": "OpenChat 3.6: GPT4 Correct roles in Llama 3 headers",
    "opencoder": "OpenCoder: ChatML with its default system",
    "paligemma": "PaliGemma (pretrained): the prompt on one line",
    "paligemma_chat": "PaliGemma (chat): gemma's turns",
    "phi4_mini": "Phi-4-mini: <|user|> / <|assistant|> turns, tools in <|tool|>",
    "phi_small": "Phi-3-small: phi's strings",
    "pixtral": "Pixtral: [INST] turns",
    "qwen2_audio": "Qwen2-Audio: ChatML",
    "qwen2_omni": "Qwen2.5-Omni: qwen's strings",
    "qwen2_vl": "Qwen2-VL / Qwen2.5-VL: qwen's strings",
    "qwen3_5": "Qwen3.5 (thinking): qwen3's strings, XML tool calls",
    "qwen3_5_nothink": "Qwen3.5 (no thinking): qwen3's strings, XML tool calls",
    "qwen3_6": "Qwen3.6: qwen3_5's strings",
    "qwen3_omni": "Qwen3-Omni (thinking): qwen3's strings",
    "qwen3_omni_nothink": "Qwen3-Omni (instruct): qwen3's strings",
    "qwen3_vl": "Qwen3-VL (thinking): qwen3's strings",
    "qwen3_vl_nothink": "Qwen3-VL (instruct): qwen3's strings",
    "sailor": "Sailor (Sea AI Lab): ChatML with question / answer roles",
    "seed_coder": "Seed-Coder (ByteDance): role turns between BOS and EOS",
    "seed_oss": "Seed-OSS (ByteDance): seed_coder's turns, <seed:think> thought words",
    "solar": "SOLAR (Upstage): ### User / ### Assistant",
    "starchat": "StarChat: <|user|> ... <|end|> turns",
    "telechat2": "TeleChat2 (China Telecom): <_user> / <_bot> turns",
    "video_llava": "Video-LLaVA: vicuna's strings",
    "xuanyuan": "XuanYuan (Du Xiaoman): Human: / Assistant: turns with its Chinese default system",
    "yi_vl": "Yi-VL: ### Human / ### Assistant",
    "youtu": "Youtu-LLM (Tencent): <|User|> / <|Assistant|> turns",
    "youtu_vl": "Youtu-VL (Tencent): <|begin_of_text|> role turns",
    "yuan": "Yuan 2.0 (IEIT): <sep> after the query, <eod> after the answer",
}

CLASS_NAMES = {
    lf_template.Glm47ReasoningTemplate: "glm47_reasoning",
    lf_template.ReasoningTemplate: "reasoning",
    lf_template.Llama2Template: "llama2",
    lf_template.Template: "default",
}
PLUGIN_NAMES = {v: k for k, v in PLUGINS.items()}


def lua_str(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append("\\%03d" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def lua_long_str(s, indent):
    """A string literal, cut after "\\n" (or at spaces) into `..` pieces when it is long."""
    width = 108 - max(indent, 7)
    if len(lua_str(s)) <= width:
        return lua_str(s)
    lines = [x + "\n" for x in s.split("\n")]
    lines[-1] = lines[-1][:-1]
    pieces = []
    for line in lines:  # lines that are still long are cut at spaces
        while len(lua_str(line)) > width and " " in line[40:]:
            cut = line.rfind(" ", 40, max(41, width - 10)) + 1 or line.index(" ", 40) + 1
            pieces.append(line[:cut])
            line = line[cut:]
        if line:
            pieces.append(line)
    merged = []
    for p in pieces:  # short lines share a piece
        if merged and len(lua_str(merged[-1] + p)) <= width:
            merged[-1] += p
        else:
            merged.append(p)
    assert "".join(merged) == s
    return "\n    .. ".join(lua_str(p) for p in merged)


def slot_lua(slot, indent):
    if isinstance(slot, str):
        return lua_long_str(slot, indent)
    if isinstance(slot, set):
        (name,) = tuple(slot)
        return {"bos_token": "T.BOS", "eos_token": "T.EOS"}.get(name, f"T.special({lua_str(name)})")
    if isinstance(slot, dict):
        return f"T.token({lua_str(slot['token'])})"
    raise TypeError(slot)


def uses_markers(t):
    for f in (t.format_user, t.format_assistant, t.format_system, t.format_function, t.format_observation,
              t.format_prefix, t.format_tools):
        if any(not isinstance(s, str) for s in f.slots):
            return True
    return False


def slots_lua(f, key, extra=""):
    indent = len(f"  {key} = {{")
    items = [slot_lua(s, indent) for s in f.slots]
    return f"  {key} = {{" + ", ".join(items) + extra + "},"


def tool_format(f):
    return f.tool_format or "default"


def recipe(name, t):
    cls = CLASS_NAMES[type(t)]
    efficient_eos = t.efficient_eos
    default_slots = ["{{content}}"] if efficient_eos else ["{{content}}", {"eos_token"}]
    lines = []
    user = t.format_user.slots
    if user != ["{{content}}"]:
        lines.append(slots_lua(t.format_user, "format_user"))
    if t.format_assistant.slots != default_slots:
        lines.append(slots_lua(t.format_assistant, "format_assistant"))
    if t.format_system.slots != ["{{content}}"]:
        lines.append(slots_lua(t.format_system, "format_system"))
    fn = t.format_function
    if fn.slots != t.format_assistant.slots or tool_format(fn) != "default":
        extra = f", tool_format = {lua_str(tool_format(fn))}" if tool_format(fn) != "default" else ""
        lines.append(slots_lua(fn, "format_function", extra))
    if t.format_observation.slots != user:
        lines.append(slots_lua(t.format_observation, "format_observation"))
    tools = t.format_tools
    if isinstance(tools, ToolFormatter):
        if tool_format(tools) != "default":
            lines.append(f"  format_tools = {{tool_format = {lua_str(tool_format(tools))}}},")
    else:
        assert isinstance(tools, StringFormatter), name
        lines.append(slots_lua(tools, "format_tools"))
    if t.format_prefix.slots:
        lines.append(slots_lua(t.format_prefix, "format_prefix"))
    if t.default_system:
        lines.append("  default_system = " + lua_long_str(t.default_system, len("  default_system = ")) + ",")
    if t.stop_words:
        lines.append("  stop_words = {" + ", ".join(lua_str(w) for w in t.stop_words) + "},")
    if tuple(t.thought_words) != ("<think>\n", "\n</think>\n\n"):
        lines.append("  thought_words = {" + ", ".join(lua_str(w) for w in t.thought_words) + "},")
    if tuple(t.tool_call_words) != ("<tool_call>", "</tool_call>"):
        lines.append("  tool_call_words = {" + ", ".join(lua_str(w) for w in t.tool_call_words) + "},")
    for k in ("efficient_eos", "replace_eos", "replace_jinja_template", "preserve_thinking"):
        if getattr(t, k):
            lines.append(f"  {k} = true,")
    if t.enable_thinking is not True:
        lines.append(f"  enable_thinking = {'false' if t.enable_thinking is False else 'nil'},")
    plugin = plugin_fields(t.mm_plugin)
    if plugin["name"] != "base":
        items = [f"name = {lua_str(plugin['name'])}"] + [f"{k} = {lua_str(v)}" for k, v in plugin.items() if k != "name"]
        line = "  mm_plugin = {" + ", ".join(items) + "},"
        if len(line) > 110:
            line = "  mm_plugin = {\n" + "".join(f"    {x},\n" for x in items) + "  },"
        lines.append(line)
    if cls != "default":
        lines.append(f"  template_class = {lua_str(cls)},")
    head = header(name, t, cls, plugin)
    body = ""
    if uses_markers(t):
        body += 'local T = require "lfl.text.template"\n'
    body += "return {\n" + "\n".join(lines) + "\n}\n"
    return head + body


def plugin_fields(p):
    out = {"name": PLUGIN_NAMES[type(p)]}
    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        if f.name != "expand_mm_tokens" and v is not None:
            out[f.name] = v
    return out


def header(name, t, cls, plugin):
    notes = []
    if cls == "llama2":
        notes.append("the system prompt is fused into the first user turn (Llama2Template)")
    elif cls == "reasoning":
        notes.append("a ReasoningTemplate: an answer without a thought gets an empty one, trained when "
                     "enable_thinking, else part of the prompt")
    elif cls == "glm47_reasoning":
        notes.append("a Glm47ReasoningTemplate: an answer without a thought gets the closing tag alone, trained "
                     "when enable_thinking, else part of the prompt")
    if t.efficient_eos:
        notes.append("efficient_eos")
    if any(isinstance(x, set) and not x & {"bos_token", "eos_token"} for x in t.format_prefix.slots):
        notes.append("its prefix is LlamaFactory's set slot {\"<|endoftext|>\"}, which names neither BOS nor EOS "
                     "and so emits nothing (kept for parity)")
    if isinstance(t.format_tools, ToolFormatter) and tool_format(t.format_tools) != "default":
        notes.append(f"{tool_format(t.format_tools)} tool format")
    if plugin["name"] != "base":
        notes.append(f"multimodal in LlamaFactory ({plugin['name']} plugin): lfl encodes the text and refuses "
                     "images, videos and audios")
    text = f'"{name}": {FAMILIES.get(name, name)}' + ("; " + "; ".join(notes) if notes else "") + "."
    words, lines, cur = text.split(" "), [], "--"
    for w in words:
        if len(cur) + 1 + len(w) > 110:
            lines.append(cur)
            cur = "--"
        cur += " " + w
    lines.append(cur)
    return "\n".join(lines) + "\n"


def main(argv):
    force = set(argv)
    n = 0
    for name, t in lf_template.TEMPLATES.items():
        path = os.path.join(DIR, name + ".lua")
        if os.path.exists(path) and name not in force:
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(recipe(name, t))
        n += 1
        print("wrote", path)
    print(f"{n} recipes written; LlamaFactory has {len(lf_template.TEMPLATES)} templates")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
