"""Debian's Chromium, headless, driven by Selenium: the browser of the browser tests.

Import ``browser`` (a fixture) into a test module and mark its tests ``requires_chromium``.
"""
import os
import shutil

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which('chromium'), shutil.which('chromedriver')
#: Skipped on a developer's machine without them; never in CI, where they must run.
requires_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get('CI'),
    reason='chromium and chromedriver are not installed (make test installs them)')


@pytest.fixture
def browser(tmp_path):
    """A factory of headless Chromium sessions, each with a profile of its own."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def open_browser():
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
                     '--no-first-run', '--disable-background-networking',
                     '--disable-component-update', '--disable-sync',
                     '--user-data-dir=%s' % (tmp_path / ('profile%d' % len(drivers)))):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        drivers.append(driver)
        return driver

    yield open_browser
    for driver in drivers:
        driver.quit()
