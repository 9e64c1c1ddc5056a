"""PPO goldens from TRL 0.9.6's own PPOTrainer (the version LlamaFactory
0.9.x's CustomPPOTrainer runs on; TRL >= 0.12 no longer has this trainer):
PPOTrainer.compute_rewards, compute_advantages and loss, called on fixed
padded tensors (float64, so the comparison is tight) with a stand-in `self`
that carries a PPOConfig and an AdaptiveKLController; the gradients of
pg_loss + vf_coef * vf_loss with respect to the log-probs and the value
predictions come from torch autograd through TRL's loss. Also the
AdaptiveKLController's updates and RunningMoments (ppo_score_norm's score
scaling: (scores - mean) / (std + float32 eps)) over a series of batches.

Masks place each response at a different offset of the padded row (as the
query lengths do in TRL's batched_forward_pass) and of different lengths; the
JSON keeps the inputs and outputs of the masked positions only, per sequence.

Writes tests/golden/ppo/ppo.json. Run from the repo root with the python
printed by `bash tests/ref/trl09_venv.sh`."""
import json, pathlib, types
import torch
from trl import PPOConfig
from trl.trainer.ppo_trainer import PPOTrainer
from trl.trainer.utils import AdaptiveKLController, RunningMoments
import trl

assert trl.__version__ == "0.9.6", trl.__version__
REPO = pathlib.Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "golden" / "ppo"
torch.manual_seed(1234)
D = torch.float64


def trainer(**cfg):
    """a PPOTrainer without its __init__: the config and the KL controller its methods read"""
    self = types.SimpleNamespace()
    self.config = PPOConfig(**cfg)
    self.kl_ctl = AdaptiveKLController(self.config.init_kl_coef, self.config.target, self.config.horizon)
    for name in ("compute_rewards", "_kl_penalty", "compute_advantages", "loss"):
        setattr(self, name, types.MethodType(getattr(PPOTrainer, name), self))
    return self


def masks_of(spans, T):
    m = torch.zeros(len(spans), T, dtype=torch.long)
    for b, (s, n) in enumerate(spans):
        m[b, s:s + n] = 1
    return m


def per_seq(x, mask):
    """the masked positions of each row, as lists"""
    return [[float(v) for v in x[b][mask[b].bool()]] for b in range(x.shape[0])]


def gae_case(name, spans, T, kl_coef, **cfg):
    self = trainer(**cfg)
    self.kl_ctl.value = kl_coef
    B = len(spans)
    mask = masks_of(spans, T)
    logprobs = -torch.rand(B, T, dtype=D) * 3
    ref = logprobs + torch.randn(B, T, dtype=D) * 0.3
    values = torch.randn(B, T, dtype=D)
    scores = torch.randn(B, dtype=D) * 2
    rewards, nonscore, kls = self.compute_rewards(scores, logprobs, ref, mask)
    v, adv, ret = self.compute_advantages(values, rewards, mask)
    return {"name": name, "config": {"kl_coef": kl_coef, "gamma": self.config.gamma, "lam": self.config.lam,
                                     "whiten_rewards": self.config.whiten_rewards},
            "scores": [float(s) for s in scores], "logprobs": per_seq(logprobs, mask), "ref_logprobs": per_seq(ref, mask),
            "values": per_seq(values, mask), "rewards": per_seq(rewards, mask),
            "non_score_rewards": per_seq(nonscore, mask), "kls": per_seq(kls, mask),
            "advantages": per_seq(adv, mask), "returns": per_seq(ret, mask),
            # the padding after each response: whiten_rewards makes it non-zero, and GAE runs through it
            "pad_tail": [T - s - n for s, n in spans]}


def loss_case(name, spans, T, spread, vspread, skip=False, **cfg):
    self = trainer(**cfg)
    B = len(spans)
    mask = masks_of(spans, T)
    old = -torch.rand(B, T, dtype=D) * 3
    logprobs = (old + torch.randn(B, T, dtype=D) * spread + (3.0 if skip else 0.0)).requires_grad_()
    values = torch.randn(B, T, dtype=D)
    vpreds = (values + torch.randn(B, T, dtype=D) * vspread).requires_grad_()
    adv = torch.randn(B, T, dtype=D)
    ret = values + torch.randn(B, T, dtype=D) * 0.5
    logits = torch.randn(B, T, 5, dtype=D)  # only its entropy statistic reads it
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skipped batch's warning
        pg, vf_scaled, stats = self.loss(old, values, logits, vpreds, logprobs, mask, adv, ret)
    (pg + vf_scaled).backward()
    return {"name": name, "config": {"cliprange": self.config.cliprange, "cliprange_value": self.config.cliprange_value,
                                     "vf_coef": self.config.vf_coef, "ratio_threshold": self.config.ratio_threshold},
            "old_logprobs": per_seq(old, mask), "logprobs": per_seq(logprobs.detach(), mask),
            "values": per_seq(values, mask), "vpreds": per_seq(vpreds.detach(), mask), "advantages": per_seq(adv, mask),
            "returns": per_seq(ret, mask),
            "pg_loss": float(pg), "vf_loss": float(stats["loss/value"]), "total": float(stats["loss/total"]),
            "clipfrac": float(stats["policy/clipfrac"]), "vf_clipfrac": float(stats["val/clipfrac"]),
            "approxkl": float(stats["policy/approxkl"]), "policykl": float(stats["policy/policykl"]),
            "grad_logprobs": per_seq(logprobs.grad, mask), "grad_vpreds": per_seq(vpreds.grad, mask)}


def kl_controller_case():
    cfg = PPOConfig(target=6.0)
    ctl = AdaptiveKLController(cfg.init_kl_coef, cfg.target, cfg.horizon)
    steps = [(0.5, 8), (7.0, 8), (12.0, 16), (6.3, 4), (-1.0, 8), (30.0, 10000), (0.0, 2)]
    out = []
    for cur, n in steps:
        ctl.update(cur, n)
        out.append({"current": cur, "n_steps": n, "value": float(ctl.value)})
    return {"init": cfg.init_kl_coef, "target": cfg.target, "horizon": cfg.horizon, "updates": out}


def running_moments_case():
    rm = RunningMoments(types.SimpleNamespace(use_distributed=False))
    eps = torch.finfo(torch.float32).eps
    out = []
    for batch in ([0.5, -1.25, 2.0, 0.75], [3.0, 2.5], [-0.5, 0.25, 1.5, -2.0, 0.0, 1.0], [1.0, 1.0]):
        s = torch.tensor(batch, dtype=torch.float32)
        rm.update(s)
        norm = (s - rm.mean) / (rm.std + eps)  # TRL's step with use_score_scaling and use_score_norm
        out.append({"scores": batch, "mean": float(rm.mean), "std": float(rm.std), "normalised": [float(x) for x in norm]})
    return out


def main():
    T = 10
    spans = [(2, 5), (1, 8), (4, 1), (0, 6)]
    doc = {"source": "trl 0.9.6 PPOTrainer.compute_rewards / compute_advantages / loss, AdaptiveKLController, "
                     "RunningMoments (tests/ref/make_ppo_goldens.py)",
           "defaults": {k: getattr(PPOConfig(), k) for k in ("cliprange", "cliprange_value", "vf_coef", "gamma", "lam",
                                                            "init_kl_coef", "horizon", "ratio_threshold", "kl_penalty",
                                                            "adap_kl_ctrl")},
           "gae": [gae_case("defaults", spans, T, 0.2),
                   gae_case("whiten_rewards", spans, T, 0.2, whiten_rewards=True),
                   gae_case("gamma_lam", spans, T, 0.05, gamma=0.9, lam=0.8)],
           "loss": [loss_case("small_moves", spans, T, 0.05, 0.05),
                    loss_case("clipped", spans, T, 0.4, 0.5),
                    loss_case("ratio_threshold", spans, T, 0.1, 0.1, skip=True)],
           "kl_controller": kl_controller_case(),
           "running_moments": running_moments_case()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ppo.json").write_text(json.dumps(doc, indent=1) + "\n")
    print("wrote", OUT / "ppo.json")


if __name__ == "__main__":
    main()
