"""Draw the app's icons (a plain calculator) as PNGs without any imaging library: python3 tools/make_icons.py."""

import struct
import zlib
from pathlib import Path

BACKGROUND, SCREEN, KEY, ACCENT = (32, 33, 36), (200, 230, 201), (95, 99, 104), (255, 152, 0)


def pixel(x: float, y: float) -> tuple[int, int, int]:
    """The colour at (x, y) in a unit square: a display strip over a 4 x 4 grid of keys."""
    if 0.18 <= x <= 0.82 and 0.16 <= y <= 0.32:
        return SCREEN
    for row in range(4):
        for col in range(4):
            left, top = 0.18 + col * 0.165, 0.40 + row * 0.12
            if left <= x <= left + 0.13 and top <= y <= top + 0.09:
                return ACCENT if (row, col) == (3, 3) else KEY
    return BACKGROUND


def png(size: int) -> bytes:
    rows = b"".join(b"\x00" + b"".join(bytes(pixel((i + 0.5) / size, (j + 0.5) / size)) for i in range(size))
                    for j in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[1]
    for size in (192, 512):
        (here / f"icon-{size}.png").write_bytes(png(size))
