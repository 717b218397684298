"""A real text corpus that ships with every Python: the standard library's sources.

``python benchmarks/stdlib_corpus.py OUT.txt [--bytes N]`` writes the top-level
``*.py`` files of the running interpreter's standard library (sorted by name, UTF-8
files only), whole files one after another until at least N bytes (default 1,200,000).
The same interpreter gives the same corpus; the first line printed names its size,
its SHA-256 and the directory it came from.
"""

from __future__ import annotations

import argparse
import hashlib
import sysconfig
from pathlib import Path


def stdlib_corpus(size: int = 1_200_000) -> bytes:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = bytearray()
    for path in sorted(root.glob("*.py")):
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if b"\x00" in data:
            continue
        out += data
        if len(out) >= size:
            break
    return bytes(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--bytes", type=int, default=1_200_000)
    args = parser.parse_args()
    data = stdlib_corpus(args.bytes)
    Path(args.out).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()[:16]
    print(
        f"{args.out}: {len(data):,} bytes, sha256 {digest}..., from {sysconfig.get_paths()['stdlib']}"
    )


if __name__ == "__main__":
    main()
