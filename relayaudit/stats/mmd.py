"""The MMD two-sample test of Model Equality Testing (Gao, Liang & Guestrin, ICLR 2025).

Samples are (prompt, completion) pairs. The kernel is

    k((x, y), (x', y')) = 1{x = x'} · h(y, y'),     h(y, y') = (1/L) Σ_{l<L} 1{y_l = y'_l}

where y, y' are character or token sequences right-padded with a pad symbol to a common length L (pad
positions that agree count as agreement, so h(y, y) = 1). The statistic is the off-diagonal estimate

    T = S_AA / N_AA + S_BB / N_BB - 2 S_AB / N_AB

with S_AA the kernel summed over ordered same-prompt pairs i != j of baseline samples and N_AA the number
of such pairs (Σ_p m_p(m_p - 1)), S_BB / N_BB likewise for the relay, S_AB / N_AB over same-prompt
baseline x relay pairs (N_AB = Σ_p m_p n_p). This is exactly the statistic of the reference package
`model-equality-testing` (its `mmd_hamming`): each term is the mean similarity of a kind of pair, so T is
"how much more alike answers are within each side than across sides", 0 under the null.

Because the kernel is zero across prompts, everything decomposes into one small Gram matrix per prompt.
The p-value is a permutation p-value, (1 + #{T_b >= T}) / (1 + B), permuting the baseline/relay labels
within each prompt: the prompt sets of the two runs are fixed by design, so only within-prompt
exchangeability holds under the null. (The reference package permutes pooled rows across prompts and
reports #{T_b >= T} / B, which can be 0; bench/mmd_reference.py compares the two.) Given `stop_after`, the
shuffles stop once that many were as large as T, with Besag & Clifford's p-value (relayaudit.stats.montecarlo).

Whitespace is normalised first (runs collapsed, ends stripped): a relay that only strips a leading space
must not be flagged (lesson from the rank-based uniformity test, Zhu et al. 2026).

Vectorised: Gram matrices are built by relayaudit.stats.hamming (and kept per process, so a second pass, other
baselines and the calibration's halves reuse them), and all B permutations of a prompt are scored at once with
matrix products, so 250 vs 250 samples with 1,000 permutations take well under a second.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from relayaudit.stats import memo
from relayaudit.stats.hamming import GramCache, Level, Tokenizer
from relayaudit.stats.montecarlo import permutation_pvalue
from relayaudit.stats.result import StatResult, insufficient

MAX_LENGTH = 2000
MIN_PER_SIDE = 10
_GRAMS = GramCache()


@memo.of_text
def normalise_whitespace(text: str) -> str:
    return " ".join(text.split())


def reset_gram_cache() -> None:
    """Forget every Gram matrix kept (benchmarks time a compare as a fresh process runs it)."""
    _GRAMS.clear()


@dataclass(frozen=True)
class _Prompt:
    gram: NDArray[np.float64]
    is_baseline: NDArray[np.bool_]


def _sums(gram: NDArray[np.float64], masks: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """S_AA, S_BB, S_AB (diagonals excluded) for a batch of baseline masks (batch x n)."""
    others = 1.0 - masks
    weighted = masks @ gram
    full_aa = (weighted * masks).sum(axis=1)
    cross = (weighted * others).sum(axis=1)
    full_bb = gram.sum() - full_aa - 2.0 * cross
    diagonal = np.diag(gram)
    return full_aa - masks @ diagonal, full_bb - others @ diagonal, cross


Statistic = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


def _null(prompts: list[_Prompt], masks: list[NDArray[np.bool_]], statistic: Statistic) -> NDArray[np.float64]:
    """The statistic under each permutation, given each prompt's baseline masks (permutations x n_p)."""
    batch = masks[0].shape[0]
    totals = [np.zeros(batch), np.zeros(batch), np.zeros(batch)]
    for prompt, mask in zip(prompts, masks, strict=True):
        for total, part in zip(totals, _sums(prompt.gram, mask.astype(np.float64)), strict=True):
            total += part
    return statistic(*totals)


def _pooled_statistic(masks: list[NDArray[np.bool_]]) -> Statistic:
    """The statistic when permutations change how many baseline samples each prompt has."""
    counts_a = np.stack([mask.sum(axis=1) for mask in masks], axis=1).astype(np.float64)
    sizes = np.array([mask.shape[1] for mask in masks], dtype=np.float64)
    counts_b = sizes - counts_a
    pairs_aa = (counts_a * (counts_a - 1)).sum(axis=1)
    pairs_bb = (counts_b * (counts_b - 1)).sum(axis=1)
    pairs_ab = (counts_a * counts_b).sum(axis=1)

    def statistic(aa: NDArray[np.float64], bb: NDArray[np.float64], ab: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = aa / pairs_aa + bb / pairs_bb - 2.0 * ab / pairs_ab
        return np.asarray(np.nan_to_num(value, nan=-np.inf), dtype=np.float64)

    return statistic


def mmd_test(
    baseline: Sequence[tuple[Hashable, str]],
    relay: Sequence[tuple[Hashable, str]],
    *,
    level: Level = "char",
    tokenizer: Tokenizer | None = None,
    length: int | None = None,
    permutations: int = 1000,
    permute: Literal["within", "pooled"] = "within",
    rng: np.random.Generator | None = None,
    stop_after: int | None = None,
) -> StatResult:
    """Two-sample MMD test on (prompt, completion) pairs; see the module docstring for the exact method.

    At most `permutations` shuffles, stopping at the `stop_after`-th as large as the observed statistic
    (relayaudit.stats.montecarlo; None draws them all).

    `permute="pooled"` shuffles labels across prompts as the reference package does (for comparison only:
    it assumes prompts were drawn at random, which a fixed suite does not satisfy)."""
    method = f"MMD permutation test, prompt x Hamming kernel on {'tokens' if level == 'token' else 'characters'}"
    if level == "token" and tokenizer is None:
        raise ValueError("token-level MMD needs a tokenizer")
    by_prompt: dict[Hashable, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for prompt, text in baseline:
        by_prompt[prompt][0].append(normalise_whitespace(text))
    for prompt, text in relay:
        by_prompt[prompt][1].append(normalise_whitespace(text))
    shared = {p: sides for p, sides in by_prompt.items() if sides[0] and sides[1]}
    m = sum(len(a) for a, _ in shared.values())
    n = sum(len(b) for _, b in shared.values())
    pairs_aa = sum(len(a) * (len(a) - 1) for a, _ in shared.values())
    pairs_bb = sum(len(b) * (len(b) - 1) for _, b in shared.values())
    pairs_ab = sum(len(a) * len(b) for a, b in shared.values())
    if m < MIN_PER_SIDE or n < MIN_PER_SIDE or not pairs_aa or not pairs_bb:
        return insufficient(
            method, m, n, f"needs at least {MIN_PER_SIDE} samples per side on shared prompts, two or more per prompt"
        )
    if length is None:
        longest = max(len(t) for a, b in shared.values() for t in (*a, *b))
        length = max(1, min(MAX_LENGTH, longest if level == "char" else longest // 2 + 1))
    prompts = []
    for texts_a, texts_b in shared.values():
        mask = np.array([True] * len(texts_a) + [False] * len(texts_b))
        prompts.append(_Prompt(_GRAMS.gram([*texts_a, *texts_b], level, tokenizer, length), mask))

    def statistic(aa: NDArray[np.float64], bb: NDArray[np.float64], ab: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(aa / pairs_aa + bb / pairs_bb - 2.0 * ab / pairs_ab, dtype=np.float64)

    observed_parts = [_sums(p.gram, p.is_baseline[None, :].astype(np.float64)) for p in prompts]
    aa, bb, ab = (sum(parts[i] for parts in observed_parts) for i in range(3))
    observed = float(statistic(aa, bb, ab)[0])  # type: ignore[arg-type]
    generator = rng or np.random.default_rng(0)
    if permute == "within":
        # One stream per prompt, so the k-th shuffle of a prompt is the same however many are drawn at once.
        streams = generator.spawn(len(prompts))

        def draw(count: int) -> NDArray[np.float64]:
            tiles = [np.tile(p.is_baseline, (count, 1)) for p in prompts]
            return _null(prompts, [s.permuted(t, axis=1) for s, t in zip(streams, tiles, strict=True)], statistic)
    else:
        pooled = np.concatenate([p.is_baseline for p in prompts])
        bounds = np.cumsum([0, *(p.is_baseline.size for p in prompts)])

        def draw(count: int) -> NDArray[np.float64]:
            shuffled = generator.permuted(np.tile(pooled, (count, 1)), axis=1)
            masks = [shuffled[:, bounds[i] : bounds[i + 1]] for i in range(len(prompts))]
            return _null(prompts, masks, _pooled_statistic(masks))

    drawn = permutation_pvalue(draw, observed, permutations, stop_after)
    within_a = float(aa[0]) / pairs_aa  # type: ignore[index]
    within_b = float(bb[0]) / pairs_bb  # type: ignore[index]
    across = float(ab[0]) / pairs_ab  # type: ignore[index]
    return StatResult(
        method,
        observed,
        drawn.pvalue,
        observed,
        m,
        n,
        {
            "prompts": len(prompts),
            "length": length,
            "permutations": drawn.drawn,
            "shuffles_as_large": drawn.as_large,
            "stopped_early": drawn.stopped_early,
            "similarity_within_baseline": within_a,
            "similarity_within_relay": within_b,
            "similarity_across": across,
        },
        null_distribution=tuple(drawn.null.tolist()),
    )
