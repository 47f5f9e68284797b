"""Random identifiers for answers: completion and message ids, trace and request ids.

An id must differ from every other id a test run sees; it need not be secret. `uuid.uuid4()`
and `secrets` ask the kernel for each one (a system call, then for a UUID an object to
format): ~4.5 µs of a repeated request's ~44, and an Anthropic message id drawn a character
at a time with `secrets.choice` ~15 µs. A generator of our own, seeded from the kernel, makes
the same forms in a fraction of that.

It is private, so a test that seeds `random` (pytest-randomly, Hypothesis, a fixture) cannot
make two answers share an id, and seeded again in a forked child, so two workers never
continue one sequence. Reproducible runs do not need ids to repeat: a recording is matched on
requests, and a rule's `arguments` draw from their own seeded generator.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))


def _seed_again() -> None:
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=_seed_again)

# UUID version 4: the version nibble 0100 and the variant bits 10 (RFC 9562, section 5.4).
_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)


def uuid4() -> str:
    """A random UUID in its usual text form, as `str(uuid.uuid4())` gives one."""
    text = f"{(_random.getrandbits(128) & _KEEP) | _VERSION_4:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def hex_token(nbytes: int) -> str:
    """`nbytes` random bytes as lower-case hex, as `secrets.token_hex(nbytes)` gives them."""
    return f"{_random.getrandbits(8 * nbytes):0{2 * nbytes}x}"


def pick(alphabet: str, length: int) -> str:
    """`length` characters drawn from `alphabet`, each independently."""
    return "".join(_random.choices(alphabet, k=length))
