"""`sim-words`: a small deterministic tokenizer for the simulator's personas, so that one of them counts tokens
differently from both OpenAI encodings without needing an optional package. It lives beside `tokens.py`,
not in `sim/`, because the auditor must be able to count in it too (a persona's claimed tokenizer).

Pieces are: runs of letters (split into chunks of at most 6 characters), runs of up to 3 digits, single
other non-space characters, and whitespace runs; a single space before a word belongs to the word.
Ids are stable hashes of the piece text, so decode(encode(x)) == x.
"""

from __future__ import annotations

import re
import zlib

_PIECE = re.compile(r" ?[^\W\d_]{1,6}| ?\d{1,3}| ?[^\w\s]|\s+|_", re.UNICODE)


class SimWordsTokenizer:
    name = "sim-words"

    def __init__(self) -> None:
        self._pieces: dict[int, str] = {}

    def pieces(self, text: str) -> list[str]:
        found = _PIECE.findall(text)
        if "".join(found) != text:  # anything the pattern missed becomes single characters
            found, position = [], 0
            for match in _PIECE.finditer(text):
                found.extend(text[position : match.start()])
                found.append(match.group())
                position = match.end()
            found.extend(text[position:])
        return found

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in self.pieces(text):
            token = zlib.crc32(piece.encode()) & 0x7FFFFFFF
            self._pieces.setdefault(token, piece)
            ids.append(token)
        return ids

    def decode(self, ids: list[int]) -> str:
        return "".join(self._pieces.get(i, "\ufffd") for i in ids)
