"""A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe): no
WebDriver, no websocket library, no port. Used by tests/test_report_browser.py.

Messages are JSON objects separated by NUL bytes; the browser reads commands on its fd 3 and writes
answers and events on its fd 4. Commands for the page carry the flattened session's id.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    # Belt and braces with the offline emulation: any http(s) request would go to a dead proxy.
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
]


def find_chromium() -> str | None:
    """Debian's `chromium` (or TOLLGATE_CHROMIUM)."""
    named = os.environ.get("TOLLGATE_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Chromium:
    """One browser with one page; `events` keeps every event of the page's session."""

    def __init__(self, binary: str, profile: Path, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.log = profile.with_name(profile.name + ".log")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        def onto_3_and_4() -> None:  # in the child, before exec: the pipe ends the browser expects
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                preexec_fn=onto_3_and_4, close_fds=False, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log,
            )
        os.close(to_child)
        os.close(from_child)
        self._next = 0
        self._answers: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", url="about:blank", session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True, session=False)["sessionId"]

    def _pump(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._read, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._lock:
                    for answers in self._answers.values():
                        answers.put({"error": {"message": "the browser closed the pipe"}})
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        answers = self._answers.pop(message["id"], None)
                    if answers is not None:
                        answers.put(message)
                else:
                    self.events.append(message)

    def call(self, method: str, *, session: bool = True, **params):
        with self._lock:
            self._next += 1
            ident = self._next
            answers = self._answers[ident] = queue.Queue()
        message = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        try:
            os.write(self._write, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise RuntimeError(f"{method}: the browser is gone; its output: {self.log_tail()}") from None
        try:
            answer = answers.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"{method}: no answer from the browser in {self.timeout} s") from None
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(none)"

    def wait_for(self, method: str, *, after: int = 0) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for event in self.events[after:]:
                if event.get("method") == method:
                    return event
            time.sleep(0.02)
        raise TimeoutError(f"no {method} event in {self.timeout} s")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, *, width: int, height: int = 800, dark: bool = False) -> None:
        """Load `url` at a viewport `width` CSS pixels wide, light or dark, and wait for its load event."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=width < 600)
        self.call("Emulation.setEmulatedMedia",
                  features=[{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}])
        mark = len(self.events)
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired", after=mark)

    def hover(self, x: float, y: float) -> None:
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    def press(self, key: str, code: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code)

    def screenshot(self, path: Path, *, height: float | None = None) -> Path:
        """A PNG of the page from its top: `height` CSS pixels of it (default: the whole page)."""
        import base64

        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(height or size["height"], size["height"]),
                "scale": 1}
        params = {"format": "png", "captureBeyondViewport": True, "clip": clip}
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        for fd in (self._write, self._read):
            try:
                os.close(fd)
            except OSError:
                pass
