"""BLEU-4 and ROUGE as LlamaFactory's ComputeSimilarity (train/sft/metric.py):
nltk sentence_bleu on characters with SmoothingFunction().method3, rouge_chinese
on jieba tokens joined by spaces; scores x100 rounded to 4 decimals
-> tests/golden/eval/metrics.json. Run with the venv python from
tests/ref/venv.sh nltk jieba rouge-chinese."""
import json, pathlib
import jieba
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_chinese import Rouge

OUT = pathlib.Path(__file__).resolve().parents[1] / "golden" / "eval"
PAIRS = [
    ("The cat sat on the mat.", "The cat is sitting on the mat."),
    ("hello world", "hello world"),
    ("Paris is the capital of France", "The capital of France is Paris."),
    ("a b c d e f", "f e d c b a"),
    ("the the the the", "the cat the dog"),
    ("I like green apples, and red ones!", "I like red apples and green pears."),
    ("line one\nline two\nline three", "line one\nline 2\nthird line"),
    ("", "something"),
    ("abc", "abcd"),
    ("x", "y"),
    ("The answer is 42 (forty-two).", "The answer is 42."),
    ("Numbers: 1, 2, 3 and 4; done", "numbers 1 2 3 4 done"),
    ("Short", "A much longer reference sentence that goes on and on"),
    ("We walked to the park, then we walked home again.", "We walked to the park and home."),
]
CJK = [("今天天气很好", "今天的天气非常好"), ("café naïve – ok", "cafe naive - ok")]


def scores(pred, label, rouge=True):
    out = {}
    if rouge:
        hyp, ref = list(jieba.cut(pred)), list(jieba.cut(label))
        if len(" ".join(hyp).split()) == 0 or len(" ".join(ref).split()) == 0:
            res = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
        else:
            res = Rouge().get_scores(" ".join(hyp), " ".join(ref))[0]
        for k, v in res.items():
            out[k] = round(v["f"] * 100, 4)
        out["tokens_pred"] = [t for t in " ".join(hyp).split()]
    b = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)
    out["bleu-4"] = round(b * 100, 4)
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases = [dict(pred=p, label=l, **scores(p, l)) for p, l in PAIRS]
    cases += [dict(pred=p, label=l, **scores(p, l, rouge=False)) for p, l in CJK]
    (OUT / "metrics.json").write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
