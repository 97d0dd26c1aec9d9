"""A small, self-contained speculative-decoding loop in torch, annotated with tracekit.phase.

Two tiny causal transformers with random weights (a draft and a target) share
a realistic vocabulary (32000 by default), so the ``lm_head`` matmul has the
shape of a real one. One decode step is::

    step
      draft            K times: draft forward -> lm_head -> sampler (.item())
      verify           one target forward over the K drafted tokens -> lm_head -> sampler (.tolist())
      candidate        CPU-side acceptance: longest agreeing prefix + the target's bonus token

so per step the trace must hold exactly 1 ``draft``, 1 ``verify``,
1 ``candidate``, K+1 ``lm_head`` and K+1 ``sampler`` ranges (the tests check
this). Runs on the CPU in seconds, and on CUDA when available (``--device``).

Token accounting: every step records ``tracekit.count(drafted=K,
accepted=A, batch_size=1, tokens=A+1)`` (A accepted draft tokens plus the
target's bonus token). Two random tiny models almost never agree, so
``--accept 3,0,4`` plants the acceptance: step i accepts the i-th number of
the list (cycled, capped at K) as if the draft had matched, which makes the
accepted counts known in advance (the tests assert them from the Parquet).

    python samples/spec_decode.py --steps 8 --draft-len 4
    tracekit capture -- python samples/spec_decode.py --steps 8 --draft-len 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

try:
    from tracekit import count, phase
except ImportError:  # run from a checkout without installing tracekit
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from tracekit import count, phase


@dataclass
class Config:
    """Model and loop sizes; defaults keep a CPU step in the tens of milliseconds."""

    vocab: int = 32000
    target_dim: int = 128
    target_layers: int = 2
    draft_dim: int = 64
    draft_layers: int = 1
    heads: int = 4
    max_ctx: int = 96
    prompt_len: int = 16
    draft_len: int = 4
    temperature: float = 0.8
    seed: int = 0
    accept: tuple[int, ...] = ()  # planted accepted lengths per step (cycled); empty: real greedy matching
    top_k: int = 0  # sampler: 0 = full vocabulary, else sample among the top_k logits (torch.topk)


class TinyLM(nn.Module):
    """Decoder-only transformer; logits only for the last ``n`` positions, as servers do."""

    def __init__(self, vocab: int, dim: int, layers: int, heads: int, max_ctx: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(max_ctx, dim)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.max_ctx = max_ctx

    def forward(self, ids: torch.Tensor, n_logits: int) -> torch.Tensor:
        ids = ids[:, -self.max_ctx :]
        t = ids.shape[1]
        h = self.embed(ids) + self.pos(torch.arange(t, device=ids.device))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)
        for blk in self.blocks:
            h = blk(h, src_mask=mask, is_causal=True)
        h = self.norm(h[:, -n_logits:])
        with phase("lm_head"):
            return self.lm_head(h)


def sample(logits: torch.Tensor, temperature: float, gen: torch.Generator, top_k: int = 0) -> torch.Tensor:
    """Temperature sampling (softmax + multinomial) over the full vocabulary, or its ``top_k`` logits."""
    logits = logits.float().reshape(-1, logits.shape[-1])
    if top_k > 0:
        vals, idx = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1)
        probs = torch.softmax(vals / temperature, dim=-1)
        return idx.gather(-1, torch.multinomial(probs, 1, generator=gen)).reshape(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=gen).reshape(-1)


class SpecDecoder:
    """Draft/target pair plus the loop; ``run(steps)`` returns per-run statistics."""

    def __init__(self, cfg: Config, device: str = "cpu") -> None:
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.device = torch.device(device)
        self.target = TinyLM(cfg.vocab, cfg.target_dim, cfg.target_layers, cfg.heads, cfg.max_ctx).to(self.device).eval()
        self.draft = TinyLM(cfg.vocab, cfg.draft_dim, cfg.draft_layers, cfg.heads, cfg.max_ctx).to(self.device).eval()
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)

    def _draft_tokens(self, ctx: list[int]) -> list[int]:
        out: list[int] = []
        for _ in range(self.cfg.draft_len):
            ids = torch.tensor([ctx + out], device=self.device)
            logits = self.draft(ids, 1)
            with phase("sampler"):
                out.append(int(sample(logits[0, -1], self.cfg.temperature, self.gen, self.cfg.top_k).item()))  # host sync per token
        return out

    def _verify(self, ctx: list[int], drafted: list[int]) -> list[int]:
        ids = torch.tensor([ctx + drafted], device=self.device)
        logits = self.target(ids, len(drafted) + 1)
        with phase("sampler"):
            return sample(logits[0], self.cfg.temperature, self.gen, self.cfg.top_k).tolist()

    @staticmethod
    def _accept(drafted: list[int], target: list[int], planted: int | None = None) -> list[int]:
        """Greedy-match acceptance: the drafted prefix the target agrees with, then the target's next token.

        ``planted``: accept exactly that many drafted tokens (capped at K) instead of matching.
        """
        n = 0
        if planted is not None:
            n = max(0, min(planted, len(drafted)))
        else:
            while n < len(drafted) and drafted[n] == target[n]:
                n += 1
        return drafted[:n] + [target[n]]

    @torch.inference_mode()
    def run(self, steps: int, prompt: list[int] | None = None) -> dict[str, Any]:
        cfg = self.cfg
        g = torch.Generator().manual_seed(cfg.seed + 1)
        ctx = prompt or torch.randint(0, cfg.vocab, (cfg.prompt_len,), generator=g).tolist()
        accepted = 0
        per_step: list[int] = []
        t0 = time.perf_counter()
        step_s: list[float] = []
        for i in range(steps):
            ts = time.perf_counter()
            with phase("step"):
                with phase("draft"):
                    drafted = self._draft_tokens(ctx)
                with phase("verify"):
                    target = self._verify(ctx, drafted)
                with phase("candidate"):
                    new = self._accept(drafted, target, cfg.accept[i % len(cfg.accept)] if cfg.accept else None)
                    ctx = (ctx + new)[-cfg.max_ctx :]
                    accepted += len(new) - 1
                    per_step.append(len(new) - 1)
                count(drafted=len(drafted), accepted=len(new) - 1, batch_size=1, tokens=len(new))
            step_s.append(time.perf_counter() - ts)
        return {
            "steps": steps,
            "draft_len": cfg.draft_len,
            "accepted_draft_tokens": accepted,
            "accepted_per_step": per_step,
            "total_s": time.perf_counter() - t0,
            "step_ms_median": 1e3 * sorted(step_s)[len(step_s) // 2] if step_s else 0.0,
            "pid": os.getpid(),
            "device": str(self.device),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8, help="decode steps (default 8)")
    ap.add_argument("--draft-len", type=int, default=4, help="draft tokens per step, K (default 4)")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first, outside any step range (default 1)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: tiny matmuls gain nothing from more, and timings stay stable on busy machines; 0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top-k", type=int, default=0, help="sampler top-k (default 0: the full vocabulary)")
    ap.add_argument("--accept", default="",
                    help="planted accepted draft tokens per step, comma-separated and cycled (e.g. 3,0,4); default: real matching")
    ap.add_argument("--exit-code", type=int, default=0, help="exit with this code after the run (for tests)")
    ap.add_argument("--json", action="store_true", help="print the statistics as JSON")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    planted = tuple(int(x) for x in a.accept.split(",") if x.strip())
    dec = SpecDecoder(Config(vocab=a.vocab, draft_len=a.draft_len, seed=a.seed, accept=planted, top_k=a.top_k), a.device)
    if a.warmup:
        with torch.inference_mode():  # no phase("step"): warm-up must not count towards --steps
            dec._verify(list(range(8)), dec._draft_tokens(list(range(8))))
    stats = dec.run(a.steps)
    print(json.dumps(stats) if a.json else
          f"spec_decode: {stats['steps']} steps, K={stats['draft_len']}, accepted {stats['accepted_draft_tokens']} draft tokens, "
          f"median step {stats['step_ms_median']:.2f} ms on {stats['device']}")
    return a.exit_code


if __name__ == "__main__":
    sys.exit(main())
