"""The demo pages in a real browser: Debian's Chromium, headless, driven by Selenium."""
import os
import shutil
import subprocess

import pytest

from .server_process import PYTHON, ROOT, ServerProcess

CHROMIUM, CHROMEDRIVER = shutil.which('chromium'), shutil.which('chromedriver')
# Skipped on a developer's machine without them; never in CI, where it must run.
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) and not os.environ.get('CI'),
                                reason='chromium and chromedriver are not installed '
                                       '(make test installs them)')

TIMEOUT = 15


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """The demo project on a migrated database with two users, alice and bob."""
    env = {'DJANGO_SETTINGS_MODULE': 'superserver.settings',
           'DJANGO_DATABASE': str(tmp_path_factory.mktemp('site') / 'db.sqlite3')}
    for command in (['migrate', '--noinput'],
                    ['shell', '-c', 'from django.contrib.auth.models import User\n'
                                    'for name in ("alice", "bob"):\n'
                                    '    User.objects.create_user(name, password=name + "-pw-42")']):
        subprocess.run([PYTHON, 'manage.py', *command], cwd=ROOT, check=True, timeout=120,
                       env={**os.environ, **env}, capture_output=True)
    server = ServerProcess('--noreload', '127.0.0.1:0', env=env)
    yield server
    server.stop()


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


def wait_for_text(driver, css, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, TIMEOUT).until(
        lambda d: any(text in element.text for element in d.find_elements(By.CSS_SELECTOR, css)))


def send(driver, text):
    from selenium.webdriver.common.by import By
    wait_for_text(driver, '#status', 'open')
    field = driver.find_element(By.ID, 'message')
    field.clear()
    field.send_keys(text)
    driver.find_element(By.ID, 'send').click()


def log_in(driver, site, name):
    from selenium.webdriver.common.by import By
    driver.get(site.url + '/chat/lobby/')   # login_required sends us to the form first
    driver.find_element(By.NAME, 'username').send_keys(name)
    driver.find_element(By.NAME, 'password').send_keys(name + '-pw-42')
    driver.find_element(By.ID, 'login').click()


def test_echo_page_round_trips_over_websocket(site, browser):
    driver = browser()
    driver.get(site.url + '/')
    send(driver, 'Hello from Chromium')
    wait_for_text(driver, '#log li.received', 'Hello from Chromium')


def test_clock_page_shows_server_sent_events(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    driver = browser()
    driver.get(site.url + '/clock/')
    wait_for_text(driver, '#status', 'open')
    WebDriverWait(driver, TIMEOUT).until(
        lambda d: int(d.find_element(By.ID, 'count').text) >= 3)
    assert driver.find_element(By.ID, 'time').text.endswith(' UTC')
    assert driver.find_element(By.ID, 'last-id').text.isdigit()


def test_two_users_chat(site, browser):
    alice, bob = browser(), browser()
    log_in(alice, site, 'alice')
    log_in(bob, site, 'bob')
    wait_for_text(alice, '#log li.notice', 'bob joined')   # alice was there first
    send(alice, 'Hello, Bob!')
    wait_for_text(bob, '#log li.message', 'alice: Hello, Bob!')
    send(bob, 'Hi Alice.')
    wait_for_text(alice, '#log li.message', 'bob: Hi Alice.')
    bob.get(site.url + '/clock/')   # bob leaves the room
    wait_for_text(alice, '#log li.notice', 'bob left')
