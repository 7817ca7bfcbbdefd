"""The monitor's HTML report as a person sees it: rendered by a real headless browser (Debian's Chromium, driven by
Playwright) with every network request refused, the drifted feature is the first one shown, its plot drawn beside
its numbers, and the page asked for nothing from outside.

Without Chromium the test is skipped with the way to install it; CI installs it and sets REQUIRE_BROWSER=1, which
makes a missing browser a failure."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from pipeline.monitor.__main__ import main
from tests.support.monitor_captures import SHIFTED, capture, sample

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        message = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_the_drifted_feature_comes_first_with_its_plot_and_nothing_is_fetched(browser, monitor_folder, data_set,
                                                                              baseline_file, capsys):
    names = data_set[0]
    rows, _ = sample(data_set, seed=4)
    rows[:, names.index(SHIFTED)] *= np.float32(1.25)
    capture_dir, _ = capture(monitor_folder / "browser", rows)
    page_file = monitor_folder / "browser/report.html"
    assert main(["report", "--captures", str(capture_dir), "--baseline", str(baseline_file), "--html",
                 str(page_file), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requested: list[str] = []

    def refuse(route):
        requested.append(route.request.url)
        route.abort()

    page.route(lambda url: not url.startswith("file:"), refuse)
    page.goto(page_file.as_uri())
    shown = page.evaluate("""() => [...document.querySelectorAll('section.column')].map(section => {
        const plot = section.querySelector('svg'), box = plot && plot.getBoundingClientRect(),
              table = section.querySelector('table').getBoundingClientRect();
        return {name: section.dataset.name, heading: section.querySelector('h3').innerText,
                drifted: section.classList.contains('drifted'),
                plot: box ? {width: box.width, height: box.height, left: box.left} : null,
                table_right: table.right, top: section.getBoundingClientRect().top};
    })""")
    assert requested == []
    first = shown[0]
    assert first["name"] == SHIFTED and first["drifted"] and first["heading"].endswith("drifted")
    assert first["plot"]["width"] > 200 and first["plot"]["height"] > 100  # drawn, not an empty box
    assert first["plot"]["left"] >= first["table_right"]  # beside its numbers
    assert [entry["top"] for entry in shown] == sorted(entry["top"] for entry in shown)  # in the document's order
    assert page.inner_text("#status").startswith("Drift: 1 of 30 features drifted (mean radius)")
    assert len([entry for entry in shown if entry["drifted"]]) == 1 + sum(
        result["drift"] for result in document["prediction"].values())
    screenshot = os.environ.get("MONITOR_REPORT_SCREENSHOT")
    if screenshot:  # docs/images/monitor-report.png is made this way
        page.screenshot(path=screenshot)
    page.close()
