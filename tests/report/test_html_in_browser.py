"""report.html opened in headless Chromium (Debian's chromium package): it loads without a script error,
a console error or a network request, shows the summary, and every figure decodes.

Chromium is driven through its DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so no websocket client or free port is needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

RECIPE = {
    "name": "browser",
    "data": {"source": "digits", "test_fraction": 0.3},
    "teacher": {"model": {"source": "cnn2d", "width": 8}, "train": {"epochs": 2, "batch_size": 128, "lr": 0.01}},
    "student": {
        "model": {"source": "mlp", "hidden": 8},
        "objective": {"name": "kd", "temperature": 3},
        "train": {"epochs": 2, "batch_size": 128, "lr": 0.01},
        "baseline": True,
    },
    "evaluate": {"latency_batch_sizes": [1, 8]},
}


def chromium_binary() -> str:
    """The browser, or a skip when it is missing on a developer machine; under CI a missing browser fails."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package before the tests")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


class DevTools:
    """A minimal DevTools-protocol client over the pipe Chromium opens with --remote-debugging-pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # the child's ends are moved above 10 first, so placing them at 3 and 4 cannot overwrite each other
        child_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_read)
        os.close(from_browser_write)

        def place_pipes() -> None:
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=place_pipes,
            close_fds=False,
        )
        os.close(child_read)
        os.close(child_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        """Send one command and wait for its answer, keeping the events that arrive meanwhile."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(timeout)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe (exit status {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


PAGE_STATE = """(() => { const summary = document.querySelector('#summary'); return JSON.stringify({
  summary: summary ? summary.innerText : null,
  summaryHeight: summary ? summary.getBoundingClientRect().height : 0,
  headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
  images: Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0, alt: i.alt})),
}); })()"""


def open_page(page: Path, profile: Path) -> tuple[dict, list[dict]]:
    """Load ``page``; return what it shows and the problems seen (exceptions, errors, network requests)."""
    browser = DevTools(chromium_binary(), profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        state = browser.send("Runtime.evaluate", {"expression": PAGE_STATE, "returnByValue": True}, session=session)[
            "result"
        ]["value"]
        problems = [event for event in browser.events if _is_problem(event)]
        return json.loads(state), problems
    finally:
        browser.close()


def _is_problem(event: dict) -> bool:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        return True
    if method == "Runtime.consoleAPICalled":
        return params.get("type") in ("error", "assert")
    if method == "Log.entryAdded":
        return params["entry"]["level"] == "error"
    if method == "Network.requestWillBeSent":  # a self-contained page asks for nothing but itself
        return not params["request"]["url"].startswith(("file:", "data:"))
    return method == "Network.loadingFailed"


@pytest.mark.slow
def test_report_page_loads_cleanly_and_shows_the_summary(tmp_path):
    chromium_binary()  # skips (or fails under CI) before spending time on the run
    run = run_recipe(recipe_from_dict(RECIPE), tmp_path / "run")
    state, problems = open_page(run.run_dir / "report.html", tmp_path / "profile")
    assert problems == []
    assert state["summaryHeight"] > 0
    for shown in ("teacher", "student alone", "student distilled", "test accuracy", "latency b8", "agreement"):
        assert shown in state["summary"], shown
    accuracy = run.report["models"]["student"]["accuracy"]
    assert f"{accuracy:.1%}" in state["summary"]
    assert state["headings"][:2] == ["Summary", "Accuracy versus latency"]
    for heading in ("Learning curves", "Calibration", "Confusion matrices", "Accuracy per class"):
        assert heading in state["headings"]
    assert any(h.startswith("Fairness") for h in state["headings"])
    assert len(state["images"]) == 5 and all(image["ok"] for image in state["images"]), state["images"]


def test_a_broken_page_is_caught(tmp_path):
    """The check itself can fail: a script error and an outside request are reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><div id='summary'>x</div><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('bad'); undefinedFunction();</script></body></html>"
    )
    _, problems = open_page(page, tmp_path / "profile")
    kinds = {event["method"] for event in problems}
    assert "Runtime.exceptionThrown" in kinds
    assert "Runtime.consoleAPICalled" in kinds
    assert "Network.requestWillBeSent" in kinds


def test_missing_browser_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        chromium_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run installs"):
        chromium_binary()


@pytest.mark.slow
def test_continual_report_page_draws_its_matrices(tmp_path):
    chromium_binary()
    recipe = {
        "name": "browser-continual",
        "data": {"source": "digits"},
        "continual": {"experiences": 3, "strategies": ["naive", {"name": "replay", "buffer_size": 60}]},
        "student": {"model": {"source": "mlp", "hidden": 16}, "train": {"epochs": 1, "batch_size": 64}},
        "evaluate": {"latency_batch_sizes": [1]},
    }
    run = run_recipe(recipe_from_dict(recipe), tmp_path / "run")
    state, problems = open_page(run.run_dir / "report.html", tmp_path / "profile")
    assert problems == []
    assert "Continual learning" in state["headings"]
    assert "replay" in state["summary"] and "naive" in state["summary"]
    continual = [image for image in state["images"] if "experience" in image["alt"]]
    assert len(continual) == 2 and all(image["ok"] for image in continual), state["images"]
