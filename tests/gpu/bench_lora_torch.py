"""The peer of tests/gpu/bench_lora.lua: the same Llama-shaped model with random
weights, LoRA r16 on every linear, bf16 weights, gradient checkpointing, AdamW,
through PyTorch + transformers + PEFT on the same device and shapes. Prints one
"RESULT ..." line for tests/gpu/run.sh's table. Figures only.

    python3 tests/gpu/bench_lora_torch.py SIZE [DEVICE] [SEQ] [BATCH] [STEPS]
"""
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {
    "tiny": dict(hidden=64, inter=160, layers=2, heads=4, kv=2, vocab=512),
    "1b": dict(hidden=2048, inter=8192, layers=16, heads=32, kv=8, vocab=128256),
    "8b": dict(hidden=4096, inter=14336, layers=32, heads=32, kv=8, vocab=128256),
}


def main():
    size = sys.argv[1] if len(sys.argv) > 1 else "tiny"
    device = sys.argv[2] if len(sys.argv) > 2 else "cuda"
    seq = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 6
    if size == "tiny":
        seq, batch, steps = min(seq, 32), min(batch, 2), min(steps, 3)
    p = PRESETS[size]
    cfg = LlamaConfig(hidden_size=p["hidden"], intermediate_size=p["inter"], num_hidden_layers=p["layers"],
                      num_attention_heads=p["heads"], num_key_value_heads=p["kv"], vocab_size=p["vocab"],
                      head_dim=p["hidden"] // p["heads"], rms_norm_eps=1e-5, rope_theta=500000.0,
                      max_position_embeddings=8192, tie_word_embeddings=False)
    t0 = time.time()
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    # sdpa: the attention transformers picks by default (FlashAttention-2 is not installed there)
    model.config._attn_implementation = "sdpa"
    nparams = sum(t.numel() for t in model.parameters())
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", lora_dropout=0.0))
    init_s = time.time() - t0
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    ids = torch.tensor([[(i * 7919 + b * 104729) % (p["vocab"] - 1) + 1 for i in range(1, seq + 1)]
                        for b in range(1, batch + 1)], device=device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], None
    model.train()
    for _ in range(steps):
        s0 = time.time()
        out = model(input_ids=ids, labels=ids)
        loss = out.loss.item()
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.time() - s0)
    warm = sorted(times[1:] or times)
    step_s = warm[(len(warm) - 1) // 2]
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0
    print(f"RESULT size={size} device={device} params={nparams / 1e9:.2f}B seq={seq} batch={batch} "
          f"init_s={init_s:.1f} step_s={step_s:.3f} tokens_per_s={batch * seq / step_s:.0f} peak_mib={peak:.0f} "
          f"loss={loss:.4f} torch={torch.__version__}", flush=True)


if __name__ == "__main__":
    main()
