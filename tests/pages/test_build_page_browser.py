"""The build page in a real browser (Debian's Chromium through Playwright) against the API served by uvicorn.

A running build's page receives its log lines as they are written, then reloads into success with the digest;
a failed build's page explains it; a tampered and an expired link show the 404 page. Screenshots are written
under the test's directory and copied to STARFORGE_PAGE_SHOTS (when set) to be looked at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.build_pages import Builds

from starforge_dag.api import create_app
from starforge_dag.core.models import utcnow
from starforge_dag.emulators.github.served import ServedApp
from starforge_dag.settings import Settings

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """One database is enough here: the browser, not the store, is under test."""
    return f"sqlite:///{tmp_path / 'starforge.db'}"


@pytest.fixture
def served(settings: Settings) -> Iterator[ServedApp]:
    api = ServedApp(create_app(settings), name="api").start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[list[Path]]:
    taken: list[Path] = []
    yield taken
    target = os.environ.get("STARFORGE_PAGE_SHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in taken:
            shutil.copy(shot, Path(target) / shot.name)


def page_url(served: ServedApp, settings: Settings, build_id: int, ago: timedelta = timedelta(0)) -> str:
    return f"{served.url}/page/{settings.page_links().token(build_id, utcnow() - ago)}"


def test_a_running_build_s_log_arrives_live_then_success_and_the_digest(
    served, settings, builds: Builds, browser, shots, tmp_path: Path
) -> None:
    build = builds.running()
    builds.log(build.id, ["\x1b[1;34m[1/3]\x1b[0m FROM busybox", "\x1b[32mfetched\x1b[0m 3 layers", "compiling"])
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(page_url(served, settings, build.id))
    assert page.locator("#log .line").count() == 3
    assert page.locator("#status").inner_text() == "Building"
    for n in range(4, 13):
        builds.log(build.id, [f"\x1b[33mstep output {n}\x1b[0m <b>not bold</b>"], stream="stderr")
        page.wait_for_selector(f"#L{n}", timeout=10_000)  # arrived without a reload: the page is the same
    assert page.locator("#L12 .fg-yellow").inner_text() == "step output 12"
    assert "<b>not bold</b>" in page.locator("#L12").inner_text()
    assert page.locator("#log .line").count() == 12
    shots.append(tmp_path / "page-running.png")
    page.screenshot(path=str(shots[-1]), full_page=True)

    done = builds.succeeded(build)
    page.wait_for_selector("#digest", timeout=15_000)
    assert page.locator("#status").inner_text() == "Succeeded"
    assert page.locator("#digest").inner_text() == done.image_digest
    assert "Desired state moved to this image" in page.locator("#desired").inner_text()
    assert page.locator("#log .line").count() == 12
    shots.append(tmp_path / "page-succeeded.png")
    page.screenshot(path=str(shots[-1]), full_page=True)
    assert problems == []
    context.close()


def test_a_failed_build_s_page_explains_it_on_a_phone(
    served, settings, builds: Builds, browser, shots, tmp_path
) -> None:
    build = builds.failed(
        "executor failed running [/bin/sh -c npm ci]: exit code: 1",
        step="[3/4] RUN npm ci",
        lines=[
            "[3/4] RUN npm ci",
            "\x1b[31mnpm error\x1b[0m code E404",
            "\x1b[31mnpm error\x1b[0m 404 Not Found - GET https://registry.npmjs.org/left-padx - Not found",
            "ERROR [3/4] RUN npm ci: executor failed running [/bin/sh -c npm ci]: exit code: 1",
        ],
    )
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.goto(page_url(served, settings, build.id))
    explanation = page.locator("#explanation")
    assert explanation.locator("h2").inner_text() == "npm could not install left-padx"
    assert "Check the name and version of left-padx" in explanation.locator(".hint").inner_text()
    explanation.locator("a").click()
    assert page.url.endswith("#L3")
    assert page.locator("#L3.culprit").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    shots.append(tmp_path / "page-failed-phone.png")
    page.screenshot(path=str(shots[-1]), full_page=True)
    context.close()


def test_a_tampered_and_an_expired_link_show_the_404_page(
    served, settings, builds: Builds, browser, shots, tmp_path
) -> None:
    build = builds.queued()
    good = page_url(served, settings, build.id)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    expired = page_url(served, settings, build.id, ago=timedelta(days=31))
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    for name, url in (("tampered", tampered), ("expired", expired)):
        answer = page.goto(url)
        assert answer is not None and answer.status == 404
        assert page.locator("h1").inner_text() == "Not found"
        assert f"Build {build.id}" not in page.content()
        shots.append(tmp_path / f"page-{name}.png")
        page.screenshot(path=str(shots[-1]))
    assert page.goto(good).status == 200
    context.close()
