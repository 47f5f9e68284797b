"""The package as users get it: its public names, its layers, its command line, its wheel."""

from __future__ import annotations

import ast
import gc
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

import mockserver
from mockserver import cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mockserver"

# Modules that must stay free of the web stack and of pytest: the pipeline's pure stages.
PURE = {
    "anthropic", "catalog", "delivery", "dialects", "errors", "faults", "quota", "resources", "responder",
    "scenario", "schemas", "settings", "streaming", "textgen", "tokens", "usage", "validation",
}  # fmt: skip
WEB = ("starlette", "uvicorn")


def test_public_names_are_pinned() -> None:
    assert sorted(mockserver.__all__) == [
        "DIALECTS", "Delivery", "Dialect", "Entry", "ErrorReply", "Journal", "Match",
        "MockServer", "Reply", "Rule", "Scenario", "Settings", "ToolCall", "create_app",
    ]  # fmt: skip
    for name in mockserver.__all__:
        assert getattr(mockserver, name) is not None


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_import_no_web_stack_or_pytest(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    files = [path] if path.exists() else sorted((PACKAGE / name).glob("*.py"))
    imported = set().union(*(_imports(file) for file in files))
    offending = {i for i in imported if i.split(".")[0] in (*WEB, "pytest")}
    assert not offending, f"{name}.py imports {offending}"


def test_only_the_edges_import_uvicorn_and_pytest() -> None:
    for module in PACKAGE.rglob("*.py"):
        imported = {i.split(".")[0] for i in _imports(module)}
        if "uvicorn" in imported:
            assert module.stem in ("server", "cli", "connections"), module.name
        if "pytest" in imported:
            assert module.stem == "pytest_plugin", module.name


def test_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["serve", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "--dialect",
        "{acedata,aimlapi,deepseek}",
        "--fixtures",
        "--fault",
        "examples:",
        "curl",
        "(default: 127.0.0.1)",
    ):
        assert expected in text


def test_bad_arguments_are_explained(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["serve", "--dialect", "deepsek"])
    assert done.value.code == 2
    assert "invalid choice: 'deepsek'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["serve", "--rate-limit", "lots"])
    assert "expected N/SECONDS" in capsys.readouterr().err
    # A journal of no entries, or a body limit every request is over, is a typo, not a setting.
    for option, value in (("--journal-size", "-5"), ("--max-body-bytes", "0")):
        with pytest.raises(SystemExit):
            cli.main(["serve", option, value])
        said = capsys.readouterr().err
        assert f"argument {option}: expected a whole number above 0, got '{value}'" in said


def test_check_command_validates_scenario_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for shipped in ("scenarios", "replies"):  # the server loads replies/ without checking
        assert cli.main(["check", str(ROOT / "fixtures" / shipped)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"name": "x", "error": {"status": "503"}}]}')
    assert cli.main(["check", str(bad)]) == 1
    assert "is not of type 'integer'" in capsys.readouterr().err


def _serve(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", "0", "--log-level", "info", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _base_url(process: subprocess.Popen[str]) -> str:
    """Read the log until it says where DeepSeek is served (bounded: 200 lines)."""
    assert process.stdout is not None
    for _ in range(200):
        line = process.stdout.readline()
        if "DeepSeek API" in line and "base_url" in line:
            return line.split("base_url ")[1].split()[0]
        if not line and process.poll() is not None:
            break
    raise AssertionError("the server did not start")


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hung server is the failure to see
        process.kill()
        raise


def _start_up_log(*args: str) -> list[str]:
    """`serve ARGS`'s log up to uvicorn's line that ends the start-up (bounded: 60 lines)."""
    process = _serve(*args)
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while "Started server process" not in "".join(lines[-1:]) and len(lines) < 60:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            lines.append(line)
    finally:
        _stop(process)
        process.stdout.close()
    return lines


@pytest.mark.parametrize(
    ("dialect", "eras"),
    [
        (None, ["era: v4.1 as of", "era: acedata gateway as of", "era: aimlapi gateway as of"]),
        ("aimlapi", ["era: aimlapi gateway as of"]),
    ],
)
def test_the_start_up_log_names_the_era_of_each_catalogue_served(
    dialect: str | None, eras: list[str]
) -> None:
    lines = _start_up_log(*(("--dialect", dialect) if dialect else ()))
    said = [line.split("INFO", 1)[-1].strip() for line in lines if " era: " in line]
    assert len(said) == len(eras) and all(map(str.startswith, said, eras)), lines


def test_serve_warns_when_its_cassette_folder_does_not_exist(tmp_path: Path) -> None:
    lines = _start_up_log("--cassettes", str(tmp_path / "casettes"))
    warned = [line for line in lines if "WARNING" in line and "does not exist" in line]
    assert len(warned) == 1 and "404 no_recording" in warned[0], lines


def test_serve_answers_all_dialects_on_one_port() -> None:
    process = _serve("--fault", "503x1")
    try:
        base = _base_url(process)
        auth = {"Authorization": "Bearer sk-test"}
        body = {"model": "deepseek-flash", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(base + "/chat/completions", json=body, headers=auth).status_code == 503
        assert httpx.post(base + "/chat/completions", json=body, headers=auth).status_code == 200
        ace = body | {"model": "deepseek-v3"}
        assert (
            httpx.post(base + "/deepseek/chat/completions", json=ace, headers=auth).status_code
            == 200
        )
        aiml = body | {"model": "deepseek-chat"}
        assert (
            httpx.post(base + "/aimlapi/v1/chat/completions", json=aiml, headers=auth).status_code
            == 200
        )
    finally:
        _stop(process)
        assert process.stdout is not None
        log = process.stdout.read()
        process.stdout.close()
    assert process.returncode == 0, log
    assert "Application startup complete" not in log or process.returncode == 0


def test_a_wheel_works_on_its_own(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mockserver/_schemas/deepseek/chat-completion.schema.json" in names
    assert "mockserver/_fixtures/replies/captured.json" in names
    assert {f"mockserver/static/ui.{kind}" for kind in ("html", "js", "css")} <= set(names)
    (license,) = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
    assert zipfile.ZipFile(wheel).read(license).startswith(b"MIT License")
    metadata = zipfile.ZipFile(wheel).read(license.replace("licenses/LICENSE", "METADATA"))
    assert b"License-Expression: MIT" in metadata
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # Away from the checkout, with the wheel's copy first on the path: it must find its own
    # schemas and fixtures, answer, and pass its own self-check.
    probe = (
        "import httpx, mockserver, mockserver.resources as r;"
        "from mockserver import MockServer, Settings;"
        "assert str(r.data_dir('schemas')).startswith(%r), r.data_dir('schemas');"
        "s = MockServer(Settings(port=0, self_check=True)).start();"
        "b = {'model': 'deepseek-v3', 'stream': True, 'messages': [{'role': 'user', 'content': 'hello'}]};"
        "t = httpx.post(s.url + '/deepseek/chat/completions', json=b, headers={'authorization': 'Bearer x'}).text;"
        "p = httpx.get(s.url + '/__mock/ui/ui.js').status_code;"
        "s.stop(); assert '\" 😊\"' in t, t; assert p == 200, p; print('ok')"
    ).replace("%r", repr(str(site)))
    env = os.environ | {"PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_readme_scenario_examples_are_valid() -> None:
    from mockserver.scenario import rules_from_json

    readme = (ROOT / "README.md").read_text("utf-8")
    blocks = [json.loads(b.split("```", 1)[0]) for b in readme.split("```json\n")[1:]]
    scenarios = [block for block in blocks if "rules" in block]
    assert scenarios, "the README shows a scenario file"
    for block in scenarios:
        assert rules_from_json(block)


def test_readme_catalogue_entry_adds_a_model() -> None:
    from mockserver.catalog import catalog_from_json
    from mockserver.schemas import problems

    readme = (ROOT / "README.md").read_text("utf-8")
    blocks = [json.loads(b.split("```", 1)[0]) for b in readme.split("```json\n")[1:]]
    (entry,) = [block for block in blocks if "family" in block]
    document = json.loads((ROOT / "fixtures" / "catalog" / "deepseek.json").read_text("utf-8"))
    document["models"].append(entry)
    assert problems("catalog.schema.json", document) == []
    assert entry["id"] in catalog_from_json(document).newest.models


def test_readme_first_screen_shows_the_two_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text("utf-8").splitlines()[:30])
    assert "make serve" in first_screen and "make test" in first_screen
    assert 'base_url="http://127.0.0.1:8000"' in first_screen


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--first-byte", "-1"], "first_byte must be a number of seconds"),
        (["--fixtures", "/no/such/file.json"], "no such file or folder (bundled scenarios:"),
        (["--fault", "bogus"], "unknown fault 'bogus'"),
    ],
)
def test_serve_refuses_bad_settings_with_one_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--port", "0", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert gc.isenabled()  # serve pauses the collector for its start-up only, whatever happens


def test_version_is_printed_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out == f"deepseek-mock {importlib.metadata.version('deepseek-mock')}\n"


def test_port_and_counts_are_checked_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--port", "99999"], ["--max-concurrent", "0"], ["--balance-tokens", "-5"]):
        with pytest.raises(SystemExit):
            cli.main(["serve", *args])
    assert "a port is a number from 0 to 65535" in capsys.readouterr().err


def test_bundled_scenarios_can_be_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "flaky"]) == 0
    assert "overloaded twice" in capsys.readouterr().out


def test_check_names_the_file_once_and_the_broken_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"rules": [{"name": "x", "match": {"prompt": "(a"}, "reply": {"content": "y"}}]}'
    )
    assert cli.main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count(str(bad)) == 1 and "$.rules[0].match.prompt" in err


@pytest.mark.parametrize("how", ["environment", "make variable"])
def test_make_serve_takes_the_port_and_host_it_is_given(how: str) -> None:
    with socket.socket() as probe:  # a port nobody uses: make serve must not fall back to 8000
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "MAKEFLAGS")}
    command = ["make", "--no-print-directory", "serve"]
    if how == "environment":
        env |= {"DEEPSEEK_MOCK_HOST": "localhost", "DEEPSEEK_MOCK_PORT": str(port)}
    else:
        command += ["HOST=localhost", f"PORT={port}"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C goes to make and the server alike, as in a terminal
    )
    try:
        assert _base_url(process) == f"http://localhost:{port}"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server is the failure to see
            os.killpg(process.pid, signal.SIGKILL)
            raise


def test_the_readme_module_table_names_the_modules_that_exist() -> None:
    """Every module is in the table, and everything in it exists (the dialect modules are
    listed after their folder, `dialects/`)."""
    readme = (ROOT / "README.md").read_text("utf-8")
    table = readme.split("| Module | Job |", 1)[1].split("\n\n", 1)[0]
    named = re.findall(r"`(\w+)(\.py|/)`", table)
    folders = [name for name, kind in named if kind == "/"]
    assert all((PACKAGE / folder / "__init__.py").exists() for folder in folders), folders
    listed: set[str] = set()
    for name, kind in named:
        if kind == ".py":
            where = [f"{p}{name}.py" for p in ["", *(f"{f}/" for f in folders)]]
            found = [path for path in where if (PACKAGE / path).exists()]
            assert found, f"the README names {name}.py, which does not exist"
            listed |= set(found)
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    assert modules - {m for m in modules if m.endswith("__init__.py")} == listed


@pytest.mark.parametrize("before", [True, False])
def test_importing_the_package_leaves_the_collector_as_it_was(before: bool) -> None:
    code = f"import gc\nif not {before}: gc.disable()\nimport mockserver\nprint(gc.isenabled())\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(before)
