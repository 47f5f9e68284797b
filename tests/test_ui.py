"""The live journal page: its event stream (resuming, ending), its guard, and the page itself
in headless Chromium, driven by the openai SDK's requests."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpcore
import httpx
import openai
import orjson
import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, expect, sync_playwright

from mockserver import ui
from mockserver.journal import Entry
from mockserver.scenario import ErrorReply, Rule
from mockserver.server import MockServer
from mockserver.settings import Settings
from tests.conftest import LATE_2025

AUTH = {"Authorization": "Bearer sk-test"}
CHAT = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
EVENTS = "/__mock/ui/events"
TIMEOUT = httpx.Timeout(5.0)  # far above the server's half-second polls: a hang fails, not waits
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def events(response: httpx.Response) -> Iterator[dict[str, str]]:
    """The SSE events of a streamed response, each as its fields (comments left out)."""
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            event[name] = event.get(name, "") + value


def next_of(stream: Iterator[dict[str, str]], kind: str) -> dict[str, str]:
    return next(event for event in stream if event.get("event") == kind)


def chat(server: MockServer, **headers: str) -> None:
    reply = httpx.post(server.url + "/chat/completions", json=CHAT, headers=AUTH | headers)
    assert reply.status_code == 200


# ------------------------------------------------------------------ the event stream


def test_the_stream_resumes_after_the_last_event_id_and_carries_a_clear(
    mock: MockServer,
) -> None:
    chat(mock)
    with httpx.Client(base_url=mock.url, timeout=TIMEOUT) as client:
        with client.stream("GET", EVENTS) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            first = next_of(events(response), "entries")
        assert [e["seq"] for e in json.loads(first["data"])["entries"]]
        chat(mock)  # while no page is connected
        (newest,) = mock.journal.entries()[-1:]
        resumed = {"Last-Event-ID": first["id"]}
        with client.stream("GET", EVENTS, headers=resumed) as response:
            stream = events(response)
            batch = json.loads(next_of(stream, "entries")["data"])
            assert (batch["cleared"], [e["seq"] for e in batch["entries"]]) == (
                False,
                [newest.seq],
            )
            assert client.delete("/__mock/journal").status_code == 204
            cleared = json.loads(next_of(stream, "entries")["data"])
            assert cleared == {"cleared": True, "entries": []}


def test_a_page_under_a_namespace_shows_that_namespace_only(mock: MockServer) -> None:
    """`/ns/NAME/__mock/ui` follows NAME's journal and rules; its links stay under it."""
    chat(mock)  # into the default namespace
    chat(mock, **{"X-Mock-Namespace": "team-a"})
    page = httpx.get(mock.url + "/ns/team-a/__mock/ui")
    assert page.status_code == 200 and 'src="ui/ui.js"' in page.text  # relative: stays in it
    with (
        httpx.Client(base_url=mock.url, timeout=TIMEOUT) as client,
        client.stream("GET", "/ns/team-a" + EVENTS) as response,
    ):
        stream = events(response)
        assert json.loads(next_of(stream, "status")["data"])["namespace"] == "team-a"
        batch = json.loads(next_of(stream, "entries")["data"])
        (entry,) = batch["entries"]
        team = mock.space("team-a").journal.entries()
        assert entry["seq"] == team[0].seq and entry["path"] == "/chat/completions"
        detail = client.get(f"/ns/team-a/__mock/ui/entry/{entry['seq']}")
        assert detail.json()["request"]["headers"]["x-mock-namespace"] == "team-a"


def test_a_page_that_leaves_ends_its_stream(mock: MockServer) -> None:
    def pages(event: dict[str, str]) -> int:
        count: int = json.loads(event["data"])["pages"]
        return count

    with (
        httpx.Client(base_url=mock.url, timeout=TIMEOUT) as client,
        client.stream("GET", EVENTS) as leaving,
    ):
        left = events(leaving)  # kept: a dropped reader closes its connection
        assert pages(next_of(left, "status")) == 1
        with client.stream("GET", EVENTS) as staying:
            watched = events(staying)
            assert pages(next_of(watched, "status")) == 2
            leaving.close()
            # The status is sent again when it changes: the other page's stream has ended.
            assert pages(next_of(watched, "status")) == 1


def test_a_stop_closes_open_pages_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """An event stream never ends by itself: a stop must not wait out its grace for it."""
    caplog.set_level(logging.INFO, logger="mockserver")
    server = MockServer(Settings(port=0, era=LATE_2025)).start()
    try:
        with (
            httpx.Client(base_url=server.url, timeout=TIMEOUT) as client,
            client.stream("GET", EVENTS) as response,
        ):
            stream = events(response)
            next_of(stream, "status")
            server.stop()
            # Closed mid-body, as a stopping server closes it (httpx wraps httpcore's error,
            # unless the close is seen while the response is being shut).
            with pytest.raises((httpx.RemoteProtocolError, httpcore.RemoteProtocolError)):
                list(stream)
    finally:
        server.stop()
    assert not [r for r in caplog.records if "still open at shutdown" in r.getMessage()]


def test_the_page_has_the_admin_guard_and_a_strict_policy(mock: MockServer) -> None:
    page = httpx.get(mock.url + ui.PAGE)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert (
        httpx.get(mock.url + "/__mock/ui/ui.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    rebound = httpx.get(mock.url + ui.PAGE, headers={"Host": "evil.example"})
    assert rebound.status_code == 403
    cross = httpx.get(mock.url + EVENTS, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    bad = httpx.get(mock.url + EVENTS, headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["error"]["message"]
    gone = httpx.get(mock.url + "/__mock/ui/entry/424242")
    assert gone.status_code == 404 and "not in the journal" in gone.text
    # Not a number of an entry: a number too long to read (a 500 once), not a number at all,
    # and digits that are not ASCII.
    for seq in ("9" * 4301, "abc", "-1", "١٢"):
        wrong = httpx.get(mock.url + "/__mock/ui/entry/" + seq)
        assert wrong.status_code == 404 and "not in the journal" in wrong.text, seq
    assert httpx.get(mock.url + "/__mock/ui/nothing.js").status_code == 404
    for path in (ui.PAGE, EVENTS, "/__mock/ui/ui.js"):  # another method: 405, not the admin's 404
        refused = httpx.request("DELETE", mock.url + path)
        assert refused.status_code == 405, path
        assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD"}, path


def test_with_an_admin_token_the_page_takes_it_on_its_address() -> None:
    with MockServer(Settings(port=0, era=LATE_2025, admin_token="admin-secret")) as server:
        page = server.url + ui.PAGE
        assert httpx.get(page).status_code == 401
        assert httpx.get(page, params={"token": "wrong"}).status_code == 401
        assert httpx.get(page, params={"token": "admin-secret"}).status_code == 200
        bearer = {"Authorization": "Bearer admin-secret"}
        assert httpx.get(page, headers=bearer).status_code == 200
        # Typed with a trailing slash, the address still reaches the page, token and all.
        slashed = httpx.get(page + "/", params={"token": "admin-secret"}, follow_redirects=True)
        assert slashed.status_code == 200 and slashed.url.path == ui.PAGE
        assert slashed.url.params["token"] == "admin-secret"
        spaced = httpx.get(
            server.url + "/ns/team-a" + ui.PAGE + "/",
            params={"token": "admin-secret"},
            follow_redirects=True,
        )
        assert spaced.status_code == 200 and spaced.url.path == "/ns/team-a" + ui.PAGE
        with httpx.stream(
            "GET", server.url + EVENTS, params={"token": "admin-secret"}, timeout=TIMEOUT
        ) as response:
            assert response.status_code == 200
            next_of(events(response), "status")


def test_the_start_up_log_links_the_page() -> None:
    from tests.test_package import _start_up_log

    lines = _start_up_log()
    (served,) = [line for line in lines if "DeepSeek API" in line and "base_url" in line]
    base = served.split("base_url ")[1].split()[0]
    assert any(f"live page: {base}{ui.PAGE}" in line for line in lines), lines


# ------------------------------------------------------------------ the page in a browser


INJECTED = '<script>alert("prompt")</script><img src=x onerror=alert(1)> what is 2+2?'
INJECTED_HEADER = "<script>alert('header')</script><b>bold</b>"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One headless Chromium for the module, on a fresh profile."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the page tests need headless Chromium at {CHROMIUM}: "
            "apt-get install chromium chromium-driver (.ci/run installs them when missing)"
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def live() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, era=LATE_2025)) as server:
        yield server


@pytest.fixture
def page(browser: BrowserContext, live: MockServer) -> Iterator[Page]:
    live.reset()
    opened = browser.new_page()
    dialogs: list[str] = []

    def seen(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", seen)
    opened.goto(live.url + ui.PAGE)
    expect(opened.locator("#state")).to_have_text("live")
    yield opened
    opened.close()
    assert dialogs == [], "a script sent to the server ran in the page"


def test_exchanges_arrive_live_and_open_as_frames_with_their_fault(
    page: Page, live: MockServer, tmp_path: Path
) -> None:
    rows = page.locator("#rows tbody tr")
    client = openai.OpenAI(base_url=live.base_url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": INJECTED}],
        extra_headers={"X-Note": INJECTED_HEADER},
    )
    assert answer.choices[0].message.content
    expect(rows).to_have_count(1)  # without a reload
    cut = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "count to ten"}],
        stream=True,
        extra_headers={"X-Mock-Fault": "cut_after=3"},
    )
    assert len(list(cut)) == 3
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": "are you there?"}],
            extra_headers={"X-Mock-Fault": "503"},
        )
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("503")  # the newest on top

    expect(rows.filter(has_text="cut_after=3").locator(".c-end")).to_have_text("cut")
    rows.filter(has_text="cut_after=3").click()
    detail = page.locator("#detail")
    expect(detail.locator(".timeline tbody tr")).to_have_count(3)
    expect(detail.locator(".fault").first).to_have_text("fault: cut_after=3")
    expect(detail.locator(".timeline tbody tr").last).to_contain_text(
        "cut here: the stream ended without [DONE] (cut_after=3)"
    )
    expect(detail).to_contain_text("count to ten")
    page.screenshot(path=tmp_path / "live-page.png")
    assert (tmp_path / "live-page.png").stat().st_size < 300_000

    rows.filter(has_text="generated").click()
    expect(detail.locator("pre.body").first).to_contain_text(INJECTED.replace('"', '\\"'))
    detail.locator("details.headers summary").first.click()  # the request's headers
    expect(detail.get_by_text(INJECTED_HEADER, exact=True)).to_be_visible()
    expect(detail).to_contain_text("prompt_tokens")  # the usage figures
    assert detail.locator("script, img, b").count() == 0  # text, never markup


def test_the_filter_narrows_the_rows_and_a_clear_empties_them(page: Page, live: MockServer) -> None:
    chat(live)
    chat(live, **{"X-Mock-Fault": "cut_after=0"})  # the body cut: headers, then nothing
    with httpx.Client(base_url=live.url, headers=AUTH) as client:
        prompt = {"role": "user", "content": "the weather in Lisbon"}
        assert client.post("/chat/completions", json=CHAT | {"messages": [prompt]}).is_success
        refused = client.post("/chat/completions", json={"model": "nope", "messages": []})
        assert refused.status_code == 400
    rows = page.locator("#rows tbody tr")
    expect(rows).to_have_count(4)
    visible = page.locator("#rows tbody tr:visible")
    for words, count in [
        ("status:400", 1),
        ("lisbon", 1),
        ("fault:cut", 1),
        ("model:deepseek-chat status:200", 3),
        ("nothing-matches-this", 0),
        ("", 4),
    ]:
        page.locator("#filter").fill(words)
        expect(visible).to_have_count(count)
    expect(page.locator("#rules")).to_contain_text("acedata capture: multi-turn")
    page.locator("#clear").click()
    expect(rows).to_have_count(0)
    assert live.journal.entries() == []
    live.add(Rule(name="overloaded twice", reply=ErrorReply(status=503), times=2))
    expect(page.locator("#rules")).to_contain_text("overloaded twice0 / 2")
    page.locator("#reset").click()  # the start-up rules again
    expect(page.locator("#rules")).not_to_contain_text("overloaded twice")


def test_a_full_journal_arrives_at_once_and_stays_filterable(page: Page, live: MockServer) -> None:
    size = live.settings.journal_size
    for n in range(size):
        question = {"model": "deepseek-chat", "messages": [{"role": "user", "content": f"q{n}!"}]}
        live.journal.record(
            Entry(
                method="POST",
                path="/chat/completions",
                dialect="deepseek",
                status=200,
                complete=True,
                started=time.time(),
                body=orjson.dumps(question),
            )
        )
    expect(page.locator("#rows tbody tr")).to_have_count(size)
    page.locator("#filter").fill(f"prompt:q{size - 1}!")
    expect(page.locator("#rows tbody tr:visible")).to_have_count(1)


def test_the_readme_live_page_example_runs(mock_now: MockServer) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    block = readme.split("## Live page", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    script = block.replace("http://127.0.0.1:8000", mock_now.url).replace("curl -s ", "curl -sf ")
    done = subprocess.run(
        ["bash", "-e", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    journal = done.stdout.rsplit("\n", 1)[-1]  # after the stream, the journal as JSON
    entry = json.loads(journal)["entries"][-1]
    assert entry["fault"] == "cut_after=3"
    assert [kind for _, _, kind in entry["response"]["frames"]] == ["data"] * 3
    shown = httpx.get(f"{mock_now.url}/__mock/ui/entry/{entry['seq']}").json()
    assert shown["summary"]["end"] == "cut"
    assert "cut here" in shown["timeline"][-1]["note"]
