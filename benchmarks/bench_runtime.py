"""Runtime overhead: the reference program (spec section 1) against plain torch.

One iteration = ``rsample`` of the trajectory and target, ``log_joint`` of both, and
``backward``, at batch 64 and length 128. The plain-torch model shares the compiled
model's parameters, so both do the same arithmetic; the ratio is the runtime's
overhead. Run: ``python benchmarks/bench_runtime.py [--batch 64 --length 128]``.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "runtime"))
from irkit import reference_model  # noqa: E402

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class PlainRNN:
    """The reference model written directly in torch, on the compiled model's weights."""

    def __init__(self, model: torch.nn.Module) -> None:
        p = dict(model.named_parameters())
        self.emb = p["_step_h.parts.0.weight"]
        cell = "_step_h.parts.1.cell.source.net.layers."
        head = "_step_next_token.source.net.layers."
        self.w1, self.b1 = p[cell + "0.weight"], p[cell + "0.bias"]
        self.w2, self.b2 = p[cell + "1.weight"], p[cell + "1.bias"]
        self.v1, self.c1 = p[head + "0.weight"], p[head + "0.bias"]
        self.v2, self.c2 = p[head + "1.weight"], p[head + "1.bias"]
        self.scale = 0.1

    def loc(self, inp: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.tanh(F.linear(inp, self.w1, self.b1)), self.w2, self.b2)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.tanh(F.linear(h, self.v1, self.c1)), self.v2, self.c2)

    def rsample(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.embedding(tokens, self.emb)
        h = x.new_zeros(x.shape[0], self.w2.shape[0])
        hs = []
        for x_t in x.unbind(1):  # one backward node for all steps, unlike x[:, t]
            loc = self.loc(torch.cat((x_t, h), dim=-1))
            h = loc + self.scale * torch.randn_like(loc)
            hs.append(h)
        traj = torch.stack(hs, dim=1)
        y = torch.distributions.Categorical(logits=self.logits(h)).sample()
        return traj, y

    def log_joint(self, tokens, traj, y) -> torch.Tensor:
        x = F.embedding(tokens, self.emb)
        h_prev = torch.cat((traj.new_zeros(traj[:, :1].shape), traj[:, :-1]), dim=1)
        z = (traj - self.loc(torch.cat((x, h_prev), dim=-1))) / self.scale
        lp_h = (-0.5 * z * z - math.log(self.scale) - _HALF_LOG_2PI).sum()
        lp_y = torch.log_softmax(self.logits(traj[:, -1]), dim=-1).gather(-1, y[:, None]).sum()
        return lp_h + lp_y


def bench(fns: list, reps: int) -> list[tuple[float, float]]:
    """Best wall and best process-CPU time of each function, alternating them every
    repetition so that a busy neighbour on the (shared) machine slows all alike; CPU
    time is the steadier figure under load."""
    for fn in fns:
        fn()  # warm-up
    best = [(math.inf, math.inf)] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            w, c = time.perf_counter() - w0, time.process_time() - c0
            best[i] = (min(best[i][0], w), min(best[i][1], c))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1: steadiest CPU times)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = reference_model()
    plain = PlainRNN(model)
    tokens = torch.randint(0, 256, (args.batch, args.length))

    def compiled() -> None:
        # the protocol's entry points: draw the latent site, draw the observed site
        # given it (substitution), then the exact joint density and its gradient
        model.zero_grad(set_to_none=True)
        sites = {"h": model._step_h.rsample(tokens)}
        sites["next_token"] = model.rsample(tokens, {"h": sites["h"]})
        model.log_joint(tokens, sites).backward()

    def compiled_trace() -> None:
        # the same through ``trace`` (which also scores every site) and ``log_joint``
        model.zero_grad(set_to_none=True)
        sites = model.trace(tokens)
        model.log_joint(tokens, {k: s.trace for k, s in sites.items()}).backward()

    def handwritten() -> None:
        model.zero_grad(set_to_none=True)
        traj, y = plain.rsample(tokens)
        plain.log_joint(tokens, traj, y).backward()

    (p_w, p_c), (q_w, q_c), (t_w, t_c) = bench([handwritten, compiled, compiled_trace], args.reps)
    print(
        f"machine: {cpu_name()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )
    print(
        f"batch {args.batch}, length {args.length}: rsample + log_joint + backward "
        f"(best of {args.reps}; wall / process CPU)"
    )
    print(f"hand-written torch:             {p_w * 1e3:8.2f} ms / {p_c * 1e3:8.2f} ms")
    for label, w, c in (
        ("compiled (rsample, log_joint): ", q_w, q_c),
        ("compiled (trace, log_joint):   ", t_w, t_c),
    ):
        print(
            f"{label} {w * 1e3:8.2f} ms / {c * 1e3:8.2f} ms   "
            f"ratio {w / p_w:.2f}x wall, {c / p_c:.2f}x CPU"
        )


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
