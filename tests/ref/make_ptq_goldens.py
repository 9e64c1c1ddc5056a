"""Goldens for GPTQ / AWQ 4-bit checkpoints -> tests/golden/quant/{gptq_llama,awq_llama}/ and
tests/golden/quant/ptq.safetensors. The tiny llama's decoder linears
(tests/golden/models/llama) are quantized to 4 bits, asymmetric, groups of 16 inputs, and
written in the layouts transformers loads:
- gptq_llama: GPTQ checkpoint_format "gptq" (v1: each zero stored minus one), desc_act
  (a g_idx from a fixed permutation), qweight [in/8, out] / qzeros [groups, out/8] packed
  low nibble first, scales f16;
- awq_llama: AutoAWQ GEMM (version "gemm", zero_point), qweight [in, out/8] / qzeros
  packed in AWQ_ORDER, scales f16.
The expected float weights come from the reference code: AutoAWQ 0.2.9's own
awq/utils/packing_utils.dequantize_gemm (read from its sdist, fetched by pip), and for
GPTQ the dequantization of GPTQModel 7.7's TorchQuantLinear (dequantize_weight /
_dequantize_from_codes: scales[g_idx] * (weight - zeros[g_idx]) after its v1 -> v2 zero
conversion), which cannot be imported without its compiled kernels and is written out
below. transformers' LlamaForCausalLM with those weights gives the logits lfl must match.
Run: $(bash tests/ref/venv.sh) tests/ref/make_ptq_goldens.py"""
import importlib.util, json, pathlib, shutil, subprocess, sys, tarfile, tempfile
import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

root = pathlib.Path(__file__).resolve().parents[1]
src = root / "golden" / "models" / "llama"
out = root / "golden" / "quant"
G, BITS = 16, 4
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

tmp = pathlib.Path(tempfile.mkdtemp())
subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(tmp),
                "autoawq==0.2.9"], check=True)
with tarfile.open(next(tmp.glob("autoawq-*.tar.gz"))) as tf:
    tf.extractall(tmp)
spec = importlib.util.spec_from_file_location("packing_utils", next(tmp.glob("autoawq-*/awq/utils/packing_utils.py")))
pu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pu)

weights = load_file(src / "model.safetensors")
cfg = json.loads((src / "config.json").read_text())


def quantize(W, g_idx, groups):
    """W [out, in] -> codes [in, out], zeros [groups, out], scales [groups, out] (min/max per group)"""
    o, i = W.shape
    zeros = torch.zeros(groups, o, dtype=torch.int32)
    scales = torch.zeros(groups, o, dtype=torch.float16)
    codes = torch.zeros(i, o, dtype=torch.int32)
    for g in range(groups):
        cols = (g_idx == g).nonzero().flatten()
        w = W[:, cols]
        lo, hi = w.min(dim=1).values.clamp(max=0), w.max(dim=1).values.clamp(min=0)
        s = ((hi - lo) / 15).clamp(min=1e-6).to(torch.float16)
        z = torch.round(-lo / s.float()).clamp(0, 15).to(torch.int32)
        scales[g], zeros[g] = s, z
        codes[cols] = (torch.round(w / s.float()[:, None]) + z[:, None]).clamp(0, 15).to(torch.int32).T
    return codes, zeros, scales


def pack_rows(codes):  # [in, out] -> [in/8, out], value j of a word at bits 4j
    i, o = codes.shape
    c = codes.view(i // 8, 8, o)
    return sum((c[:, j].to(torch.int64) << (4 * j)) for j in range(8)).to(torch.int64).to(torch.int32)


def pack_cols(vals, order=range(8)):  # [r, out] -> [r, out/8], column 8w + order[k] at bits 4k
    r, o = vals.shape
    v = vals.view(r, o // 8, 8)
    return sum((v[:, :, c].to(torch.int64) << (4 * k)) for k, c in enumerate(order)).to(torch.int64).to(torch.int32)


def gptqmodel_dequant(qweight, qzeros, scales, g_idx):
    """GPTQModel TorchQuantLinear: v1 -> v2 zeros (+1), unpack, scales[g_idx] * (weight - zeros[g_idx])"""
    wf = torch.arange(0, 32, BITS, dtype=torch.int32)
    zeros = torch.bitwise_right_shift(qzeros.unsqueeze(2).expand(-1, -1, 8), wf.unsqueeze(0)).bitwise_and(15)
    zeros = ((zeros + 1) & 15).reshape(qzeros.shape[0], -1)  # checkpoint_format gptq (v1)
    weight = torch.bitwise_right_shift(qweight.unsqueeze(1).expand(-1, 8, -1), wf.unsqueeze(-1)).bitwise_and(15)
    weight = weight.reshape(weight.shape[0] * weight.shape[1], weight.shape[2])
    # f16 scales times the integer codes: an f16 product, as in GPTQModel
    return (scales[g_idx.long()] * (weight - zeros[g_idx.long()])).float().T.contiguous()  # [out, in]


gen = torch.Generator().manual_seed(0)
gold = {}
ids = torch.tensor([[1, 5, 9, 2, 7, 3, 11, 4], [6, 6, 10, 12, 8, 14, 3, 2]])
for kind in ("gptq", "awq"):
    tensors, deq = {}, dict(weights)
    for name, W in weights.items():
        mod = name.rsplit(".", 1)[0]
        if not (name.endswith(".weight") and mod.split(".")[-1] in LINEARS):
            tensors[name] = W
            continue
        o, i = W.shape
        groups = i // G
        if kind == "gptq":
            perm = torch.randperm(i, generator=gen)
            g_idx = (perm // G).to(torch.int32)  # desc_act: groups follow an activation order, not the row order
            codes, zeros, scales = quantize(W, g_idx, groups)
            tensors[mod + ".qweight"] = pack_rows(codes)
            tensors[mod + ".qzeros"] = pack_cols((zeros - 1) & 15)  # v1 stores zero - 1
            tensors[mod + ".scales"] = scales
            tensors[mod + ".g_idx"] = g_idx
            deq[name] = gptqmodel_dequant(tensors[mod + ".qweight"], tensors[mod + ".qzeros"], scales, g_idx)
        else:
            g_idx = (torch.arange(i) // G).to(torch.int32)
            codes, zeros, scales = quantize(W, g_idx, groups)
            tensors[mod + ".qweight"] = pack_cols(codes, pu.AWQ_ORDER)
            tensors[mod + ".qzeros"] = pack_cols(zeros, pu.AWQ_ORDER)
            tensors[mod + ".scales"] = scales
            deq[name] = pu.dequantize_gemm(tensors[mod + ".qweight"], tensors[mod + ".qzeros"], scales, BITS,
                                           G).float().T.contiguous()
        gold[f"{kind}.{name}"] = deq[name]
    d = out / f"{kind}_llama"
    d.mkdir(parents=True, exist_ok=True)
    c = dict(cfg)
    c["quantization_config"] = ({"quant_method": "gptq", "bits": 4, "group_size": G, "desc_act": True, "sym": False,
                                 "checkpoint_format": "gptq"} if kind == "gptq" else
                                {"quant_method": "awq", "bits": 4, "group_size": G, "zero_point": True,
                                 "version": "gemm"})
    (d / "config.json").write_text(json.dumps(c, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in tensors.items()}, d / "model.safetensors", metadata={"format": "pt"})
    model = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    model.load_state_dict(deq, strict=True)
    with torch.no_grad():
        gold[f"{kind}.logits"] = model(ids).logits
gold["ids"] = ids
save_file({k: v.contiguous() for k, v in gold.items()}, out / "ptq.safetensors")
shutil.rmtree(tmp)
print("wrote", out / "ptq.safetensors", "and the gptq_llama / awq_llama checkpoints")
