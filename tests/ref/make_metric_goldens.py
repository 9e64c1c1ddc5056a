"""BLEU-4 and ROUGE as LlamaFactory's ComputeSimilarity (train/sft/metric.py):
nltk sentence_bleu on characters with SmoothingFunction().method3, rouge_chinese
on jieba tokens joined by spaces; scores x100 rounded to 4 decimals
-> tests/golden/eval/metrics.json, and jieba.cut of a corpus -> jieba.json. Run with the venv python from
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
# Chinese pairs scored with ROUGE too (jieba words), and a corpus of jieba.cut goldens
ZH = [
    ("我来到北京清华大学学习人工智能", "我在北京的清华大学研究人工智能"),
    ("小明硕士毕业于中国科学院计算所，后在日本京都大学深造。", "小明毕业于中国科学院计算所，之后去日本京都大学深造"),
    ("杭研大厦的王小二今天请了3.5天假", "王小二今天在杭研大厦请假"),
    ("模型的准确率提高了12.5%，效果显著！", "准确率提高了约12%，效果很好。"),
]
JIEBA = [
    "我来到北京清华大学", "他来到了网易杭研大厦", "小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
    "工信处女干事每月经过下属科室都要亲口交代24口交换机等技术性器件的安装工作",
    "结过婚的和尚未结过婚的", "请用C++和Python 3.11写代码：AT&T的价格是99.9%吗？",
    "Hello, 世界! This is lfl 的测试。\r\n第二行\t制表符", "ｆｕｌｌｗｉｄｔｈ　全角空格和１２３",
    "李小福是创新办主任也是云计算方面的专家", "emoji 😀 混合 text_with-dashes.and.dots",
    "永和服装饰品有限公司", "我们中出了一个叛徒", "",
]



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
    cases += [dict(pred=p, label=l, **scores(p, l)) for p, l in ZH]
    (OUT / "jieba.json").write_text(json.dumps([{"text": t, "cut": list(jieba.cut(t))} for t in JIEBA],
                                               ensure_ascii=False, indent=1) + "\n")
    (OUT / "metrics.json").write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
