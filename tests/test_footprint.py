"""What a server that answers chat completions has loaded: nothing it does not use."""

from __future__ import annotations

import json
import subprocess
import sys

# Started in a fresh interpreter, so nothing the test session imported counts. The client is
# the standard library's: httpx is one of the modules the server must not need.
SERVE_AND_ASK = """
import json, sys, urllib.request
from mockserver.server import MockServer

with MockServer() as server:
    for stream in (False, True):
        request = urllib.request.Request(
            server.base_url + "/chat/completions",
            data=json.dumps({
                "model": "deepseek-flash",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": stream,
            }).encode(),
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200, answer.status
            answer.read()
print(json.dumps(sorted(sys.modules)))
"""

NOT_NEEDED = (
    "jsonschema",
    "referencing",
    "rpds",
    "httpx",
    "rstr",
    "mockserver.replay",
    "mockserver.recorder",
    "mockserver.arguments",
)


def test_a_plain_server_loads_no_schema_validator_http_client_or_recorder() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_ASK], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    found = sorted(m for m in loaded if m.split(".")[0] in NOT_NEEDED or m in NOT_NEEDED)
    assert found == []
