"""Images for vision probes, drawn and read without an image library: a small PNG codec and a 5x7 font.

A probe image is white, with a code word in black block capitals (each font pixel a `scale` x `scale`
square) above a row of coloured squares. Real vision models read such text easily; the simulator reads it
back from the pixels (`read_word`, `count_squares`), so a relay that drops an image or shrinks it until the
letters blur is caught by what the model can no longer read, never by a shortcut.

The PNG writer emits 8-bit RGB with filter 0; the reader takes 8-bit grey, RGB and RGBA, non-interlaced,
with any of the five filters (what encoders commonly write), and refuses anything else.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from relayaudit.errors import RelayAuditError

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
COLOURS: dict[str, RGB] = {"red": (220, 30, 30), "blue": (30, 80, 220), "green": (30, 160, 60)}
WORD_ALPHABET = "ACDEFHJKLMNPRTUVWXY"
"""Letters no reader confuses with a digit or with each other in this font (no B/8, G/6, I/1, O/0, S/5, Z/2)."""

_FONT_ROWS = {
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11110", "10001", "10001", "10001", "10001", "10001", "11110"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "J": ("00111", "00010", "00010", "00010", "00010", "10010", "01100"),
    "K": ("10001", "10010", "10100", "11000", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "N": ("10001", "10001", "11001", "10101", "10011", "10001", "10001"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "U": ("10001", "10001", "10001", "10001", "10001", "10001", "01110"),
    "V": ("10001", "10001", "10001", "10001", "10001", "01010", "00100"),
    "W": ("10001", "10001", "10001", "10101", "10101", "10101", "01010"),
    "X": ("10001", "10001", "01010", "00100", "01010", "10001", "10001"),
    "Y": ("10001", "10001", "01010", "00100", "00100", "00100", "00100"),
}
FONT: dict[str, tuple[bool, ...]] = {
    ch: tuple(c == "1" for row in rows for c in row) for ch, rows in _FONT_ROWS.items()
}
GLYPH_W, GLYPH_H = 5, 7
MARGIN = 2
"""Font pixels of white around the word and between the word and the squares."""
SQUARE = 3
"""A square's side, in font pixels."""


class ImageError(RelayAuditError):
    """Bytes that are not a PNG this module reads."""


@dataclass(frozen=True)
class Raster:
    """An RGB image: `pixels[y * width + x]`."""

    width: int
    height: int
    pixels: tuple[RGB, ...]

    def at(self, x: int, y: int) -> RGB:
        return self.pixels[y * self.width + x]


def draw(word: str, squares: int, colour: str = "red", scale: int = 8) -> Raster:
    """The probe image: `word` in block capitals, then `squares` squares of `colour` in a row below it."""
    unknown = sorted(set(word) - set(FONT))
    if unknown or not word:
        raise ValueError(f"the font has no glyph for {''.join(unknown) or 'an empty word'}")
    cells_w = MARGIN * 2 + len(word) * (GLYPH_W + 1) - 1
    cells_w = max(cells_w, MARGIN * 2 + squares * (SQUARE + 2))
    cells_h = MARGIN * 3 + GLYPH_H + SQUARE
    width, height = cells_w * scale, cells_h * scale
    canvas = [WHITE] * (width * height)

    def fill(cell_x: int, cell_y: int, cells: int, rgb: RGB) -> None:
        for y in range(cell_y * scale, (cell_y + cells) * scale):
            for x in range(cell_x * scale, (cell_x + cells) * scale):
                canvas[y * width + x] = rgb

    for index, char in enumerate(word):
        left = MARGIN + index * (GLYPH_W + 1)
        for bit, on in enumerate(FONT[char]):
            if on:
                fill(left + bit % GLYPH_W, MARGIN + bit // GLYPH_W, 1, BLACK)
    for index in range(squares):
        fill(MARGIN + index * (SQUARE + 2), MARGIN * 2 + GLYPH_H, SQUARE, COLOURS[colour])
    return Raster(width, height, tuple(canvas))


def encode_png(raster: Raster) -> bytes:
    """8-bit RGB PNG, filter 0 on every row."""
    rows = bytearray()
    for y in range(raster.height):
        rows.append(0)
        for r, g, b in raster.pixels[y * raster.width : (y + 1) * raster.width]:
            rows += bytes((r, g, b))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", raster.width, raster.height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


MAX_PIXELS = 4_000_000
"""Larger images are refused before decompression (a hostile PNG can claim any size)."""


def decode_png(data: bytes) -> Raster:
    """An RGB raster from 8-bit grey, RGB or RGBA non-interlaced PNG bytes; ImageError otherwise."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ImageError("not a PNG image")
    position, header, idat = 8, b"", bytearray()
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if len(header) != 13:
        raise ImageError("PNG without a header")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace or not 0 < width * height <= MAX_PIXELS:
        raise ImageError("PNG of a kind the simulator does not read (8-bit grey, RGB or RGBA only)")
    stride = width * channels
    try:
        raw = zlib.decompressobj().decompress(bytes(idat), (stride + 1) * height)
    except zlib.error as exc:
        raise ImageError("PNG with broken image data") from exc
    if len(raw) < (stride + 1) * height:
        raise ImageError("PNG with too little image data")
    previous = bytearray(stride)
    pixels: list[RGB] = []
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        _unfilter(kind, row, previous, channels)
        for x in range(width):
            px = row[x * channels : (x + 1) * channels]
            pixels.append((px[0], px[0], px[0]) if channels == 1 else (px[0], px[1], px[2]))
        previous = row
    return Raster(width, height, tuple(pixels))


def _unfilter(kind: int, row: bytearray, previous: bytearray, bpp: int) -> None:
    if kind == 0:
        return  # the row is stored as it is (the common case, and this writer's)
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up = previous[i]
        corner = previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        else:
            raise ImageError(f"PNG row filter {kind} does not exist")


def downscale(raster: Raster, factor: float) -> Raster:
    """The image shrunk by `factor` with a box filter (each new pixel the mean of the pixels it covers)."""
    width, height = max(1, round(raster.width / factor)), max(1, round(raster.height / factor))
    pixels = []
    for y in range(height):
        y0, y1 = y * raster.height // height, max((y + 1) * raster.height // height, y * raster.height // height + 1)
        for x in range(width):
            x0, x1 = x * raster.width // width, max((x + 1) * raster.width // width, x * raster.width // width + 1)
            block = [raster.at(i, j) for j in range(y0, y1) for i in range(x0, x1)]
            pixels.append(tuple(sum(p[c] for p in block) // len(block) for c in range(3)))
    return Raster(width, height, tuple(pixels))  # type: ignore[arg-type]


def _dark(rgb: RGB) -> bool:
    return max(rgb) < 100


def _colour(rgb: RGB, name: str) -> bool:
    target = COLOURS[name]
    return sum(abs(a - b) for a, b in zip(rgb, target, strict=True)) < 120


def read_word(raster: Raster) -> str:
    """The block-capital word in the image, read from its pixels ("" when no glyph can be made out).

    The first band of rows with dark pixels gives the word's place; its height is 7 font pixels, which gives
    the scale; each glyph cell is sampled at the centre of its 5 x 7 font pixels and matched to the nearest
    glyph, which must differ in at most 3 of the 35 pixels."""
    dark = [(i % raster.width, i // raster.width) for i, rgb in enumerate(raster.pixels) if _dark(rgb)]
    if not dark:
        return ""
    # The word is the first unbroken band of rows holding dark pixels (every glyph row has one); the squares
    # below it may look dark too (in grey, red is dark), but a blank gap separates them.
    rows = sorted({y for _, y in dark})
    top = bottom = rows[0]
    for y in rows[1:]:
        if y != bottom + 1:
            break
        bottom = y
    band = [x for x, y in dark if top <= y <= bottom]
    left, right = min(band), max(band)
    scale = (bottom - top + 1) / GLYPH_H
    if scale < 1:
        return ""
    count = round((right - left + 1 + scale) / ((GLYPH_W + 1) * scale))
    word = []
    for index in range(count):
        bits = []
        for bit in range(GLYPH_W * GLYPH_H):
            column = int(left + (index * (GLYPH_W + 1) + bit % GLYPH_W + 0.5) * scale)
            row = min(int(top + (bit // GLYPH_W + 0.5) * scale), raster.height - 1)
            bits.append(0 <= column < raster.width and _dark(raster.at(column, row)))
        best = min(FONT, key=lambda ch: sum(a != b for a, b in zip(FONT[ch], bits, strict=True)))
        if sum(a != b for a, b in zip(FONT[best], bits, strict=True)) > 3:
            return ""
        word.append(best)
    return "".join(word)


def count_squares(raster: Raster, colour: str = "red") -> int:
    """How many separate blobs of `colour` the image holds (4-connected pixels)."""
    inside = {i for i, rgb in enumerate(raster.pixels) if _colour(rgb, colour)}
    blobs = 0
    while inside:
        blobs += 1
        stack = [inside.pop()]
        while stack:
            i = stack.pop()
            x = i % raster.width
            for j in (
                i - 1 if x > 0 else -1,
                i + 1 if x + 1 < raster.width else -1,
                i - raster.width,
                i + raster.width,
            ):
                if j in inside:
                    inside.remove(j)
                    stack.append(j)
    return blobs


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, without decoding it; None for anything else."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def image_tokens(width: int, height: int) -> int:
    """What the simulator bills for an image: width x height / 750, at least 1 (Anthropic's rule)."""
    return max(1, -(-width * height // 750))
