"""Memoised functions of an answer's text, for the work a compare repeats on the same answers.

The split-half calibration compares 20 random halves of the baseline, each twice (a counting pass, then the
permutations), so every answer is whitespace-normalised and has its first word found 40 times over: about
half the calibration's time on a 10,000-answer run before these were kept. Kept only for texts of at most
LONGEST characters and for the last ENTRIES texts, so the memory held stays bounded in a long-running process
(a fleet scheduler) whatever a relay sends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

ENTRIES = 1 << 15
"""More than the answers of the largest runs compared so far (2 x 10,000 in bench/compare_scale.py): a
least-recently-used memo smaller than the answers a calibration cycles through would keep none of them."""
LONGEST = 2000


def of_text(function: Callable[[str], str]) -> Callable[[str], str]:
    """`function`, remembered for texts of at most LONGEST characters."""
    remembered = functools.lru_cache(maxsize=ENTRIES)(function)

    @functools.wraps(function)
    def memoised(text: str) -> str:
        return remembered(text) if len(text) <= LONGEST else function(text)

    return memoised
