#!/usr/bin/env python3
"""Writes tests/golden/tokenizers/*.json: what the Hugging Face `tokenizers`
package (PyPI) gives on the corpus in tests/ref/tokenizer_corpus.py.

  $(bash tests/ref/venv.sh) tests/ref/make_tokenizer_goldens.py

- shared/data/tokenizers/<name>/tokenizer.json: loaded as they are.
- shared/data/tokenizer-vectors/ggml-vocab-*.gguf: HF has no loader for these,
  so the pipeline is rebuilt here from the GGUF metadata the way lfl (and
  llama.cpp) defines it: byte-level BPE with llama.cpp's pre-tokenizer regexes
  for tokenizer.ggml.model "gpt2", SentencePiece-style BPE (merges ranked by
  the merged piece's score) for "llama". These goldens check the engine (regex,
  BPE, byte fallback, added tokens, decoders) against HF's; whether the
  pipeline is the model's real one is checked by llama.cpp's vectors.

- synth-*: small tokenizers trained here on the corpus (BpeTrainer) to reach
  the components the real files do not use: Metaspace, Punctuation, Digits,
  Whitespace(Split), regex Split behaviours, NFKC/Lowercase/Strip/Prepend,
  regex Replace, added tokens with lstrip/rstrip/single_word/normalized,
  unk with fuse_unk, subword prefix/suffix, Bert/Roberta/Template processors,
  ByteLevel with add_prefix_space and trim_offsets, Metaspace/BPE decoders.
  Their tokenizer.json files are written next to the goldens.

Per text: ids (add_special_tokens=True), ids_no_special (add_special_tokens=
False, when different), ids_split_special (special tokens not parsed, when
different), offsets as flat byte offsets (valid UTF-8 texts of tokenizer.json
vocabularies), decoded (skip_special_tokens=False) and decoded_skip (when
different). Invalid UTF-8 is read as bytes.decode("utf-8", errors="replace").
"""
import json
import os
import sys

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "tests", "golden", "tokenizers")
sys.path.insert(0, HERE)
from tokenizer_corpus import CORPUS  # noqa: E402

JSON_TOKENIZERS = ["llama2", "llama3", "qwen3", "deepseek_v3", "gemma3"]
GGUF_VOCABS = ["llama-spm", "phi-3", "gpt-2", "mpt", "falcon", "deepseek-llm", "deepseek-coder", "starcoder", "refact",
               "baichuan", "gpt-neox"]

# llama.cpp's pre-tokenizer regex lists (src/llama-vocab.cpp), as in core/tokenizer/tok_gguf.c
GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3_RE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
DS_LETTERS = (
    r"A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}"
    r"\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}"
    r"\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}"
    r"\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}"
    r"\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}"
    r"\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}"
    r"\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}"
    r"\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}"
    r"\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}"
    r"\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}"
    r"\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}"
    r"\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}"
    r"\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}"
)
CJK = "[一-龥ࠀ-一가-퟿]+"
PRE = {
    "gpt-2": [GPT2_RE],
    "mpt": [GPT2_RE],
    "starcoder": [r"\p{N}", GPT2_RE],
    "refact": [r"\p{N}", GPT2_RE],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2_RE, "[0-9][0-9][0-9]"],
    "deepseek-coder": ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"],
    "deepseek-llm": ["[\r\n]", r"\s?[" + DS_LETTERS + "]+", r"\s?[!-/:-~！-／：-～‘-‟　-。]+", r"\s+$", CJK, r"\p{N}+"],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2_RE, r"\p{N}+", "[0-9][0-9][0-9]"],
    "llama-bpe": [LLAMA3_RE],
}
CONTROL, USER_DEFINED, UNKNOWN = 3, 4, 2


def field(r, key, default=None):
    f = r.fields.get(key)
    return default if f is None else f.contents()


def gguf_tokenizer(path):
    """The HF pipeline lfl builds for a GGUF vocabulary (see tok_gguf.c)."""
    r = gguf.GGUFReader(path)
    kind = field(r, "tokenizer.ggml.model")
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type") or [1] * len(tokens)
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)  # the first id of a duplicated string keeps it
    n = len(tokens)

    def opt_id(key):
        v = field(r, key)
        return v if v is not None and 0 <= v < n else None

    bos, eos, unk = opt_id("tokenizer.ggml.bos_token_id"), opt_id("tokenizer.ggml.eos_token_id"), opt_id(
        "tokenizer.ggml.unknown_token_id")
    if kind == "gpt2":
        merges = [tuple(m.split(" ", 1)) for m in field(r, "tokenizer.ggml.merges")]
        pre = field(r, "tokenizer.ggml.pre", "default")
        tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=pre in ("llama3", "llama-v3", "llama-bpe", "falcon3")))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(p), "isolated") for p in PRE[pre]] +
            [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        add_bos = bool(field(r, "tokenizer.ggml.add_bos_token", False))
    else:
        scores = field(r, "tokenizer.ggml.scores")
        # transformers' SentencePieceExtractor with scores: every split of a piece
        # into two pieces, ordered by the halves' ids, then by the score of the
        # whole (high first, stable)
        cand = []
        for piece, pid in sorted(vocab.items(), key=lambda kv: kv[1]):
            local = [(piece[:k], piece[k:], scores[pid]) for k in range(1, len(piece))
                     if piece[:k] in vocab and piece[k:] in vocab]
            cand.extend(sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]])))
        cand.sort(key=lambda x: -x[2])
        tok = Tokenizer(models.BPE(vocab, [(a, b) for a, b, _ in cand], unk_token=tokens[unk] if unk is not None else None,
                                   fuse_unk=True, byte_fallback=True))
        space = bool(field(r, "tokenizer.ggml.add_space_prefix", True))
        norms = ([normalizers.Prepend("▁")] if space else []) + [normalizers.Replace(" ", "▁")]
        tok.normalizer = normalizers.Sequence(norms)
        decs = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
        if space:
            decs.append(decoders.Strip(" ", 1, 0))
        tok.decoder = decoders.Sequence(decs)
        add_bos = bool(field(r, "tokenizer.ggml.add_bos_token", True))
    name = field(r, "general.name", "")
    phi3 = "phi-3" in name.lower() or "phi3" in name.lower()
    added = []
    for i, (t, ty) in enumerate(zip(tokens, types)):
        if ty in (CONTROL, UNKNOWN, USER_DEFINED) and vocab.get(t) == i and t:
            rstrip = phi3 and ty == CONTROL and t not in ("<unk>", "<s>", "<|endoftext|>")
            added.append(AddedToken(t, special=ty != USER_DEFINED, normalized=False, rstrip=rstrip))
    tok.add_tokens(added)
    if add_bos and bos is not None:
        tok.post_processor = processors.TemplateProcessing(single=f"{tokens[bos]} $A",
                                                           special_tokens=[(tokens[bos], bos)])
    return tok


def synth_tokenizers():
    """(name, Tokenizer) pairs, trained on the valid corpus texts"""
    from tokenizers import trainers
    texts = []
    for raw in CORPUS:
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    out = []

    # A: Metaspace with prepend_scheme "first", punctuation and digits split off,
    # NFKC + lowercase + strip, a regex Replace, unk fused, template with two specials
    tok = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip(),
                                           normalizers.Replace(Regex(r"\s{3,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(behavior="isolated"), pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok.train_from_iterator(texts * 3, trainers.BpeTrainer(vocab_size=600, special_tokens=["[UNK]", "[CLS]", "[SEP]"],
                                                           show_progress=False))
    tok.add_tokens([AddedToken("hello", single_word=True, normalized=True),
                    AddedToken("<tag>", normalized=False, rstrip=True)])
    tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=True, special=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    out.append(("synth-metaspace", tok))

    # B: byte-level with a prefix space, Roberta processor trimming offsets, <mask> with lstrip
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts * 3, trainers.BpeTrainer(vocab_size=700, special_tokens=["<s>", "</s>", "<pad>"],
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                           show_progress=False))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
                                                      trim_offsets=True, add_prefix_space=True)
    out.append(("synth-bytelevel", tok))

    # C: whitespace words with a subword prefix and an end-of-word suffix, Bert processor
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    tok.train_from_iterator(texts * 3, trainers.BpeTrainer(vocab_size=600, special_tokens=["[UNK]", "[CLS]", "[SEP]"],
                                                           continuing_subword_prefix="##", end_of_word_suffix="</w>",
                                                           show_progress=False))
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    out.append(("synth-suffix", tok))

    # D: regex splits with every behaviour, Prepend/right Strip normalizers, byte fallback
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("^"), normalizers.Strip(left=False, right=True),
                                           normalizers.Replace(" ", "_")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("_"), behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[aeiou]"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\p{N}"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"[,.;:!?]"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"[^\p{L}\p{N}_^$]+"), behavior="isolated", invert=True),
        pre_tokenizers.WhitespaceSplit()])
    tok.decoder = decoders.Sequence([decoders.Replace("_", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip("^", 1, 0)])
    tok.train_from_iterator(texts * 3, trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<unk>"] + ["<0x%02X>" % b for b in range(256)], show_progress=False))
    out.append(("synth-splits", tok))
    return out


def byte_offsets(text, offsets):
    cum = [0]
    for ch in text:
        cum.append(cum[-1] + len(ch.encode("utf-8")))
    flat = []
    for s, e in offsets:
        flat += [cum[s], cum[e]]
    return flat


def run(tok, with_offsets):
    cases = []
    for raw in CORPUS:
        try:
            raw.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        text = raw.decode("utf-8", errors="replace")
        tok.encode_special_tokens = False
        e = tok.encode(text)
        c = {"ids": e.ids}
        plain = tok.encode(text, add_special_tokens=False).ids
        if plain != e.ids:
            c["ids_no_special"] = plain
        tok.encode_special_tokens = True
        split = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        if split != plain:
            c["ids_split_special"] = split
        if with_offsets and valid:
            c["offsets"] = byte_offsets(text, e.offsets)
        c["decoded"] = tok.decode(e.ids, skip_special_tokens=False)
        skip = tok.decode(e.ids, skip_special_tokens=True)
        if skip != c["decoded"]:
            c["decoded_skip"] = skip
        cases.append(c)
    return cases


def write(name, obj):
    path = os.path.join(OUT, name + ".json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    import tokenizers
    os.makedirs(OUT, exist_ok=True)
    corpus = []
    for raw in CORPUS:
        try:
            corpus.append({"text": raw.decode("utf-8")})
        except UnicodeDecodeError:
            corpus.append({"hex": raw.hex()})
    write("corpus", {"tokenizers_version": tokenizers.__version__, "texts": corpus})
    for name in JSON_TOKENIZERS:
        tok = Tokenizer.from_file(os.path.join(SHARED, "tokenizers", name, "tokenizer.json"))
        write(name, {"source": f"shared/data/tokenizers/{name}", "cases": run(tok, True)})
    for name, tok in synth_tokenizers():
        path = os.path.join(OUT, name + ".tokenizer.json")
        tok.save(path + ".tmp")
        os.replace(path + ".tmp", path)
        tok = Tokenizer.from_file(path)
        write(name, {"source": f"tests/golden/tokenizers/{name}.tokenizer.json", "cases": run(tok, True)})
    for name in GGUF_VOCABS:
        tok = gguf_tokenizer(os.path.join(SHARED, "tokenizer-vectors", f"ggml-vocab-{name}.gguf"))
        write("gguf-" + name, {"source": f"shared/data/tokenizer-vectors/ggml-vocab-{name}.gguf", "cases": run(tok, False)})


if __name__ == "__main__":
    main()
