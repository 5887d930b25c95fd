"""Fixtures for headless-Chromium tests: a fake microphone playing a synthesized sentence.

Chromium runs with a fresh profile and every background service off (this machine has no
network beyond loopback), its media permission prompt auto-accepted and its microphone
replaced by a WAV file (`--use-file-for-fake-audio-capture`). Missing `chromium`,
`chromedriver` or `selenium` skips the tests, or fails them under MS_REQUIRE_PEERS=1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"


def require_chromium() -> None:
    missing = [exe for exe in ("chromium", "chromedriver") if shutil.which(exe) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip, the `test` extra)")
    if not missing:
        return
    why = f"not installed: {', '.join(missing)} (Debian packages chromium / chromium-driver)"
    if os.environ.get("MS_REQUIRE_PEERS") == "1":
        pytest.fail(why)
    pytest.skip(why)


ChromeFactory = Callable[[Path], Any]


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[ChromeFactory]:
    """`chrome(microphone_wav) -> selenium WebDriver`; quit when the test ends."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def start(microphone: Path) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}%noloop",  # the caller speaks once
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1280,860",
        ):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages: driver.get_log
        os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach the network
        service = Service(
            executable_path=shutil.which("chromedriver") or "chromedriver",
            log_output=str(tmp_path / f"chromedriver-{len(drivers)}.log"),
        )
        driver = webdriver.Chrome(options=options, service=service)
        driver.set_script_timeout(60)
        drivers.append(driver)
        return driver

    try:
        yield start
    finally:
        for driver in drivers:
            try:
                driver.quit()
            except Exception:  # the browser may already be gone; the test result says why
                pass


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
