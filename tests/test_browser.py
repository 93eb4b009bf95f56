"""The demo pages in a real browser: Debian's Chromium, headless, driven by Selenium."""
import os
import subprocess

import pytest

from .chromium import browser, requires_chromium  # noqa: F401 (browser: a fixture)
from .server_process import PYTHON, ROOT, ServerProcess, free_port
from .services import redis_server, requires_redis  # noqa: F401 (redis_server: a fixture)

pytestmark = requires_chromium

TIMEOUT = 15


def demo_database(directory):
    """The demo project's environment, on a migrated database with two users, alice and
    bob."""
    env = {'DJANGO_SETTINGS_MODULE': 'superserver.settings',
           'DJANGO_DATABASE': str(directory / 'db.sqlite3')}
    for command in (['migrate', '--noinput'],
                    ['shell', '-c', 'from django.contrib.auth.models import User\n'
                                    'for name in ("alice", "bob"):\n'
                                    '    User.objects.create_user(name, password=name + "-pw-42")']):
        subprocess.run([PYTHON, 'manage.py', *command], cwd=ROOT, check=True, timeout=120,
                       env={**os.environ, **env}, capture_output=True)
    return env


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    server = ServerProcess('--noreload', '127.0.0.1:0',
                           env=demo_database(tmp_path_factory.mktemp('site')))
    yield server
    server.stop()


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


def chat_lines(driver):
    """The chat's messages as the page shows them, oldest first."""
    from selenium.webdriver.common.by import By
    items = driver.find_elements(By.CSS_SELECTOR, '#log li.message')
    return [item.text for item in reversed(items)]


def wait_for_lines(driver, lines):
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, TIMEOUT).until(lambda d: chat_lines(d)[-len(lines):] == lines)


def test_a_reload_keeps_the_conversation_and_shows_who_is_here(site, browser):
    from selenium.webdriver.common.by import By
    alice, bob = browser(), browser()
    log_in(alice, site, 'alice')
    log_in(bob, site, 'bob')
    said = ['alice: before the reload %d' % n for n in range(3)]
    for line in said:
        send(alice, line.split(': ', 1)[1])
    wait_for_lines(bob, said)
    bob.refresh()
    wait_for_text(bob, '#status', 'open')
    wait_for_lines(bob, said)
    # Each line once: the reload asked for everything the room keeps, nothing twice.
    assert [line for line in chat_lines(bob) if 'before the reload' in line] == said
    wait_for_text(bob, '#members', 'alice')
    members = bob.find_elements(By.CSS_SELECTOR, '#members li')
    assert [member.text for member in members] == ['alice', 'bob']


@pytest.fixture
def redis_sites(tmp_path, redis_server):
    """Two demo servers on one Redis: the first on a port it can be restarted on."""
    env = {**demo_database(tmp_path), 'SUPERSERVER_BROKER': redis_server.url}
    port = free_port()
    servers = [ServerProcess('--noreload', '127.0.0.1:%d' % port, env=env),
               ServerProcess('--noreload', '127.0.0.1:0', env=env)]
    yield servers, port, env
    for server in servers:
        server.stop()


@requires_redis
def test_a_page_that_loses_its_server_recovers_what_was_said_meanwhile(redis_sites, browser):
    """alice's server restarts while bob, on the other server, goes on talking: her page
    reconnects with its last position and shows every line, once, in order."""
    from selenium.webdriver.common.by import By
    servers, port, env = redis_sites
    alice, bob = browser(), browser()
    log_in(alice, servers[0], 'alice')
    log_in(bob, servers[1], 'bob')
    send(bob, 'first')
    wait_for_lines(alice, ['bob: first'])
    servers[0].stop()   # SIGTERM: alice's socket is closed with 1001, her page retries
    wait_for_text(alice, '#status', 'reconnecting')
    missed = ['bob: while alice was away %d' % n for n in range(5)]
    for line in missed:
        send(bob, line.split(': ', 1)[1])
    wait_for_lines(bob, missed)
    servers[0] = ServerProcess('--noreload', '127.0.0.1:%d' % port, env=env)
    wait_for_text(alice, '#status', 'open')
    wait_for_lines(alice, missed)
    assert chat_lines(alice) == ['bob: first', *missed]
    send(bob, 'and live again')
    wait_for_lines(alice, ['bob: and live again'])
    lines = reversed(alice.find_elements(By.CSS_SELECTOR, '#log li'))
    print("\nalice's page, oldest first:\n" + '\n'.join(line.text for line in lines))
