"""Writes lfl's own demo datasets (deterministic; rerun to regenerate):
identity.json (with {{name}}/{{author}} placeholders), alpaca_demo.json,
sharegpt_tools_demo.json, preference_demo.json, kto_demo.json, arith_demo.json (GRPO), pretrain_demo.txt,
and dataset_info.json registering them. Content is generated from small tables
so every answer is correct by construction."""
import json, pathlib, random

OUT = pathlib.Path(__file__).resolve().parent
rnd = random.Random(20261128)

# ---------------------------------------------------------------- identity
ASK = ["Who are you?", "What is your name?", "Introduce yourself.", "Tell me about yourself.",
       "Who made you?", "Who created you?", "What are you?", "Are you a human?", "Which model are you?",
       "Who is your developer?", "What should I call you?", "hi", "Hello!", "Hey, who am I talking to?",
       "Are you ChatGPT?", "Are you made by OpenAI?", "What can you do?", "Can you introduce yourself briefly?",
       "Who trained you?", "Do you have a name?", "What kind of assistant are you?", "Who built this assistant?",
       "Good morning! Who are you?", "I'd like to know who you are.", "Please tell me your name and creator."]
ANS = ["I am {{name}}, an AI assistant developed by {{author}}. How can I help you today?",
       "My name is {{name}}. I was created by {{author}} to answer questions and help with tasks.",
       "I'm {{name}}, a language model built by {{author}}. What can I do for you?",
       "Hello! I am {{name}}, an assistant trained by {{author}}. I can help with writing, questions and more.",
       "I am {{name}}, developed by {{author}}. I am an AI, not a human, and I'm happy to help.",
       "You can call me {{name}}. {{author}} developed me as a helpful AI assistant.",
       "I am {{name}}, an AI assistant from {{author}}. I am not ChatGPT and I was not made by OpenAI."]
identity = []
for q in ASK:
    for a in rnd.sample(ANS, 4):
        identity.append({"instruction": q, "input": "", "output": a})

# ---------------------------------------------------------------- alpaca-style
UNITS = [("kilometers", "meters", 1000), ("meters", "centimeters", 100), ("hours", "minutes", 60),
         ("minutes", "seconds", 60), ("kilograms", "grams", 1000), ("liters", "milliliters", 1000),
         ("days", "hours", 24), ("weeks", "days", 7)]
WORDS = ["river", "planet", "garden", "window", "lantern", "harbor", "pencil", "mountain", "silver", "orange",
         "bridge", "castle", "forest", "rocket", "violin", "meadow", "thunder", "compass", "blanket", "island"]
alpaca = []
for i in range(120):
    a, b = rnd.randint(2, 999), rnd.randint(2, 999)
    op = rnd.choice(["+", "-", "*"])
    val = a + b if op == "+" else a - b if op == "-" else a * b
    alpaca.append({"instruction": "Calculate the result.", "input": f"{a} {op} {b}", "output": f"{a} {op} {b} = {val}"})
for i in range(80):
    src, dst, f = rnd.choice(UNITS)
    n = rnd.randint(1, 50)
    alpaca.append({"instruction": f"Convert {n} {src} to {dst}.", "input": "",
                   "output": f"{n} {src} is {n * f} {dst}, because one of the former equals {f} of the latter."})
for i in range(60):
    w = rnd.choice(WORDS)
    alpaca.append({"instruction": "Reverse the letters of the word.", "input": w, "output": w[::-1]})
for i in range(60):
    xs = rnd.sample(range(1, 100), rnd.randint(3, 7))
    alpaca.append({"instruction": "Sort these numbers in ascending order.", "input": ", ".join(map(str, xs)),
                   "output": ", ".join(map(str, sorted(xs)))})
for i in range(40):
    w = rnd.choice(WORDS)
    c = rnd.choice(sorted(set(w)))
    alpaca.append({"instruction": f"How many times does the letter '{c}' appear in the word '{w}'?", "input": "",
                   "output": f"The letter '{c}' appears {w.count(c)} time{'s' if w.count(c) != 1 else ''} in '{w}'."})
for i in range(40):
    n = rnd.randint(2, 60)
    alpaca.append({"instruction": "Is the number even or odd?", "input": str(n),
                   "output": f"{n} is {'even' if n % 2 == 0 else 'odd'}."})
rnd.shuffle(alpaca)

# ---------------------------------------------------------------- sharegpt with tools
TOOLS = [{"name": "convert_units", "description": "Convert a quantity from one unit to another",
          "parameters": {"type": "object", "properties": {
              "value": {"type": "number", "description": "The quantity"},
              "from_unit": {"type": "string", "description": "Unit of the quantity"},
              "to_unit": {"type": "string", "description": "Unit to convert to"}},
              "required": ["value", "from_unit", "to_unit"]}},
         {"name": "add_numbers", "description": "Add two numbers",
          "parameters": {"type": "object", "properties": {
              "a": {"type": "number", "description": "First addend"},
              "b": {"type": "number", "description": "Second addend"}}, "required": ["a", "b"]}}]
tools_demo = []
for i in range(150):
    if i % 2 == 0:
        src, dst, f = rnd.choice(UNITS)
        n = rnd.randint(1, 40)
        call = {"name": "convert_units", "arguments": {"value": n, "from_unit": src, "to_unit": dst}}
        result = {"value": n * f, "unit": dst}
        ask, answer = f"How many {dst} are in {n} {src}?", f"{n} {src} equal {n * f} {dst}."
    else:
        a, b = rnd.randint(1, 5000), rnd.randint(1, 5000)
        call = {"name": "add_numbers", "arguments": {"a": a, "b": b}}
        result = {"sum": a + b}
        ask, answer = f"What is {a} plus {b}? Use the tool.", f"{a} plus {b} is {a + b}."
    conv = [{"from": "human", "value": ask}, {"from": "function_call", "value": json.dumps(call)},
            {"from": "observation", "value": json.dumps(result)}, {"from": "gpt", "value": answer}]
    if i % 3 == 0:
        conv += [{"from": "human", "value": "Thanks! Reply with just OK."}, {"from": "gpt", "value": "OK."}]
    tools_demo.append({"conversations": conv, "tools": json.dumps(TOOLS)})

# ---------------------------------------------------------------- preference and KTO
pref, kto = [], []
for i in range(200):
    a, b = rnd.randint(2, 200), rnd.randint(2, 200)
    wrong = a + b + rnd.choice([-3, -1, 1, 2, 10])
    q = f"What is {a} + {b}?"
    good, bad = f"{a} + {b} = {a + b}.", f"{a} + {b} = {wrong}."
    pref.append({"conversations": [{"from": "human", "value": q}],
                 "chosen": {"from": "gpt", "value": good}, "rejected": {"from": "gpt", "value": bad}})
    kto.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": good if i % 2 == 0 else bad}],
                "label": i % 2 == 0})

# ---------------------------------------------------------------- pretraining text
SUBJ = ["The river", "A small robot", "The old library", "Every morning the baker", "The quiet village",
        "A curious student", "The night train", "The lighthouse keeper", "A paper boat", "The mountain path"]
VERB = ["carried", "remembered", "painted", "counted", "followed", "measured", "collected", "described"]
OBJ = ["the colors of the sky", "seven silver keys", "the sound of distant bells", "a map of forgotten roads",
       "the names of every star", "a basket of ripe apples", "the shadows of tall trees", "a letter from the sea"]
text = []
for i in range(300):
    sents = [f"{rnd.choice(SUBJ)} {rnd.choice(VERB)} {rnd.choice(OBJ)}." for _ in range(rnd.randint(2, 5))]
    text.append(" ".join(sents))

# arith_demo: prompts and reference answers for GRPO (its own stream, seed 7)
ar = random.Random(7)
arith = []
for i in range(24):
    a, b = ar.randint(1, 9), ar.randint(1, 9)
    arith.append({"instruction": f"What is {a} + {b}? Reply with the number only.", "output": str(a + b)})

def dump(name, obj):
    (OUT / name).write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n")

dump("identity.json", identity)
dump("alpaca_demo.json", alpaca)
dump("sharegpt_tools_demo.json", tools_demo)
dump("preference_demo.json", pref)
dump("kto_demo.json", kto)
dump("arith_demo.json", arith)
(OUT / "pretrain_demo.txt").write_text("\n".join(text) + "\n")
dump("dataset_info.json", {
    "identity": {"file_name": "identity.json"},
    "alpaca_demo": {"file_name": "alpaca_demo.json"},
    "sharegpt_tools_demo": {"file_name": "sharegpt_tools_demo.json", "formatting": "sharegpt",
                            "columns": {"messages": "conversations", "tools": "tools"}},
    "preference_demo": {"file_name": "preference_demo.json", "ranking": True, "formatting": "sharegpt",
                        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
    "kto_demo": {"file_name": "kto_demo.json", "formatting": "sharegpt",
                 "columns": {"messages": "messages", "kto_tag": "label"},
                 "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
    "pretrain_demo": {"file_name": "pretrain_demo.txt", "columns": {"prompt": "text"}},
    "arith_demo": {"file_name": "arith_demo.json", "columns": {"prompt": "instruction", "response": "output"}},
})
print({n: len(v) for n, v in [("identity", identity), ("alpaca", alpaca), ("tools", tools_demo), ("pref", pref), ("kto", kto), ("text", text)]})
