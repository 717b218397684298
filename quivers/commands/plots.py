"""Plots of a fit, written with matplotlib (Agg backend: no display needed).

SVI: the loss (negative ELBO) per step, on a log axis when its largest value is
more than 20 times its smallest, with a moving average. NUTS: for up to six blocks (sites first, then
weights; the first coordinate of each) a trace plot per chain and a rank plot (the
histogram of each chain's ranks among all draws: flat when the chains agree).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quivers.commands import CliError

MAX_BLOCKS = 6


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("plots need matplotlib: python3 -m pip install matplotlib") from None
    return plt


def _save(fig: Any, path: str | Path) -> None:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=110)
    except (OSError, ValueError) as exc:
        raise CliError(f"{p}: cannot write the plot: {exc}") from None


def loss_plot(path: str | Path, losses: list[float], title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    steps = list(range(1, len(losses) + 1))
    ax.plot(steps, losses, color="#94a3b8", linewidth=1.0, label="loss")
    window = max(1, len(losses) // 20)
    if window > 1:  # centred: the average lines up with the steps it averages
        half = window // 2
        spans = [losses[max(0, i - half) : i + half + 1] for i in range(len(losses))]
        smooth = [sum(span) / len(span) for span in spans]
        ax.plot(steps, smooth, color="#1d4ed8", linewidth=2.0, label=f"mean of {window} steps")
    positive = [v for v in losses if v > 0]
    if positive and len(positive) == len(losses) and max(positive) / min(positive) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (negative ELBO)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def nuts_plot(path: str | Path, samples: dict[str, Any], title: str) -> list[str]:
    """Trace and rank plots; returns the names of the blocks shown."""
    import torch

    plt = _pyplot()
    blocks = [
        (name, draws)
        for name, draws in samples.items()
        if isinstance(draws, torch.Tensor) and draws.dim() >= 2 and draws.shape[1] > 0
    ]
    blocks.sort(key=lambda block: "." in block[0])  # sites first, then weights (a.b.c)
    blocks = blocks[:MAX_BLOCKS]
    rows = max(len(blocks), 1)
    fig, axes = plt.subplots(rows, 2, figsize=(10, 2.2 * rows + 0.6), squeeze=False)
    if not blocks:
        axes[0][0].text(0.5, 0.5, "no draws", ha="center", va="center")
    colors = ["#1d4ed8", "#b8660b", "#047857", "#be123c", "#6d28d9", "#0e7490"]
    for row, (name, draws) in enumerate(blocks):
        flat = draws.reshape(draws.shape[0], draws.shape[1], -1)[:, :, 0].float()
        chains, n = flat.shape
        label = name if draws[0, 0].numel() == 1 else f"{name}[0]"
        trace_ax, rank_ax = axes[row]
        for c in range(chains):
            trace_ax.plot(
                range(n),
                flat[c].tolist(),
                color=colors[c % len(colors)],
                lw=0.9,
                label=f"chain {c + 1}",
            )
        trace_ax.set_ylabel(label, fontsize=8)
        trace_ax.grid(True, alpha=0.3)
        ranks = flat.flatten().argsort().argsort().reshape(chains, n).float()
        bins = max(4, min(20, n // 5))
        edges = torch.linspace(0, chains * n, bins + 1).tolist()
        for c in range(chains):
            counts, _ = torch.histogram(ranks[c], bins=torch.tensor(edges))
            rank_ax.stairs(
                counts.tolist(), edges, color=colors[c % len(colors)], lw=1.4, baseline=None
            )
        rank_ax.axhline(n / bins, color="#64748b", ls="--", lw=0.8)
        rank_ax.grid(True, alpha=0.3)
    axes[0][0].set_title("trace (sampling phase)")
    axes[0][1].set_title("rank plot (flat = chains agree)")
    axes[-1][0].set_xlabel("draw")
    axes[-1][1].set_xlabel("rank among all draws")
    if blocks and blocks[0][1].shape[0] > 1:
        axes[0][0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return [name for name, _ in blocks]
