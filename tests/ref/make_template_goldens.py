"""Writes tests/golden/templates/{chat_templates,jinja_features}.json.

chat_templates.json: every Jinja chat_template in ../shared/data/tokenizers (plus a
few well-known template styles written out below: Llama 3.1 tools, Mistral v0.3
tools, Qwen2.5, SmolLM2, DeepSeek-R1, Phi-3, Zephyr) rendered by transformers'
tokenizer.apply_chat_template(tokenize=False) on the conversations below, with
add_generation_prompt both ways (and enable_thinking for templates that read it).
When transformers raises, the error is recorded instead of the output.

jinja_features.json: small snippets rendered by the same Jinja environment
transformers builds (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, its tojson/raise_exception/namespace), to pin interpreter features.

Run by hand:  $(bash tests/ref/venv.sh) tests/ref/make_template_goldens.py
"""
import datetime
import json
import os
import sys

from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data", "tokenizers")
OUT = os.path.join(REPO, "tests", "golden", "templates")

# ---------------------------------------------------------------------------
# conversations (messages in the OpenAI/transformers format)
# ---------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
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
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web; returns the top results.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "what to look for"},
                "max_results": {"type": "integer", "description": "how many", "default": 3},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["query"],
        },
        "return": {"type": "string"},
    },
}

CONVERSATIONS = {
    "single": {"messages": [{"role": "user", "content": "Hello!"}]},
    "system_multi": {
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4."},
            {"role": "user", "content": "And 3+3?"},
        ]
    },
    "multi_no_system": {
        "messages": [
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Tell me a joke."},
            {"role": "assistant", "content": "Why did the chicken cross the road? To get to the other side."},
        ]
    },
    "unicode": {
        "messages": [
            {"role": "system", "content": "Réponds en français — s'il te plaît."},
            {"role": "user", "content": "Ünïcödé 你好 😀 «quotes» 'single' \"double\" \\ back\\slash\n\ttab"},
            {"role": "assistant", "content": "Привет! مرحبا 👋"},
            {"role": "user", "content": "ещё раз"},
        ]
    },
    "whitespace": {
        "messages": [
            {"role": "system", "content": "  padded system \n"},
            {"role": "user", "content": "\n  leading and trailing  \n\n"},
            {"role": "assistant", "content": "  answer with spaces  "},
            {"role": "user", "content": "\tlast\t"},
        ]
    },
    "tools": {
        "tools": [WEATHER_TOOL, SEARCH_TOOL],
        "messages": [
            {"role": "system", "content": "You can use tools."},
            {"role": "user", "content": "What's the weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "abc123XYZ",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "abc123XYZ", "name": "get_weather", "content": "{\"temp\": 18, \"sky\": \"cloudy\"}"},
            {"role": "assistant", "content": "It is 18°C and cloudy in Paris."},
            {"role": "user", "content": "Thanks!"},
        ],
    },
    "tools_string_args": {
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call00001", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
                    {"id": "call00002", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call00001", "content": "Oslo: 3°C"},
            {"role": "tool", "tool_call_id": "call00002", "content": "Rome: 21°C"},
        ],
    },
    "tools_no_calls": {
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "Just say hi."}],
    },
    "thinking": {
        "messages": [
            {"role": "user", "content": "What is 17*3?"},
            {"role": "assistant", "content": "<think>\n17*3 = 51.\n</think>\n\n51"},
            {"role": "user", "content": "And 17*4?"},
            {"role": "assistant", "content": "<think>\n17*4 = 68\n</think>\n\n68"},
        ]
    },
    "reasoning_field": {
        "messages": [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris.", "reasoning_content": "The capital of France is Paris."},
            {"role": "user", "content": "Of Italy?"},
        ]
    },
    "not_alternating": {
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
        ]
    },
    "system_only": {"messages": [{"role": "system", "content": "Only a system prompt."}]},
}

# ---------------------------------------------------------------------------
# extra templates: well-known chat template styles, written out here (the
# real files are not in shared/data); what matters is that they exercise the
# constructs real templates use, rendered by the reference implementation.
# ---------------------------------------------------------------------------

EXTRA = {}

EXTRA["x_llama31_tools"] = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

EXTRA["x_mistral_v03_tools"] = r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

EXTRA["x_qwen25"] = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

EXTRA["x_hermes_tools"] = r"""{%- macro json_to_python_type(json_spec) %}
{%- set basic_type_map = {
    "string": "str",
    "number": "float",
    "integer": "int",
    "boolean": "bool"
} %}

{%- if basic_type_map[json_spec.type] is defined %}
    {{- basic_type_map[json_spec.type] }}
{%- elif json_spec.type == "array" %}
    {{- "list[" +  json_to_python_type(json_spec|items) + "]"}}
{%- elif json_spec.type == "object" %}
    {%- if json_spec.additionalProperties is defined %}
        {{- "dict[str, " + json_to_python_type(json_spec.additionalProperties) + ']'}}
    {%- else %}
        {{- "dict" }}
    {%- endif %}
{%- elif json_spec.type is iterable %}
    {{- "Union[" }}
    {%- for t in json_spec.type %}
      {{- json_to_python_type({"type": t}) }}
      {%- if not loop.last %}
        {{- "," }}
    {%- endif %}
    {%- endfor %}
    {{- "]" }}
{%- else %}
    {{- "Any" }}
{%- endif %}
{%- endmacro %}

{{- bos_token }}
{%- if tools %}
{{- '<|im_start|>system\n' }}
{{- "You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. " }}
{{- "<tools>\n" }}
{%- for tool in tools %}
    {%- if tool.function is defined %}
        {%- set tool = tool.function %}
    {%- endif %}
    {{- '{"type": "function", "function": ' }}
    {{- '{"name": "' + tool.name + '", ' }}
    {{- '"description": "' + tool.name + '(' }}
    {%- for param_name, param_fields in tool.parameters.properties|items %}
        {{- param_name + ": " + json_to_python_type(param_fields) }}
        {%- if not loop.last %}
            {{- ", " }}
        {%- endif %}
    {%- endfor %}
    {{- ")" }}
    {%- if tool.return is defined %}
        {{- " -> " + json_to_python_type(tool.return) }}
    {%- endif %}
    {{- " - " + tool.description + "\n\n" }}
    {%- for param_name, param_fields in tool.parameters.properties|items %}
        {%- if loop.first %}
            {{- "    Args:\n" }}
        {%- endif %}
        {{- "        " + param_name + "(" + json_to_python_type(param_fields) + "): " + param_fields.description|trim }}
    {%- endfor %}
    {%- if tool.return is defined and tool.return.description is defined %}
        {{- "\n    Returns:\n        " + tool.return.description }}
    {%- endif %}
    {{- '"' }}
    {{- ', "parameters": ' }}
    {%- if tool.parameters.properties | length == 0 %}
        {{- "{}" }}
    {%- else %}
        {{- tool.parameters|tojson }}
    {%- endif %}
    {{- "}" }}
    {%- if not loop.last %}
        {{- "\n" }}
    {%- endif %}
{%- endfor %}
{{- " </tools><|im_end|>\n" }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == "user" or message.role == "system" or (message.role == "assistant" and message.tool_calls is not defined) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
    {%- for tool_call in message.tool_calls %}
       {{- '\n<tool_call>\n' }}
           {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
           {%- endif %}
           {{- '{' }}
           {{- '"name": "' }}
           {{- tool_call.name }}
           {{- '"' }}
           {{- ', '}}
           {%- if tool_call.arguments is defined %}
                {{- '"arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments|tojson }}
                {%- endif %}
            {%- endif %}
             {{- '}' }}
            {{- '\n</tool_call>' }}
    {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.previtem and loop.previtem.role != "tool" %}
            {{- '<|im_start|>tool\n' }}
        {%- endif %}
        {{- '<tool_response>\n' }}
        {{- message.content }}
        {%- if not loop.last %}
            {{- '\n</tool_response>\n' }}
        {%- else %}
            {{- '\n</tool_response>' }}
        {%- endif %}
        {%- if not loop.last and loop.nextitem.role != "tool" %}
            {{- '<|im_end|>' }}
        {%- elif loop.last %}
            {{- '<|im_end|>' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# identical to the chat_template in SmolLM2-135M-Instruct's GGUF (checked by hand)
EXTRA["x_smollm2"] = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

EXTRA["x_deepseek_r1"] = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, system_prompt='') %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}"
    "{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}"
    "{{ bos_token }}{{ ns.system_prompt }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['content'] is defined %}"
    "{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{%- endif %}"
    "{%- endfor -%}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)

EXTRA["x_phi3"] = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

EXTRA["x_zephyr"] = """{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>\n'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}"""


def render_cases(tok, template):
    """Renders every conversation with add_generation_prompt both ways (and the
    enable_thinking values when the template reads enable_thinking)."""
    variants = [{}]
    if "enable_thinking" in template:
        variants = [{}, {"enable_thinking": True}, {"enable_thinking": False}]
    cases = []
    for conv_name, conv in CONVERSATIONS.items():
        runs = [(agp, kw) for agp in (False, True) for kw in variants]
        if conv["messages"][-1]["role"] == "assistant":  # assistant prefill
            runs.append((False, {"continue_final_message": True}))
        for agp, kw in runs:
            case = {"conv": conv_name, "add_generation_prompt": agp, "kwargs": kw}
            try:
                case["out"] = tok.apply_chat_template(
                    conv["messages"],
                    tools=conv.get("tools"),
                    tokenize=False,
                    add_generation_prompt=agp,
                    chat_template=template,
                    **kw,
                )
            except Exception as e:  # noqa: BLE001 - the error itself is the golden
                case["error"] = f"{type(e).__name__}: {e}"
            cases.append(case)
    return cases


# ---------------------------------------------------------------------------
# interpreter feature snippets: (template, context)
# ---------------------------------------------------------------------------

MSGS = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo", "extra": None}]
FEATURES = [
    # whitespace control, trim_blocks / lstrip_blocks
    ("a\n  {% if true %}\n    b\n  {% endif %}\nc\n", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c", {}),
    ("x\n  {%+ if true %}y{% endif %}\n", {}),
    ("{% if true %}\n\n{% endif %}z", {}),
    ("  {{ 1 }}\n  {{- 2 -}}\n  {{ 3 }}\n", {}),
    ("line1\n    {# a comment #}\nline2", {}),
    ("a {#- trimmed -#} b", {}),
    ("{% for i in [1,2] %}\n  - {{ i }}\n{% endfor %}\n", {}),
    ("{% raw %}{{ not rendered }}{% endraw %}", {}),
    ("  {%- raw -%}  {{ x }}  {%- endraw -%}  ", {}),
    ("\r\nwin\r\nlines\r\n", {}),
    ("{{ 'a' }}\n\n", {}),
    ("{% if true %}  x  {% endif %}", {}),
    # literals
    ("{{ 42 }} {{ -3 }} {{ 1_000 }} {{ 0x1F }} {{ 1.50 }} {{ 2e3 }} {{ 'it''s' }} {{ \"a\" 'b' }}", {}),
    ("{{ 'esc: \\n\\t\\\\ \\u00e9 \\x41 \\' ' }}", {}),
    ("{{ [1, 'two', [3], {'k': 'v'}] }} {{ (1,) }} {{ () }} {{ {} }} {{ [] }}", {}),
    ("{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", {}),
    # operators and precedence
    ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 // -2 }}", {}),
    ("{{ 1 / 4 }} {{ 3 / 1 }} {{ 1.5 + 1.5 }} {{ 2 * 0.5 }} {{ 10 - 0.25 }}", {}),
    ("{{ 'ab' * 3 }} {{ [1] * 3 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none ~ true ~ undefined_x }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1,2] == [1,2] }} {{ {'a':1} == {'a':1} }}", {}),
    ("{{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ not 1 in [1] }}", {}),
    ("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' or [] }} {{ none and 1 }} {{ not '' }} {{ not none }}", {}),
    ("{{ 'yes' if x else 'no' }} {{ 'yes' if not x else 'no' }} [{{ 'only' if false }}]", {"x": 0}),
    ("{{ x|length - 1 }} {{ not x|length }} {{ -x|first }} {{ -x[1]|abs }}", {"x": [1, 2, 3]}),
    ("{{ -x|length }}", {"x": [1, 2, 3]}),
    ("{{ 'a' ~ 2 * 3 }} {{ 'x' ~ 'y' + 'z' }} {{ 2 * 3 ~ 4 }}", {}),
    ("{{ 1 + 2 ~ 3 }}", {}),
    ("{{ true + 1 }} {{ true == 1 }} {{ false < true }}", {}),
    # variables, attributes, items
    ("{{ m.role }} {{ m['content'] }} {{ m.missing }}|{{ m['missing'] }}|{{ m.get('missing') }} {{ m.get('role') }} {{ m.get('x', 'd') }}",
     {"m": MSGS[1]}),
    ("{{ msgs[0].role }} {{ msgs[-1]['content'] }} {{ msgs[5] }}|{{ msgs|length }}", {"msgs": MSGS}),
    ("{{ msgs[2].extra }} {{ msgs[2].extra is none }}", {"msgs": MSGS}),
    ("{{ d['items'] }} {{ d.items is callable }} {{ d.items()|list }}", {"d": {"items": 1}}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {{ d.keys()|list }} {{ d.values()|list }}",
     {"d": {"z": 1, "a": 2, "m": [3]}}),
    ("{{ none.attr }}|{{ none['x'] }}|", {}),
    ("{{ s[0] }}{{ s[-1] }}{{ s[1:3] }}{{ s[::-1] }}{{ s[::2] }}{{ s[10:] }}|{{ s[-2:] }}", {"s": "héllo😀"}),
    ("{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[-2::-1] }} {{ l[1:100] }} {{ l[5:1:-2] }}", {"l": [0, 1, 2, 3, 4, 5, 6]}),
    ("{{ t.a.b.c }}", {"t": {"a": {"b": {"c": "deep"}}}}),
    # tests
    ("{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ n is none }} {{ x is not none }}", {"x": 1, "n": None}),
    ("{{ 'a' is string }} {{ 1 is string }} {{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'x' is iterable }} {{ 1 is iterable }} {{ y is iterable }}", {}),
    ("{{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 'a' is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ 0 is boolean }}", {}),
    ("{{ [] is sequence }} {{ 'a' is sequence }} {{ 1 is sequence }} {{ 2 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }}", {}),
    ("{{ 1 is equalto 1 }} {{ 'a' is eq 'b' }} {{ 2 is in [1,2] }} {{ 3 is gt 2 }} {{ 3 is lt 2 }} {{ 3 is ge 3 }} {{ 3 is le 2 }} {{ 3 is ne 3 }}", {}),
    ("{{ true is true }} {{ true is false }} {{ none is sameas none }} {{ 'abc' is lower }} {{ 'ABC' is upper }}", {}),
    ("{{ f is callable }} {{ raise_exception is callable }} {{ 'upper' is filter }} {{ 'nope' is test }}", {}),
    # filters
    ("{{ '  x  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ '\u00a0 nbsp \u3000'|trim }}|", {}),
    ("{{ 'hello world'|upper }} {{ 'HeLLo'|lower }} {{ 'hello world'|capitalize }} {{ 'hello big-world (x)'|title }}", {}),
    ("{{ [3,1,2]|length }} {{ 'héllo'|length }} {{ {'a':1}|count }} {{ y|length }}", {}),
    ("{{ y|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }} {{ y|d('dd') }}", {}),
    ("{{ [1,2,3]|first }} {{ [1,2,3]|last }} {{ 'abc'|first }} {{ 'abc'|last }} [{{ []|first }}]", {}),
    ("{{ [1,2,3]|join }} {{ [1,2,3]|join(', ') }} {{ msgs|join('|', attribute='role') }}", {"msgs": MSGS}),
    ("{{ 'a-b-c'|replace('-', '+') }} {{ 'aaa'|replace('a', 'b', 2) }}", {}),
    ("{{ 1|string }} {{ none|string }} {{ [1,'a']|string }} {{ 1.0|string }} {{ true|string }}", {}),
    ("{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '0x1A'|int(0, 16) }} {{ '12'|float }} {{ 2|float }}", {}),
    ("{{ d|items|list }} {{ y|items|list }}", {"d": {"b": 1, "a": 2}}),
    ("{{ 'abc'|list }} {{ {'x': 1, 'y': 2}|list }} {{ (1, 2)|list }}", {}),
    ("{{ msgs|map(attribute='role')|list }} {{ ['a','b']|map('upper')|join }} {{ msgs|map(attribute='nope', default='-')|list }}", {"msgs": MSGS}),
    ("{{ msgs|selectattr('role', 'equalto', 'user')|list|length }} {{ msgs|rejectattr('role', 'equalto', 'user')|map(attribute='role')|join(',') }}", {"msgs": MSGS}),
    ("{{ msgs|selectattr('extra', 'defined')|list|length }} {{ msgs|selectattr('extra', 'undefined')|list|length }} {{ msgs|selectattr('content')|list|length }}", {"msgs": MSGS}),
    ("{{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('odd')|list }} {{ [0,1,'',none,'a']|select|list }} {{ [1,5,9]|select('gt', 4)|list }}", {}),
    ("{{ x|tojson }} {{ x|tojson(indent=2) }} {{ 'é\"\\n'|tojson }} {{ none|tojson }} {{ 1.0|tojson }} {{ [true, false]|tojson }}",
     {"x": {"b": [1, 2.5, "ü"], "a": None, "c": {}}}),
    ("{{ x|tojson(sort_keys=true) }} {{ x|tojson(separators=(',', ':')) }} {{ x|tojson(ensure_ascii=true) }}", {"x": {"b": "ü😀", "a": [1, 2]}}),
    ("{{ x|tojson(indent=4) }}", {"x": WEATHER_TOOL}),
    ("{{ '<a & \"b\">'|e }} {{ '<x>'|escape }} {{ '<y>'|safe }}", {}),
    ("{{ [3,1,2]|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ ['b','A','c']|sort }} {{ msgs|sort(attribute='role')|map(attribute='role')|join(',') }}", {"msgs": MSGS}),
    ("{{ [1,2,1,3]|unique|list }} {{ [1,2,3]|reverse|list }} {{ 'abc'|reverse }} {{ [1,2,3]|sum }} {{ [3,1,2]|max }} {{ [3,1,2]|min }}", {}),
    ("{{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.1|round(0, 'ceil') }} {{ 7|round }}", {}),
    ("{{ 'a\nb\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(2, blank=true) }}", {}),
    ("{{ '%s is %d years' % ('Tom', 30) }} {{ '%s'|format('x') }} {{ '%05.1f|%-4s|' % (3.14159, 'ab') }} {{ '100%%' % () }}", {}),
    ("{{ 'one two  three'|wordcount }} {{ d|dictsort }} {{ [1,2,3,4,5]|batch(2)|list }}", {"d": {"b": 1, "a": 2}}),
    ("{{ 'abc'|center(9) }}|{{ 'long text here'|truncate(9) }}|{{ 'x'|attr('upper') is callable }}", {}),
    # string methods
    ("{{ '  x '.strip() }}|{{ 'xyx'.strip('x') }}|{{ '\n\nab\n'.lstrip('\n') }}|{{ 'ab  '.rstrip() }}|", {}),
    ("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a,b,c'.rsplit(',', 1) }}", {}),
    ("{{ '<think>x</think>\n\nans'.split('</think>')[-1].lstrip('\n') }}", {}),
    ("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith('lo') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.endswith('') }}", {}),
    ("{{ 'Hello'.upper() }} {{ 'Hello'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'Ab'.swapcase() }}", {}),
    ("{{ 'aXbXc'.replace('X', '-') }} {{ 'aaa'.replace('a', 'b', 1) }} {{ 'héllo'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.count('l') }} {{ 'x'.find('q') }}", {}),
    ("{{ ', '.join(['a', 'b']) }} {{ '{} + {} = {}'.format(1, 2, 3) }} {{ '{0}{0}{name}'.format('a', name='n') }} {{ '{:>5}|{:<3}|{:^5}'.format('r', 'l', 'c') }}", {}),
    ("{{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'a1'.isalnum() }} {{ 'abc'.islower() }} {{ 'ABC'.isupper() }} {{ '7'.zfill(3) }}", {}),
    ("{{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ 'prefix_x'.removeprefix('prefix_') }} {{ 'a\nb\r\nc'.splitlines() }}", {}),
    ("{{ 'ÉCOLE Straße'.lower() }} {{ 'éa'.upper() }} {{ 'привет'.upper() }}", {}),
    # loops
    ("{% for m in msgs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }};{% endfor %}", {"msgs": MSGS}),
    ("{% for x in [1,2,3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}|{% endfor %}", {}),
    ("{% for x in [] %}a{% else %}empty{% endfor %} {% for x in y %}a{% else %}undef-empty{% endfor %}", {}),
    ("{% for x in [1,2,3,4,5] if x is odd %}{{ x }}:{{ loop.length }}{{ ',' if not loop.last }}{% endfor %}", {}),
    ("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}{% for k, v in {'x': 1}.items() %}{{ k }}{{ v }}{% endfor %}", {}),
    ("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }} {% endfor %}{% endfor %}{{ range(2, 10, 3)|list }}", {}),
    ("{% for c in 'héy' %}[{{ c }}]{% endfor %}{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}", {}),
    ("{% for x in [1,2,3] %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("{% for m in msgs[::-1] %}{{ m.role[0] }}{% endfor %}", {"msgs": MSGS}),
    ("{% for x in [1,2] %}{% for y in [3,4] %}{{ loop.index }}{{ x }}{{ y }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    # set, namespace, scoping
    ("{% set a = 1 %}{% set b, c = [2, 3] %}{{ a }}{{ b }}{{ c }}{% set t = (4, 5) %}{{ t[1] }}", {}),
    ("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% set ns = namespace(found=false, n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}", {}),
    ("{% set ns = namespace() %}{{ ns.missing is defined }}{% set ns.a = 'x' %}{{ ns.a }}", {}),
    ("{% set block %}hello {{ name }}{% endset %}[{{ block }}] {% set b2 | upper %}shout{% endset %}{{ b2 }}", {"name": "you"}),
    ("{% set messages = messages[1:] %}{{ messages|length }}", {"messages": MSGS}),
    ("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("{% filter upper %}abc {{ 'd' }}{% endfilter %}", {}),
    ("{% generation %}gen{% endgeneration %}", {}),
    ("{% if a %}A{% elif b %}B{% elif c %}C{% else %}D{% endif %}", {"c": 1}),
    # macros
    ("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo') }} {{ greet('Al', '?') }} {{ greet(name='Cy', punct='.') }}", {}),
    ("{% macro m(x) %}{{ x }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}", {}),
    ("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}inner{% endcall %}", {}),
    ("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("{% macro render_args(args) %}{% for k, v in args.items() %}{{ k }}={{ v|tojson }}{% if not loop.last %}, {% endif %}{% endfor %}{% endmacro %}{{ render_args({'a': 1, 'b': 'x'}) }}", {}),
    # globals
    ("{{ dict(a=1, b=2) }} {{ dict(a=1)|tojson }}", {}),
    ("{{ strftime_now('%Y') | length }}", {}),
    ("{{ bos_token ~ 'x' ~ eos_token }}", {"bos_token": "<s>", "eos_token": "</s>"}),
    # unicode
    ("{{ 'ﾃｽﾄ' ~ '｜' }} {{ '<｜User｜>'|length }} {{ '😀😀'[1] }}", {}),
    # idioms seen in real chat templates
    ("{% for message in messages if message.role != 'system' %}{{ message.role }}{% endfor %}", {"messages": MSGS}),
    ("{% for m in messages %}{% if loop.index is divisibleby 2 %}{{ m.role }}{% endif %}{% endfor %}", {"messages": MSGS}),
    ("{{ content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\\n') }}",
     {"content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]}),
    ("{% if tools is iterable and tools | length > 0 %}T{% else %}F{% endif %}{% if t2 is not none and t2 %}T{% endif %}",
     {"tools": [1], "t2": None}),
    ("{% set content = message.content | default('', true) %}[{{ content }}]", {"message": {"content": None}}),
    ("{% set ns = namespace(items=[]) %}{% for x in [1,2,3] %}{% set ns.items = ns.items + [x * 2] %}{% endfor %}{{ ns.items }}", {}),
    ("{% for k, v in d|items %}{{ k }}:{{ v }} {% endfor %}", {"d": {"b": 1, "a": [1, 2]}}),
    ("{{ x.strip() if x is string else x }}|{{ y.strip() if y is string else y }}", {"x": " s ", "y": 3}),
    ("{{ messages|selectattr('role', 'in', ['user', 'assistant'])|map(attribute='content')|list }}", {"messages": MSGS}),
    ("{%- for m in messages -%}\n  {{- m.content -}}\n  {{- '\\n' if not loop.last -}}\n{%- endfor -%}", {"messages": MSGS}),
    ("\t{% if true %}\n\tx\n\t{% endif %}\n  \t{#- c -#}\n  y", {}),
    ("{{ messages[0]['content'][0]['text'] }} {{ (messages|first).content[0].type }}",
     {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
    ("{{ tool_calls | tojson }}", {"tool_calls": [{"id": "1", "type": "function",
                                                   "function": {"name": "f", "arguments": {"a": [1, {"b": None}]}}}]}),
    ("{%- macro render_tool(t) -%}\n  <{{ t.name }}>\n{%- endmacro -%}\n{%- for t in tools %}{{ render_tool(t) }}{% endfor %}",
     {"tools": [{"name": "a"}, {"name": "b"}]}),
    ("{% set reasoning = m.reasoning_content if m.reasoning_content is defined else '' %}[{{ reasoning }}]"
     "{% if m.content is string and '</think>' in m.content %}{{ m.content.split('</think>')[0].split('<think>')[-1].strip() }}{% endif %}",
     {"m": {"content": "<think>\n deep \n</think>\nok"}}),
    ("{{ '\"' ~ key ~ '\": ' ~ val | tojson }}", {"key": "k", "val": [1, "two"]}),
    ("{{ 1 if x else 2 if y else 3 }} {{ (x or y) and 'a' or 'b' }}", {"x": 0, "y": 0}),
    ("{{ [1, 2, 3][-1] }} {{ 'abc'[-5:] }} {{ (range(5)|list)[::2] }} {{ (1, 2, 3)[1:] }}", {}),
    ("{{ {'a': 1, 'b': 2} | length }} {{ {'a': 1}['a'] }} {{ {1: 'int key'}[1] }}", {}),
    ("{{ 3 // 2 * 2 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ 7 % 2.5 }} {{ -0.0 }} {{ 1e-7 }} {{ 12345678901234 }}", {}),
    ("{{ '%d%%' % 50 }} {{ '%x' % 255 }} {{ '%r' % 'q' }} {{ '%(a)s-%(b)s' % {'a': 1, 'b': 2} }}", {}),
    ("{{ 'a' < 'b' < 'c' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) == [1, 2] }} {{ none == none }} {{ x == y }}", {}),
    # errors (the golden records that jinja2 raises)
    ("{{ undefined_var.attr }}", {}),
    ("{{ undefined_var + 'x' }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ raise_exception('custom failure') }}", {}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{{ none|length }}", {}),
    ("{% if %}{% endif %}", {}),
    ("{% if true %}unclosed", {}),
    ("{% endfor %}", {}),
    ("{{ 1 +* 2 }}", {}),
    ("{{ x|nosuchfilter }}", {}),
    ("{{ 'unterminated }}", {}),
    ("{% set ns = namespace() %}{% set ns._private = 1 %}", {}),
    ("{% set x = 1 %}{% set x.attr = 2 %}", {}),
    ("{{ [1,2].append(3) }}", {}),
    ("{{ {'a': 1}.update({'b': 2}) }}", {}),
    ("{{ undefined_fn() }}", {}),
    ("{{ 1 < 'a' }}", {}),
    ("{{ x|tojson }}", {}),
    ("{% break %}", {}),
]


def render_feature(env_src, ctx):
    try:
        tpl = _compile_jinja_template(env_src)
        return {"out": tpl.render(**ctx)}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


def write(name, obj):
    path = os.path.join(OUT, name)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    os.makedirs(OUT, exist_ok=True)
    templates = {}
    for name in sorted(os.listdir(SHARED)):
        d = os.path.join(SHARED, name)
        if not os.path.isfile(os.path.join(d, "tokenizer_config.json")):
            continue
        tok = AutoTokenizer.from_pretrained(d)
        if not isinstance(tok.chat_template, str):
            print(f"{name}: no chat_template, skipped")
            continue
        templates[name] = {
            "source": f"shared/data/tokenizers/{name}/tokenizer_config.json",
            "special_tokens": tok.special_tokens_map,
            "cases": render_cases(tok, tok.chat_template),
        }
    base = AutoTokenizer.from_pretrained(os.path.join(SHARED, "llama2"))  # <s>, </s>, <unk>; no template
    for name, src in EXTRA.items():
        templates[name] = {
            "source": "inline",
            "template": src,
            "special_tokens": base.special_tokens_map,
            "cases": render_cases(base, src),
        }
    for name, t in templates.items():
        n_err = sum(1 for c in t["cases"] if "error" in c)
        print(f"{name}: {len(t['cases'])} cases, {n_err} raise")
    write("chat_templates.json", {"conversations": CONVERSATIONS, "templates": templates})

    feats = []
    for src, ctx in FEATURES:
        rec = {"template": src, "context": ctx}
        rec.update(render_feature(src, ctx))
        feats.append(rec)
    print(f"features: {len(feats)} snippets, {sum(1 for f in feats if 'error' in f)} raise")
    write("jinja_features.json", {"features": feats})


if __name__ == "__main__":
    sys.exit(main())
