"""A compiled ``deduction`` block: an ``nn.Module`` whose parameters are the learnable
rule and lexicon weights.

Weights are attached to the position-free rule instances of
``quivers.core.deduction.grammar``: an instance of a ``#[learnable]`` rule has its
rule's logit, an unannotated one the fixed logit 0, and the logits of the instances
and lexicon entries that conclude the same label are normalised together (a softmax),
so the grammar is a generative model and ``log_prob`` a log probability; a label
whose group holds no learnable weight is not normalised (its members weigh the
semiring's one). ``Counting`` and ``Boolean`` ignore weights altogether.

The value of a sentence is computed by the dense CKY engine when every rule is a CKY
step, otherwise over the sentence's derivation hypergraph; both are exact.
"""

from __future__ import annotations

import difflib
import math
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from quivers.core.deduction.chart import DeductionError, saturate
from quivers.core.deduction.grammar import analyse
from quivers.core.deduction.system import SPAN, DeductionSystem
from quivers.core.deduction.terms import show
from quivers.runtime.deduction import hyper
from quivers.runtime.deduction.cky import CKYTensors
from quivers.runtime.deduction.derivation import Derivation, draw, k_best
from quivers.runtime.deduction.semirings import LogProb, Semiring, semiring
from quivers.runtime.errors import QvrBuildError, QvrDataError

# Dense CKY holds a (C * C, C) binary table; beyond this many cells the hypergraph
# engine (which only touches the instances that exist) is used instead.
DENSE_LIMIT = 8_000_000
CACHE_SIZE = 4096

Words = tuple[str, ...]


class Deduction(nn.Module):
    """Weighted deduction over chart items (Goodman 1999; Eisner & Blatz 2007)."""

    syn_of: torch.Tensor
    syn_param: torch.Tensor
    syn_group: torch.Tensor
    group_normalised: torch.Tensor

    def __init__(self, system: DeductionSystem, engine: str = "auto") -> None:
        super().__init__()
        try:
            grammar = analyse(system)
        except DeductionError as err:
            raise QvrBuildError(str(err)) from None
        if not grammar.goal_labels:
            raise QvrBuildError(
                f"deduction '{system.name}': no sentence derives the start symbol "
                f"'{system.start}' (no rule concludes a span of it and no lexicon entry has it)"
            )
        self.system = system
        self.grammar = grammar
        self.semiring: Semiring = semiring(system.semiring)
        self.vocabulary: tuple[str, ...] = system.vocabulary
        self._entries: dict[str, list[int]] = {}
        for k, e in enumerate(system.lexicon):
            self._entries.setdefault(e.word, []).append(k)
        self.weights = nn.Parameter(torch.zeros(grammar.n_params))
        self.register_buffer("syn_of", torch.tensor(grammar.syn_of, dtype=torch.long))
        self.register_buffer(
            "syn_param",
            torch.tensor([-1 if p is None else p for p in grammar.syn_param], dtype=torch.long),
        )
        self.register_buffer("syn_group", torch.tensor(grammar.syn_group, dtype=torch.long))
        self.register_buffer("group_normalised", torch.tensor(grammar.normalised, dtype=torch.bool))
        plan = grammar.cky
        dense = plan is not None and len(plan.categories) ** 3 <= DENSE_LIMIT
        if engine == "cky" and not dense:
            raise QvrBuildError(f"deduction '{system.name}': its rules are not all CKY steps")
        self.engine = "cky" if dense and engine in ("auto", "cky") else "hypergraph"
        self._cky: CKYTensors | None = None
        if self.engine == "cky" and plan is not None:
            goal_cats = [k for k, c in enumerate(plan.categories) if c[0] == system.start]
            self._cky = CKYTensors(plan, len(self.vocabulary), goal_cats)
        self._charts: OrderedDict[tuple[Words, bool], hyper.Grounded] = OrderedDict()
        self._plans: OrderedDict[tuple[Words, ...], hyper.Plan] = OrderedDict()

    def extra_repr(self) -> str:
        s = self.system
        return (
            f"name={s.name!r}, semiring={s.semiring}, start={s.start}, depth={s.depth}, "
            f"rules={len(s.rules)}, lexicon={len(s.lexicon)}, engine={self.engine}"
        )

    @property
    def weight_names(self) -> tuple[str, ...]:
        return self.system.weight_names

    # -- weights --------------------------------------------------------------------

    def instance_log_weights(self, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The normalised log weight of every rule instance and lexicon entry."""
        w = self.weights if weights is None else weights
        param = self.syn_param
        if w.numel() == 0:
            raw = torch.zeros(param.shape, dtype=w.dtype, device=w.device)
        else:
            raw = torch.where(param >= 0, w[param.clamp(min=0)], torch.zeros((), dtype=w.dtype))
        group = self.syn_group
        log_z = LogProb().scatter_sum(raw, group, len(self.grammar.normalised))
        normalised = self.group_normalised[group]
        syn = torch.where(normalised, raw - log_z[group], torch.zeros_like(raw))
        return syn[self.syn_of]

    def rule_probabilities(self) -> dict[str, float]:
        """Every rule's and lexicon entry's normalised probability, by name; a rule
        with several instances lists each as ``name -> label``."""
        with torch.no_grad():
            lw = self.instance_log_weights().tolist()
        out: dict[str, float] = {}
        g = self.grammar
        seen: set[int] = set()
        for n, inst in enumerate(g.instances):
            if g.syn_of[n] in seen:  # another form of the same expansion
                continue
            seen.add(g.syn_of[n])
            if inst.rule is not None:
                rule = self.system.rules[inst.rule]
                many = sum(1 for i in g.instances if i.rule == inst.rule) > 1
                name = f"{rule.name} -> {show(g.labels[inst.label])}" if many else rule.name
            else:
                assert inst.entry is not None
                e = self.system.lexicon[inst.entry]
                name = f'"{e.word}" : {show(e.category)}'
            out[name] = out.get(name, 0.0) + math.exp(lw[n])
        return out

    # -- scoring ----------------------------------------------------------------------

    def inside(
        self,
        sentences: Any,
        weights: torch.Tensor | None = None,
        semiring: str | None = None,
    ) -> torch.Tensor:
        """The semiring value of the start symbol over each whole sentence, (batch,),
        in the semiring's carrier (log space for LogProb and Viterbi)."""
        batch, _ = self._encode(sentences)
        sr = self.semiring if semiring is None else _semiring_named(semiring)
        inst_w = sr.weight(self.instance_log_weights(weights))
        return self._inside_words(sr, inst_w, batch)

    def log_prob(self, sentences: Any, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The log of :meth:`inside`: 0-d for one sentence, (batch,) for several."""
        batch, single = self._encode(sentences)
        sr = self.semiring
        value = sr.to_log(
            self._inside_words(sr, sr.weight(self.instance_log_weights(weights)), batch)
        )
        return value[0] if single else value

    def forward(self, sentences: Any) -> torch.Tensor:
        return self.log_prob(sentences)

    def _inside_words(self, sr: Semiring, inst_w: torch.Tensor, batch: list[Words]) -> torch.Tensor:
        if self._cky is not None:
            ids, lengths = self._ids(batch)
            return self._cky.inside(sr, inst_w, ids, lengths)
        return hyper.inside(sr, inst_w, self._plan(batch))

    # -- derivations ---------------------------------------------------------------

    def parse(self, sentence: Any, k: int = 1) -> Derivation | list[Derivation]:
        """The best derivation (``k=1``) or the ``k`` best, best first, by normalised
        log weight. A sentence with no derivation of the start symbol is an error."""
        if k < 1:
            raise ValueError(f"parse: k must be at least 1, got {k}")
        batch, single = self._encode(sentence)
        if not single:
            raise QvrDataError(f"deduction '{self.system.name}': parse takes one sentence")
        g = self._ground(batch[0])
        with torch.no_grad():
            log_w = self.instance_log_weights().tolist()
        found = k_best(self.system, g, log_w, k)
        if not found:
            raise QvrDataError(
                f"deduction '{self.system.name}': no derivation of {self.system.start} spans "
                f"the sentence {' '.join(batch[0])!r}"
            )
        return found[0] if k == 1 else found

    def sample(
        self,
        length: int | None = None,
        n: int = 1,
        seed: int | None = None,
        max_length: int = 12,
    ) -> list[list[str]]:
        """``n`` sentences from the grammar's distribution: of exactly ``length`` words,
        or (``length=None``) of at most ``max_length`` words, renormalised over those
        lengths. Exact: lengths are drawn from their inside totals, then derivations
        top-down from the inside values of an any-word chart."""
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        with torch.no_grad():
            log_w_t = self.instance_log_weights().double()
            log_w = log_w_t.tolist()
            if length is not None:
                if length < 1:
                    raise ValueError(f"sample: length must be at least 1, got {length}")
                lengths = [length] * n
            else:
                if max_length < 1:
                    raise ValueError(f"sample: max_length must be at least 1, got {max_length}")
                totals = [self._any_total(L, log_w_t) for L in range(1, max_length + 1)]
                t = torch.tensor(totals, dtype=torch.float64)
                if not bool(torch.isfinite(t).any()):
                    raise QvrDataError(
                        f"deduction '{self.system.name}' derives no sentence of at most "
                        f"{max_length} words"
                    )
                probs = torch.softmax(t, 0)
                lengths = [1 + int(i) for i in torch.multinomial(probs, n, True, generator=gen)]
            out = []
            inside_of: dict[int, list[float]] = {}
            for L in lengths:
                g = self._ground(("",) * L, any_word=True)
                if L not in inside_of:
                    p = hyper.plan([g])
                    vals = hyper.values(LogProb(), log_w_t, p).tolist()
                    inside_of[L] = [vals[p.position[0][i]] for i in range(len(g.chart.items))]
                inside = inside_of[L]
                if all(inside[i] == -math.inf for i in g.goals):
                    raise QvrDataError(
                        f"deduction '{self.system.name}' derives no sentence of {L} words"
                    )
                try:
                    out.append(draw(self.system, g, log_w, inside, L, gen))
                except ValueError as err:
                    raise QvrDataError(str(err)) from None
            return out

    def _any_total(self, length: int, log_w: torch.Tensor) -> float:
        g = self._ground(("",) * length, any_word=True)
        return float(hyper.inside(LogProb(), log_w, hyper.plan([g]))[0])

    # -- input ---------------------------------------------------------------------

    def _encode(self, sentences: Any) -> tuple[list[Words], bool]:
        """(the batch as word tuples, whether one sentence was given)."""
        name = self.system.name
        if isinstance(sentences, torch.Tensor):
            if sentences.dim() == 1:
                return [self._from_ids(sentences, 0)], True
            if sentences.dim() == 2:
                return [self._from_ids(row, b) for b, row in enumerate(sentences)], False
            raise QvrDataError(
                f"deduction '{name}': expected token ids of shape (T,) or (batch, T), "
                f"got shape {tuple(sentences.shape)}"
            )
        if isinstance(sentences, str):
            raise QvrDataError(
                f"deduction '{name}': a sentence is a list of words, got the string "
                f"{sentences!r} (split it first)"
            )
        seq = list(sentences)
        if not seq:
            raise QvrDataError(f"deduction '{name}': the sentence is empty; give at least one word")
        if all(isinstance(w, str) for w in seq):
            return [self._checked(tuple(seq), 0)], True
        batch = []
        for b, s in enumerate(seq):
            if isinstance(s, torch.Tensor):
                if s.dim() != 1:
                    raise QvrDataError(
                        f"deduction '{name}': sentence {b}: expected token ids of shape (T,), "
                        f"got shape {tuple(s.shape)}"
                    )
                batch.append(self._from_ids(s, b))
            elif isinstance(s, str):
                raise QvrDataError(
                    f"deduction '{name}': sentence {b} is the string {s!r}; a sentence is a "
                    "list of words"
                )
            else:
                batch.append(self._checked(tuple(s), b))
        return batch, False

    def _checked(self, words: Words, b: int) -> Words:
        name = self.system.name
        if not words:
            raise QvrDataError(f"deduction '{name}': sentence {b} is empty; give at least one word")
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise QvrDataError(
                    f"deduction '{name}': sentence {b}, word {i}: expected a string, "
                    f"got {type(w).__name__}"
                )
            if w not in self._entries:
                near = difflib.get_close_matches(w, self.vocabulary, n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                raise QvrDataError(
                    f"deduction '{name}': sentence {b}, word {i}: '{w}' is not in the lexicon{hint}"
                )
        return words

    def _from_ids(self, ids: torch.Tensor, b: int) -> Words:
        name = self.system.name
        if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise QvrDataError(
                f"deduction '{name}': sentence {b}: expected integer token ids, got {ids.dtype}"
            )
        v = len(self.vocabulary)
        bad = (ids < 0) | (ids >= v)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise QvrDataError(
                f"deduction '{name}': sentence {b}, word {i}: token id {int(ids[i])} is "
                f"outside the vocabulary of {v} words"
            )
        return self._checked(tuple(self.vocabulary[int(t)] for t in ids), b)

    def _ids(self, batch: list[Words]) -> tuple[torch.Tensor, torch.Tensor]:
        index = {w: k for k, w in enumerate(self.vocabulary)}
        longest = max(len(s) for s in batch)
        pad = len(self.vocabulary)
        rows = [[index[w] for w in s] + [pad] * (longest - len(s)) for s in batch]
        return torch.tensor(rows, dtype=torch.long), torch.tensor([len(s) for s in batch])

    # -- charts --------------------------------------------------------------------

    def _ground(self, words: Words, any_word: bool = False) -> hyper.Grounded:
        key = (words, any_word)
        got = self._charts.get(key)
        if got is not None:
            self._charts.move_to_end(key)
            return got
        s = self.system
        entries = range(len(s.lexicon))
        seeds = [
            (s.seed(s.lexicon[k], i, i + 1), k)
            for i, w in enumerate(words)
            for k in (entries if any_word else self._entries[w])
        ]
        try:
            chart = saturate(s, seeds)
            level = chart.levels(s)
        except DeductionError as err:
            raise QvrDataError(str(err)) from None
        g = self.grammar
        n = len(words)
        grounded = hyper.Grounded(
            chart,
            level,
            [g.instance_index[(e.rule, e.key)] for e in chart.edges],
            [g.entry_instance(k) for _, k in chart.axioms],
            [
                i
                for i, it in enumerate(chart.items)
                if isinstance(it, tuple)
                and it[0] == SPAN
                and len(it) > 3
                and it[1] == 0
                and it[2] == n
                and it[3] == s.start
            ],
        )
        self._charts[key] = grounded
        if len(self._charts) > CACHE_SIZE:
            self._charts.popitem(last=False)
        return grounded

    def _plan(self, batch: list[Words]) -> hyper.Plan:
        key = tuple(batch)
        got = self._plans.get(key)
        if got is None:
            got = hyper.plan([self._ground(s) for s in batch])
            self._plans[key] = got
            if len(self._plans) > 16:
                self._plans.popitem(last=False)
        return got


def _semiring_named(name: str) -> Semiring:
    from quivers.core.deduction.system import SEMIRINGS

    if name not in SEMIRINGS:
        raise ValueError(
            f"unknown semiring '{name}'; expected one of {sorted(set(SEMIRINGS.values()))}"
        )
    return semiring(SEMIRINGS[name])
