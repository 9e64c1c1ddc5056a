# The tokenizer conformance corpus: each entry is the raw bytes of one text.
# Multilingual prose, code, emoji, whitespace runs, digits, special tokens of
# the tested vocabularies written mid-text, decomposed/compatibility Unicode,
# and (at the end) invalid UTF-8, which lfl tokenizes as Python's
# bytes.decode("utf-8", errors="replace") would read it.

TEXTS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "  Hello  world  ",
    "HELLO World hello WORLD",
    "I'm sure they'll say it's fine, but we'd've DON'T'S 've 'S 'Ll",
    "The quick brown fox jumps over the lazy dog. The end!",
    "Führer, Straße, naïve café, Zürich, Œuvre, Ångström",
    "¿Dónde está la biblioteca? ¡Aquí! Ça va? Garçon, encore un café.",
    "Привет, мир! Как дела? Добре дошли в България.",
    "Γειά σου Κόσμε. Ωραία μέρα σήμερα.",
    "مرحبا بالعالم. هذه جملة عربية ١٢٣ ٤٥٦.",
    "שלום עולם, מה שלומך?",
    "नमस्ते दुनिया। यह हिन्दी है।",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง",
    "ជំរាបសួរ ពិភពលោក",
    "你好，世界！这是一个测试。我们在北京。",
    "こんにちは世界。カタカナとひらがなと漢字。",
    "안녕하세요 세계. 한국어 문장입니다.",
    "Cửa Việt, Nguyễn, Hà Nội, Thành phố Hồ Chí Minh",
    # decomposed (NFD) forms and compatibility characters
    "Cafe\u0301 nai\u0308ve Cu\u031b\u0309a Vie\u0323\u0302t",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab",
    "ﬁne ﬂow ① ② Ⅻ ＡＢＣ１２３ ㎏ ½ ² ³",
    "singletons \u212b \u2126 \u1e9b\u0323 \u30c7\u30d5\u309a \u0958 ka\u0301\u0323 \u0b47\u0b3e",
    # code
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "local t = {a = 1, [\"b\"] = 2}\nfor k, v in pairs(t) do print(k, v) end -- comment",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"x\": \"y\"}}",
    "<table><tr><td>cell</td></tr></table> <b>bold</b> <h1>Title</h1>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "x+=1;y-=2;z*=3;w/=4;a==b!=c<=d>=e&&f||g",
    "https://example.com/path?query=1&other=two#frag user@example.org",
    # emoji
    "I love 🦙 and 🐪! 😀😃😄",
    "Family: 👨‍👩‍👧‍👦 flags: 🇫🇷🇯🇵 skin: 👍🏽 keycap: 1️⃣ #️⃣",
    " this is 🦙.cpp",
    # whitespace
    "   ",
    "\t",
    "\n",
    "\n\n\n",
    "\t\n",
    "a\n\nb\n\n\nc",
    "    Hello\n    Hello",
    "line one\r\nline two\r\n",
    "trailing spaces   \nnext",
    "tabs\t\tand  spaces\t \t mixed",
    "nbsp\u00a0here ideographic\u3000space nel\u0085x ls\u2028y",
    " " * 40 + "x",
    "a" + " " * 300 + "b",
    # digits
    "3 33 333 3333 33333 333333 3333333 33333333 333333333",
    "3.14159 2,718 1,000,000 -42 +7 1e-9 0x1F 007",
    "ied 4 ½ months",
    "phone: +1 (555) 123-4567",
    # special tokens of the tested vocabularies, mid-text
    "<s>Hello</s> <s> world </s>",
    "<|begin_of_text|>Hi<|eot_id|> <|start_header_id|>user<|end_header_id|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nok\n</think>4<|im_end|>",
    "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>hello<｜end▁of▁sentence｜>",
    "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "text<|endoftext|>more<unk>",
    "<|user|>\nhello<|end|>\n<|assistant|>",
    "<s><s></s> </s>x<s>",
    "Fill [MASK] here  [MASK]. <tag>   x <mask> y  <mask>z hello-world ahello hello_ hello, HELLO",
    "a\x00b control \x07 chars \x1b[0m",
    # long words (longer than the word cache limit) and repeats
    "a" * 300,
    "SGVsbG8gd29ybGQhIFRoaXMgaXMgYmFzZTY0IGVuY29kZWQgdGV4dCB0aGF0IGlzIHF1aXRlIGxvbmcgd2l0aG91dCBhbnkgc3BhY2Vz" * 3,
    "!!!!!!" + "." * 50 + "?!" * 20,
    "ababababababababababababababababababababababababababababababab",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut "
    "aliquip ex ea commodo consequat. 你好 Привет 🦙 1234567",
]

# invalid UTF-8 (kept as bytes)
INVALID = [
    b"\xff\xfe",
    b"abc\x80def",
    b"trunc \xe2\x82 ated",
    b"surrogate \xed\xa0\x80 here",
    b"emoji cut \xf0\x9f\x98 x",
    b"overlong \xc0\xaf slash",
    b"\xe4\xbd\xa0\xe5\xa5",
]

CORPUS = [t.encode("utf-8") for t in TEXTS] + INVALID
