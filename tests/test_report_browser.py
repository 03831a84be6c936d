"""The HTML reports in a real headless Chromium (Debian's `chromium`), offline: hovering each bar
shows its exact figure, a keyboard user gets the same, the page makes no request but its own file,
runs without a script error or a blocked resource, fits a phone's width, and a hostile name never
runs. Skipped, with the reason, where Chromium is not installed (.ci/run installs it).

TOLLGATE_SCREENSHOTS=DIR also writes the screenshots there (docs/ holds the README's)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cdp import Chromium, find_chromium
from report_history import HOSTILE, build

CENTER = """(function(i){var g=document.querySelectorAll('.bar')[i];g.scrollIntoView({block:'center'});
var r=g.querySelector('.hit').getBoundingClientRect();return [r.left+r.width/2,r.top+r.height*0.8];})(%d)"""
FIRST_CHART = "document.querySelector('figure').getBoundingClientRect().bottom + window.scrollY + 170"
"""The top of the page down to the first chart and its caption (what the README shows)."""
TIP = """Array.from(document.querySelectorAll('.tip')).filter(function(t){return !t.hidden;})
.map(function(t){return t.innerText;})"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does it): "
                    "the HTML reports were not checked in a browser")
    handle = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    handle.call("Network.enable")
    handle.call("Page.enable")
    handle.call("Runtime.enable")
    handle.call("Log.enable")
    handle.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                uploadThroughput=-1)
    yield handle
    handle.close()


@pytest.fixture
def history(tg):
    build(tg)
    return tg


def _keep(shot: Path, name: str) -> None:
    folder = os.environ.get("TOLLGATE_SCREENSHOTS")
    if folder:
        shutil.copyfile(shot, Path(folder) / name)


def _loaded_cleanly(browser, url: str, mark: int) -> None:
    """Since `mark`: the only request was the file itself; no script error, no console message
    (a refused resource or script is one), no dialog."""
    events = browser.events[mark:]
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert requests == [url]
    trouble = [e for e in events if e.get("method") in (
        "Runtime.exceptionThrown", "Log.entryAdded", "Runtime.consoleAPICalled", "Page.javascriptDialogOpening",
        "Network.loadingFailed")]
    assert trouble == []


def test_hovering_each_bar_shows_its_exact_figure_offline(browser, cli, history, tmp_path):
    target = tmp_path / "usage.html"
    assert cli("usage", "show", "globex", "--by", "week", "--html", str(target)).exit_code == 0
    data = cli("usage", "show", "globex", "--by", "week", "--json").json()
    expected = [(f"{p['quantity']} {f['unit']}", p["period"], f) for f in data["features"] for p in f["series"]]
    mark = len(browser.events)
    browser.open(target.as_uri(), width=820)
    assert browser.evaluate("document.querySelectorAll('.bar').length") == len(expected) == 24
    assert browser.evaluate(TIP) == []  # no tooltip until a bar is hovered
    for i, (figure, period, feature) in enumerate(expected):
        browser.hover(*browser.evaluate(CENTER % i))
        [tip] = browser.evaluate(TIP)
        assert tip.splitlines()[0] == figure and period in tip
        if feature["limit"] is not None:
            assert "% of the allowance" in tip
    browser.hover(*browser.evaluate(CENTER % 7))  # the biggest week of ai-tokens, for the picture
    browser.evaluate("window.scrollTo(0, 0)")
    browser.screenshot(tmp_path / "light-whole.png")
    _keep(browser.screenshot(tmp_path / "light.png", height=browser.evaluate(FIRST_CHART)), "usage-report.png")
    browser.hover(0, 0)
    assert browser.evaluate(TIP) == []

    # a keyboard user: Tab reaches the first bar, which shows its figure; Escape hides it
    browser.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    for _ in range(5):
        browser.press("Tab", 9)
        if browser.evaluate("document.activeElement.getAttribute('class')") == "bar":
            break
    assert browser.evaluate("document.activeElement.getAttribute('aria-label')").startswith(expected[0][1])
    assert browser.evaluate(TIP)[0].splitlines()[0] == expected[0][0]
    browser.press("Tab", 9)
    assert browser.evaluate(TIP)[0].splitlines()[0] == expected[1][0]
    browser.press("Escape", 27)
    assert browser.evaluate(TIP) == []
    _loaded_cleanly(browser, target.as_uri(), mark)


def test_dark_at_phone_width(browser, cli, history, tmp_path):
    target = tmp_path / "usage.html"
    assert cli("usage", "show", "globex", "--by", "week", "--html", str(target)).exit_code == 0
    mark = len(browser.events)
    browser.open(target.as_uri(), width=390, dark=True)
    assert browser.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 20, 24)"
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways page
    # the chart's labels stay legible on a phone: about 13 CSS pixels (a 13 px box at least)
    assert browser.evaluate("document.querySelector('.tick').getBoundingClientRect().height") >= 13
    browser.hover(*browser.evaluate(CENTER % 3))
    assert browser.evaluate(TIP)[0].startswith("15750000 token")
    browser.evaluate("window.scrollTo(0, 0)")
    browser.screenshot(tmp_path / "dark-phone-whole.png")
    _keep(browser.screenshot(tmp_path / "dark-phone.png", height=browser.evaluate(FIRST_CHART)),
          "usage-report-phone-dark.png")
    _loaded_cleanly(browser, target.as_uri(), mark)


def test_customer_page_with_a_hostile_name(browser, cli, history, tmp_path):
    target = tmp_path / "customer.html"
    assert cli("customer", "show", "hostile", "--html", str(target)).exit_code == 0
    mark = len(browser.events)
    browser.open(target.as_uri(), width=820)
    assert browser.evaluate("document.querySelector('h1').textContent").startswith(HOSTILE)
    assert browser.evaluate("document.title") == f"Customer hostile: {HOSTILE}"
    assert browser.evaluate("document.querySelectorAll('script').length") == 1
    assert browser.evaluate("document.querySelectorAll('svg.meter').length") == 2
    last = browser.evaluate("document.querySelectorAll('.bar').length") - 1
    browser.hover(*browser.evaluate(CENTER % last))
    assert browser.evaluate(TIP)[0].splitlines()[0].endswith(" image")
    _loaded_cleanly(browser, target.as_uri(), mark)


def test_the_checks_see_a_request_and_a_refused_script(browser, tmp_path):
    """The two ways a page could reach out are caught: a plain page's image request is seen (and
    fails: the browser is offline), and the report's policy refuses a script it does not know."""
    from tollgate.report_html import document

    plain = tmp_path / "plain.html"
    plain.write_text('<!DOCTYPE html><title>t</title><img src="http://192.0.2.1/pixel.png" alt="">')
    mark = len(browser.events)
    browser.open(plain.as_uri(), width=400)
    with pytest.raises(AssertionError):
        _loaded_cleanly(browser, plain.as_uri(), mark)
    smuggled = tmp_path / "smuggled.html"
    smuggled.write_text(document("t", "<script>document.title = 'ran';</script>"))
    mark = len(browser.events)
    browser.open(smuggled.as_uri(), width=400)
    assert browser.evaluate("document.title") == "t"  # the injected script did not run ...
    with pytest.raises(AssertionError):
        _loaded_cleanly(browser, smuggled.as_uri(), mark)  # ... and the refusal is seen
