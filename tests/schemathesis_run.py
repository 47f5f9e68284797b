"""`make schemathesis`: Schemathesis against a mock with no faults, driven by the OpenAPI
documents the mock itself serves, with every check, a fixed seed and a bounded number of
examples per operation. Settings and the deliberate differences live in schemathesis.toml."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mockserver.server import MockServer
from mockserver.settings import Settings

# A key list, so that a wrong key is refused (Schemathesis checks that auth is enforced).
KEY = "sk-schemathesis-0000"
BEARER = f"Authorization: Bearer {KEY}"
# Each document and the key as its clients send it: the anthropic SDK sends `x-api-key`, and a
# Bearer header beside it would win (as DeepSeek documents), so a bad x-api-key could not fail.
DOCUMENTS = {
    "/openapi.json": BEARER,
    "/deepseek/openapi.json": BEARER,
    "/aimlapi/openapi.json": BEARER,
    "/anthropic/openapi.json": f"x-api-key: {KEY}",
    "/__mock/openapi.json": BEARER,
}
ROOT = Path(__file__).resolve().parent.parent


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    tool = Path(sys.executable).with_name("schemathesis")
    failed = []
    started = time.perf_counter()
    # self_check: every answer is checked against schemas/ before it is sent, so a body that
    # breaks the contract surfaces as a 500 here as well as in Schemathesis' own schema check.
    with MockServer(Settings(port=0, api_keys=(KEY,), self_check=True)) as server:
        for document, key in DOCUMENTS.items():
            command = [
                str(tool),
                "run",
                server.url + document,
                "--url",
                server.url,
                "--header",
                key,
                *argv,
            ]
            say(f"schemathesis: {document}")
            if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
                failed.append(document)
    took = time.perf_counter() - started
    say(
        f"schemathesis: {len(DOCUMENTS) - len(failed)} of {len(DOCUMENTS)} documents clean in {took:.1f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
