"""The MMD test's kernel on answers: answers as padded integer rows, their Hamming Gram matrix, and a
per-process cache of Gram matrices that also serves any subset of answers it has seen.

h(y, y') is the share of the L aligned positions at which two right-padded rows agree (pads that agree count),
so h(y, y) = 1. Building the Gram matrix of a prompt's answers is the costly part of the MMD test, and a
compare builds the same ones more than once:

- a second pass, when Holm needs more permutations than the first drew;
- `identify`, which compares one relay run with many baselines;
- the split-half calibration, whose halves of a baseline prompt are subsets of answers the comparison itself
  already held.

A Gram matrix for a subset at a length L no longer than the kept one's L' is exact arithmetic, not an
approximation: when no answer of the subset was cut at L, the positions from L to L' are pads in every row of
it, so agreements at L' are agreements at L plus (L' - L).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

Level = Literal["char", "token"]
PAD = -1
GRAM_BLOCK = 8_000_000
"""Bytes of the intermediate `agreements` holds at once (boolean comparisons, or a block's 0/1 matrix)."""


class Tokenizer(Protocol):
    """Anything that turns text into token ids (relayaudit.tokens.Tokenizer is one): stats/ imports nothing
    of the project, so the MMD test names only what it uses."""

    def encode(self, text: str) -> list[int]: ...


def encoded(
    texts: Sequence[str], level: Level, tokenizer: Tokenizer | None, length: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Sequences as integer rows right-padded with PAD to `length` (longer ones are cut), and each sequence's
    length before the cut."""
    rows = np.full((len(texts), length), PAD, dtype=np.int64)
    lengths = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        if level == "token":
            if tokenizer is None:
                raise ValueError("token-level MMD needs a tokenizer")
            codes = tokenizer.encode(text)
            lengths[i] = len(codes)
            rows[i, : min(len(codes), length)] = codes[:length]
        else:
            kept = text[:length]
            lengths[i] = len(text[: length + 1])  # one more than fits tells a cut answer
            rows[i, : len(kept)] = np.frombuffer(kept.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return rows, lengths


def encode(texts: Sequence[str], level: Level, tokenizer: Tokenizer | None, length: int) -> NDArray[np.int64]:
    """Sequences as integer rows right-padded with PAD to `length` (longer ones are cut)."""
    return encoded(texts, level, tokenizer, length)[0]


def agreements(rows: NDArray[np.int64]) -> NDArray[np.int64]:
    """For every pair of rows, the number of positions at which they agree (a pad agrees with a pad).

    The symbols are recoded densely first (a prompt's answers use a few hundred distinct characters or tokens
    at most). Then, a block of positions at a time: where the block has few distinct symbols per position, as
    answers to one prompt have, each row becomes a 0/1 vector over the (position, symbol) pairs the block
    holds, and the agreements are one matrix product (exact: small integer counts in float32); where it has
    many, the positions are compared pair by pair, as one-byte codes where they fit."""
    n, length = rows.shape
    agree = np.zeros((n, n), dtype=np.int64)
    if not n or not length:
        return agree
    codes, symbols = _recoded(rows)
    span = max(1, min(GRAM_BLOCK // (4 * n * SYMBOLS_PER_POSITION), PAIR_CELLS // symbols))
    for start in range(0, length, span):
        agree += _block_agreements(codes[:, start : start + span], symbols)
    return agree


SYMBOLS_PER_POSITION = 32
"""Above this many distinct symbols per position a block is compared pair by pair: the product's cost grows
with the pairs, the comparisons' does not (measured: break-even near 40)."""
PAIR_CELLS = 4_000_000
"""Cells of the table that numbers a block's (position, symbol) pairs."""


def _recoded(rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], int]:
    """The rows with each symbol (pads included) replaced by its rank among the symbols present, and how many
    there are: a lookup table over the symbol values, linear where sorting them was half the time."""
    shifted = rows - rows.min()
    present = np.zeros(int(shifted.max()) + 1, dtype=bool)
    present[shifted] = True
    rank = np.cumsum(present) - 1
    return rank[shifted], int(rank[-1]) + 1


def _block_agreements(codes: NDArray[np.int64], symbols: int) -> NDArray[np.int64]:
    n, span = codes.shape
    pairs = codes + np.arange(span) * symbols  # (position, symbol) -> one number
    present = np.zeros(span * symbols, dtype=bool)
    present[pairs] = True
    columns = int(present.sum())
    if columns <= SYMBOLS_PER_POSITION * span:
        onehot = np.zeros((n, columns), dtype=np.float32)
        onehot[np.arange(n)[:, None], (np.cumsum(present) - 1)[pairs]] = 1.0
        return np.asarray(np.rint(onehot @ onehot.T), dtype=np.int64)
    narrow = codes.astype(np.uint8 if symbols <= 256 else np.int32)
    agree = np.zeros((n, n), dtype=np.int64)
    step = max(1, GRAM_BLOCK // (n * n))
    for start in range(0, span, step):
        part = narrow[:, start : start + step]
        agree += (part[:, None, :] == part[None, :, :]).sum(axis=2, dtype=np.int64)
    return agree


def hamming_gram(rows: NDArray[np.int64]) -> NDArray[np.float64]:
    """h(y_i, y_j) for all pairs: the share of aligned positions that agree."""
    return np.asarray(agreements(rows) / max(rows.shape[1], 1), dtype=np.float64)


@dataclass(frozen=True)
class _Kept:
    agree: NDArray[np.int64]
    length: int
    row_of: dict[str, int]
    """Each distinct answer's row (identical answers have identical rows)."""
    lengths: NDArray[np.int64]
    """Each row's length before the cut."""


class GramCache:
    """Gram matrices computed in this process, by the answers, level, tokenizer and length they were computed
    from, up to MAX_BYTES of agreement counts (oldest dropped first); see the module docstring. Safe to share
    between threads (a fleet without analysis workers analyses in threads): the bookkeeping is locked, the
    computing is not."""

    MAX_BYTES = 256_000_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._holding: dict[Hashable, list[Hashable]] = {}
        """(level, tokenizer, answer) -> the keys of the kept matrices that hold that answer."""
        self._bytes = 0

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._holding.clear()
            self._bytes = 0

    def gram(self, texts: Sequence[str], level: Level, tokenizer: Tokenizer | None, length: int) -> NDArray[np.float64]:
        key = (level, tokenizer, length, tuple(texts))  # the tokenizer itself: an id could be reused
        try:
            hash(key)
        except TypeError:  # an unhashable tokenizer: computed, not kept
            return hamming_gram(encode(texts, level, tokenizer, length))
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return np.asarray(kept.agree / max(length, 1), dtype=np.float64)
            derived = self._from_kept(texts, level, tokenizer, length)
        if derived is not None:
            return derived
        rows, lengths = encoded(texts, level, tokenizer, length)
        kept = _Kept(agreements(rows), length, {t: i for i, t in enumerate(texts)}, lengths)
        with self._lock:
            self._keep(key, kept, level, tokenizer)
        return np.asarray(kept.agree / max(length, 1), dtype=np.float64)

    def _from_kept(
        self, texts: Sequence[str], level: Level, tokenizer: Tokenizer | None, length: int
    ) -> NDArray[np.float64] | None:
        if not texts:
            return None
        for key in reversed(self._holding.get((level, tokenizer, texts[0]), [])):
            kept = self._kept[key]
            if kept.length < length:
                continue
            found = [kept.row_of.get(t) for t in texts]
            if any(i is None for i in found):
                continue
            rows = np.array(found, dtype=np.int64)
            if kept.length != length and int(kept.lengths[rows].max()) > length:
                continue  # an answer cut at `length` would count differently
            agree = kept.agree[np.ix_(rows, rows)] - (kept.length - length)
            return np.asarray(agree / max(length, 1), dtype=np.float64)
        return None

    def _keep(self, key: Hashable, kept: _Kept, level: Level, tokenizer: Tokenizer | None) -> None:
        if key in self._kept:
            return  # another thread computed the same matrix meanwhile
        self._kept[key] = kept
        self._bytes += kept.agree.nbytes
        for text in kept.row_of:
            self._holding.setdefault((level, tokenizer, text), []).append(key)
        while self._bytes > self.MAX_BYTES and len(self._kept) > 1:
            old_key, old = self._kept.popitem(last=False)
            self._bytes -= old.agree.nbytes
            for text in old.row_of:
                holders = self._holding.get((level, tokenizer, text), [])
                if old_key in holders:
                    holders.remove(old_key)
