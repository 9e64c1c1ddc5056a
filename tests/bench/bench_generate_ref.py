"""Generation throughput of the reference stacks on the GGUF that
tests/bench/bench_generate.lua times in lfl: SmolLM2-135M-Instruct Q4_1,
prefill tokens/s and decode tokens/s at batch 1 and 8, greedy, every row
making N tokens, the same synthetic prompt ids, median of R runs.

  llama.cpp (llama-cpp-python, its low-level API: one llama_batch holding all
  rows as separate sequences, n_seq_max 8, n_threads 2, weights kept Q4_1):
    ~/.cache/lfl/llamacpp-venv/bin/python tests/bench/bench_generate_ref.py llamacpp [P] [N] [R]
  transformers (gguf_file=, dequantised to f32, torch threads 2, left padding,
  a forward over the prompts then one forward per step with the KV cache):
    ~/.cache/lfl/refvenv/bin/python tests/bench/bench_generate_ref.py transformers [P] [N] [R]
  quantize SRC DST: llama.cpp's Q4_K_S of the GGUF SRC written to DST (llama_model_quantize, re-quantizing;
  the tensors whose rows are not a multiple of 256 fall back to q5_0 / q5_1, as llama.cpp decides)
"""
import os
import statistics
import sys
import time

# BENCH_GGUF names another GGUF (tests/bench/bench_decode_gguf.sh's Q4_K file)
PATH = os.environ.get("BENCH_GGUF") or os.path.expanduser("~/.cache/lfl/models/SmolLM2-135M-Instruct.Q4_1.gguf")
WHICH = sys.argv[1] if len(sys.argv) > 1 else "llamacpp"
ARGS = sys.argv[2:] if WHICH != "quantize" else []
P = int(ARGS[0]) if len(ARGS) > 0 else 128
N = int(ARGS[1]) if len(ARGS) > 1 else 32
R = int(ARGS[2]) if len(ARGS) > 2 else 3
THREADS = int(os.environ.get("BENCH_THREADS", "2"))  # OMP_NUM_THREADS for the lfl side


def prompt(b):
    # the same ids as bench_generate.lua's prompt(b) (b 1-based there)
    return [100 + (i * 7919 + b * 104729) % 40000 for i in range(P)]


def run_llamacpp():
    import ctypes
    import numpy as np
    import llama_cpp as L

    L.llama_backend_init()
    mp = L.llama_model_default_params()
    model = L.llama_model_load_from_file(PATH.encode(), mp)
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))

    def bench(B):
        cp = L.llama_context_default_params()
        cp.n_ctx = B * (P + N + 16)
        cp.n_batch = B * P
        cp.n_ubatch = min(B * P, 512)
        cp.n_seq_max = B
        cp.n_threads = THREADS
        cp.n_threads_batch = THREADS
        ctx = L.llama_init_from_model(model, cp)
        batch = L.llama_batch_init(B * P, 0, 1)

        def fill(rows, pos0, want_logits_last):
            n = 0
            for b, toks in enumerate(rows):
                for i, t in enumerate(toks):
                    batch.token[n] = t
                    batch.pos[n] = pos0 + i
                    batch.n_seq_id[n] = 1
                    batch.seq_id[n][0] = b
                    batch.logits[n] = 1 if (want_logits_last and i == len(toks) - 1) else 0
                    n += 1
            batch.n_tokens = n
            return n

        def argmax_rows(idx):
            out = []
            for i in idx:
                p = L.llama_get_logits_ith(ctx, i)
                out.append(int(np.argmax(np.ctypeslib.as_array(p, shape=(vocab,)))))
            return out

        pre, dec, cpre, cdec = [], [], [], []
        for r in range(R + 1):  # the first run warms up
            L.llama_memory_clear(L.llama_get_memory(ctx), True)
            rows = [prompt(b) for b in range(B)]
            t0, c0 = time.perf_counter(), time.process_time()
            fill(rows, 0, True)
            assert L.llama_decode(ctx, batch) == 0
            nxt = argmax_rows([(b + 1) * P - 1 for b in range(B)])
            t1, c1 = time.perf_counter(), time.process_time()
            for s in range(N - 1):
                fill([[t] for t in nxt], P + s, True)
                assert L.llama_decode(ctx, batch) == 0
                nxt = argmax_rows(range(B))
            t2, c2 = time.perf_counter(), time.process_time()
            if r > 0:
                pre.append(B * P / (t1 - t0))
                dec.append(B * (N - 1) / (t2 - t1))
                cpre.append(B * P / (c1 - c0))
                cdec.append(B * (N - 1) / (c2 - c1))
        L.llama_batch_free(batch)
        L.llama_free(ctx)
        return pre, dec, cpre, cdec

    print(f"llama.cpp (llama-cpp-python {L.__version__}), {os.path.basename(PATH)}, n_threads {THREADS}, P={P} N={N}, median of {R}")
    for B in (1, 8):
        report(B, *bench(B))
    L.llama_model_free(model)


def run_transformers():
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(THREADS)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(PATH), gguf_file=os.path.basename(PATH),
                                                 torch_dtype=torch.float32)
    model.eval()

    def bench(B):
        # equal lengths, so the left padding of a batch is empty; the mask is passed as for padded rows
        ids = torch.tensor([prompt(b) for b in range(B)])
        mask = torch.ones_like(ids)
        pre, dec = [], []
        for r in range(R + 1):
            with torch.inference_mode():
                t0 = time.perf_counter()
                out = model(input_ids=ids, attention_mask=mask, use_cache=True)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                past = out.past_key_values
                t1 = time.perf_counter()
                m = mask
                for _ in range(N - 1):
                    m = torch.cat([m, torch.ones(B, 1, dtype=m.dtype)], 1)
                    out = model(input_ids=nxt, attention_mask=m, past_key_values=past, use_cache=True)
                    past = out.past_key_values
                    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                t2 = time.perf_counter()
            if r > 0:
                pre.append(B * P / (t1 - t0))
                dec.append(B * (N - 1) / (t2 - t1))
        return pre, dec

    print(f"transformers {transformers.__version__} (torch {torch.__version__}), f32, threads {THREADS}, "
          f"P={P} N={N}, median of {R}")
    for B in (1, 8):
        report(B, *bench(B))


def report(B, pre, dec, cpre=None, cdec=None):
    # cpu-: tokens per CPU-second of the process (time.process_time, all threads), steadier on a busy machine
    cpu = (f"cpu-prefill {statistics.median(cpre):8.1f} cpu-decode {statistics.median(cdec):7.1f}   "
           if cpre else "")
    print(f"batch {B}: prefill {statistics.median(pre):8.1f} tok/s  decode {statistics.median(dec):7.1f} tok/s  "
          f"{cpu}(runs: prefill {' '.join(f'{x:.0f}' for x in pre)}; decode {' '.join(f'{x:.1f}' for x in dec)})")


if __name__ == "__main__":
    if WHICH == "quantize":  # quantize SRC DST: llama.cpp's Q4_K_S of SRC (re-quantized), for bench_decode_gguf.sh
        import llama_cpp as L

        qp = L.llama_model_quantize_default_params()
        qp.ftype = L.LLAMA_FTYPE_MOSTLY_Q4_K_S
        qp.allow_requantize = True
        qp.nthread = THREADS
        sys.exit(L.llama_model_quantize(sys.argv[2].encode(), sys.argv[3].encode(), qp))
    {"llamacpp": run_llamacpp, "transformers": run_transformers}[WHICH]()
