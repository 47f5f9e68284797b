"""Other LLM mocks, measured beside ours on the same request bytes: how each is installed
(pinned, into a cache beside the checkout, never into .venv), how it is started (127.0.0.1
only, at its quietest logging), and the canned-reply fixture that makes it answer the bench's
prompts with the bench's replies.

Each peer's CLI, fixture format and paths come from its own code at the pinned version:

- aimock (npm, TypeScript): `dist/cli.js` (the package's `llmock` bin, its Docker entrypoint),
  `-f` a JSON file of `{"match": {"userMessage": substring}, "response": {"content": ...}}`
  fixtures, first match wins; `chunkSize` (characters per streamed chunk, default 20) is set
  per fixture so a stream carries about one event per token, as ours does.
- llmock (PyPI, FastAPI): `llmock serve`; a canned reply is a scenario behaviour posted to its
  control API (`POST /_llmock/scenario`, `{"type": "reply", "text": ..., "times": null}`
  stays until cleared). Its matches cannot see the prompt, so the long reply is swapped in for
  the long-stream figure only. It streams one event per word.
- fakellm (PyPI, FastAPI): its app `fakellm.server:app` on uvicorn, as `fakellm serve` runs it
  but without the access log (the CLI has no switch for it); rules in `FAKELLM_CONFIG`, a YAML
  file (JSON is YAML), `when.messages_contain` a case-insensitive substring. It streams one
  event per word with a fixed 10 ms sleep after each, so its streams measure that pacing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.bench.workload import (
    LONG_REPLY_TOKENS,
    LONG_TAG,
    SHORT_REPLY_TOKENS,
    SHORT_TAG,
    Texts,
)

INSTALLED = ".installed"  # stamp written once an install finished
INSTALL_TIME_LIMIT = 600.0  # seconds for one peer's install before it is skipped


def chunk_size(text: str, tokens: int) -> int:
    """Characters per chunk for about one streamed event per token of `text`."""
    return max(1, round(len(text) / tokens))


def aimock_fixture(texts: Texts) -> dict[str, Any]:
    # The long prompt also holds the short tag (it starts with the short prompt's text
    # after its own tag), so the long fixture comes first.
    return {
        "fixtures": [
            {
                "match": {"userMessage": LONG_TAG},
                "response": {"content": texts.long_reply},
                "chunkSize": chunk_size(texts.long_reply, LONG_REPLY_TOKENS),
            },
            {
                "match": {"userMessage": SHORT_TAG},
                "response": {"content": texts.short_reply},
                "chunkSize": chunk_size(texts.short_reply, SHORT_REPLY_TOKENS),
            },
        ]
    }


def fakellm_config(texts: Texts) -> dict[str, Any]:
    return {
        "version": 1,
        "rules": [
            {
                "name": "bench long",
                "when": {"messages_contain": LONG_TAG},
                "respond": {"content": texts.long_reply},
            },
            {
                "name": "bench short",
                "when": {"messages_contain": SHORT_TAG},
                "respond": {"content": texts.short_reply},
            },
        ],
    }


def llmock_scenario(reply: str) -> dict[str, Any]:
    return {"behaviors": [{"type": "reply", "text": reply, "times": None}]}


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    registry: str  # "npm" or "pypi"
    package: str
    version: str
    chat_path: str
    probe_path: str  # a GET that answers 200 once the server is up
    streams_long: bool = True  # False: the 10,000-token stream would outlast the time limit
    paced: str = ""  # what limits its streams when it is not the CPU, for the notes

    @property
    def slug(self) -> str:
        return f"{self.name}-{self.version}"

    def home(self, cache: Path) -> Path:
        return cache / self.slug

    def install(self, cache: Path) -> str | None:
        """Install into the cache once; None when ready, else why it could not be."""
        home = self.home(cache)
        if (home / INSTALLED).exists():
            return None
        if home.exists():
            shutil.rmtree(home)  # a half-finished install from an earlier run
        home.mkdir(parents=True)
        spec = (
            f"{self.package}@{self.version}"
            if self.registry == "npm"
            else (f"{self.package}=={self.version}")
        )
        if self.registry == "npm":
            if shutil.which("npm") is None or shutil.which("node") is None:
                return "node or npm is not installed"
            steps = [["npm", "install", "--prefix", str(home), "--no-audit", "--no-fund", spec]]
        else:
            python = str(home / "bin" / "python")
            steps = [
                [sys.executable, "-m", "venv", str(home)],
                [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", spec],
            ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, capture_output=True, timeout=INSTALL_TIME_LIMIT, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"{spec}: {exc}"
            if done.returncode != 0:
                last = (done.stderr or done.stdout).decode(errors="replace").strip()
                tail = last.splitlines()[-1] if last else f"exit {done.returncode}"
                return f"{spec} did not install: {tail}"
        (home / INSTALLED).write_text(spec + "\n")
        return None

    def command(self, cache: Path, work: Path, texts: Texts, port: int) -> list[str]:
        """The peer's own launch command, bound to 127.0.0.1; writes its fixture first."""
        home = self.home(cache)
        if self.name == "aimock":
            fixture = work / "aimock-fixtures.json"
            fixture.write_bytes(orjson.dumps(aimock_fixture(texts)))
            cli = home / "node_modules" / "@copilotkit" / "aimock" / "dist" / "cli.js"
            return [
                "node",
                str(cli),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--fixtures",
                str(fixture),
                "--log-level",
                "warn",
            ]
        if self.name == "llmock":
            return [
                str(home / "bin" / "llmock"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
        if self.name == "fakellm":
            return [
                str(home / "bin" / "python"),
                "-m",
                "uvicorn",
                "fakellm.server:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ]
        raise ValueError(self.name)

    def env(self, work: Path, texts: Texts) -> dict[str, str]:
        if self.name == "fakellm":
            config = work / "fakellm.yaml"
            config.write_bytes(orjson.dumps(fakellm_config(texts)))  # JSON is YAML
            return {"FAKELLM_CONFIG": str(config)}
        return {}

    def select(self, port: int, texts: Texts, which: str) -> None:
        """Make the peer answer with the short or the long reply, when its fixture cannot
        tell the prompts apart (llmock); the others match on the prompt and need nothing."""
        if self.name != "llmock":
            return
        reply = texts.long_reply if which == "long" else texts.short_reply
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            client.delete("/_llmock/scenario").raise_for_status()
            client.post("/_llmock/scenario", json=llmock_scenario(reply)).raise_for_status()


PEERS: tuple[Peer, ...] = (
    Peer("aimock", "npm", "@copilotkit/aimock", "1.43.0", "/v1/chat/completions", "/health"),
    Peer("llmock", "pypi", "llmock", "0.2.2", "/v1/chat/completions", "/health"),
    Peer(
        "fakellm",
        "pypi",
        "fakellm",
        "0.3.5",
        "/v1/chat/completions",
        "/_fakellm/stats",
        streams_long=False,
        paced="sleeps 10 ms after every streamed word",
    ),
)

Installer = Callable[[Peer, Path], str | None]


def ready(cache: Path, say: Callable[[str], None]) -> list[Peer]:
    """The peers that are installed (installing those that are not); one line per skip."""
    usable: list[Peer] = []
    for peer in PEERS:
        if not (peer.home(cache) / INSTALLED).exists():
            say(f"peer {peer.name} {peer.version}: installing into {peer.home(cache)}")
        reason = peer.install(cache)
        if reason is None:
            usable.append(peer)
        else:
            say(f"peer {peer.name} skipped: {reason}")
    return usable
