"""Planning: how many samples does a test need to detect a given effect with a given power?

Two estimates, both by Monte Carlo simulation (exact, no normal approximations):

- Distribution (MMD): simulated on a baseline run. The "relay" is built from the baseline's own answers
  with a share `effect` of them replaced by answers to *other* prompts — answers that are fluent but come
  from a different distribution, as when part of the traffic goes to another model. Each repetition draws
  disjoint baseline and relay samples of `n` answers per prompt and runs the real test.
- Paired accuracy (McNemar): items answered right by the official model with probability `accuracy`;
  the relay loses `drop` of accuracy (right answers turned wrong) and both sides flip a further `noise`
  share of items at random (sampling noise at T > 0). The real exact test is run on each repetition.

Power = share of repetitions with p < alpha. Alpha here is the per-test level; an audit with m checks
applies Holm, so use alpha / m for the worst case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np

from relayaudit.stats.mmd import mmd_test
from relayaudit.stats.paired import mcnemar_exact


def mmd_power(
    samples: Sequence[tuple[Hashable, str]],
    *,
    per_prompt: int,
    effect: float,
    alpha: float,
    repetitions: int = 100,
    permutations: int = 200,
    seed: int = 0,
) -> float | None:
    """Estimated power at `per_prompt` answers per prompt per side; None if the baseline has too few answers."""
    by_prompt: dict[Hashable, list[str]] = defaultdict(list)
    for prompt, text in samples:
        by_prompt[prompt].append(text)
    pools = [texts for texts in by_prompt.values() if len(texts) >= 2 * per_prompt]
    if len(pools) < 2 or per_prompt < 2:
        return None
    rng = np.random.default_rng(seed)
    rejections = 0
    for _ in range(repetitions):
        baseline: list[tuple[Hashable, str]] = []
        relay: list[tuple[Hashable, str]] = []
        for index, texts in enumerate(pools):
            order = rng.permutation(len(texts))
            baseline += [(index, texts[i]) for i in order[:per_prompt]]
            for i in order[per_prompt : 2 * per_prompt]:
                if rng.random() < effect:
                    other = pools[(index + 1 + int(rng.integers(len(pools) - 1))) % len(pools)]
                    relay.append((index, other[int(rng.integers(len(other)))]))
                else:
                    relay.append((index, texts[i]))
        result = mmd_test(baseline, relay, permutations=permutations, rng=rng)
        rejections += result.pvalue is not None and result.pvalue < alpha
    return rejections / repetitions


def mcnemar_power(
    *,
    items: int,
    accuracy: float,
    drop: float,
    alpha: float,
    noise: float = 0.05,
    repetitions: int = 2000,
    seed: int = 0,
) -> float:
    """Estimated power of the exact McNemar test with `items` paired known-answer items."""
    rng = np.random.default_rng(seed)
    rejections = 0
    for _ in range(repetitions):
        truth = rng.random(items) < accuracy
        baseline = truth ^ (rng.random(items) < noise)
        relay = truth & ~(rng.random(items) < (drop / accuracy if accuracy else 0.0))
        relay = relay ^ (rng.random(items) < noise)
        pvalue = mcnemar_exact(baseline.tolist(), relay.tolist()).pvalue
        rejections += pvalue is not None and pvalue < alpha
    return rejections / repetitions
