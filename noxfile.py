"""The test matrix: the suite on every Django release Django supports, on every Python
it supports that this machine has, each combination in a virtualenv of its own.

``make matrix`` runs every session; ``nox -s "tests(python='3.13', django='6.1')"`` one;
arguments after ``--`` go to pytest instead of the matrix's own selection, as in
``nox -- tests/test_command.py``. The virtualenvs are made by uv (in seconds) from the
interpreters pyenv has, and are kept in ``.nox/`` between runs.
"""
import os
from pathlib import Path
from xml.etree import ElementTree

import nox

#: (Python, Django) pairs Django supports: 5.2 LTS runs on 3.10-3.14, 6.x needs 3.12.
COMBINATIONS = [
    ('3.11', '5.2'),
    ('3.12', '5.2'), ('3.12', '6.0'), ('3.12', '6.1'),
    ('3.13', '5.2'), ('3.13', '6.0'), ('3.13', '6.1'),
]

#: What the matrix runs: the tests of what changes from one Python or Django to the next.
#: The protocol (frames, handshake, compression, limits), the server (HTTP, shutdown,
#: gevent_specific, gunicorn), Django (views, async views, its features across versions,
#: databases with PostgreSQL and its pool, hashers, proxies, checks), the test client,
#: the command and fan-out (pub/sub, history, presence, recovery). ``make test`` runs the
#: rest on one combination: soak, Autobahn and the benchmarks' checks (minutes of load,
#: on our code rather than Python's or Django's), the browser, nginx and Node interop tests
#: (other programs speaking the protocol), the django-websocket-redis compatibility app
#: (its own ws4redis.js in Chromium), the README's blocks and the tests that install the
#: package into fresh virtualenvs of their own (packaging on the newest Python and Django,
#: extras, a stock project).
MATRIX_TESTS = [
    'tests/test_protocol.py', 'tests/test_handshake.py', 'tests/test_compression.py',
    'tests/test_limits.py', 'tests/test_server.py', 'tests/test_http.py',
    'tests/test_shutdown.py', 'tests/test_gevent_specific.py', 'tests/test_gunicorn.py',
    'tests/test_sse.py', 'tests/test_stack.py', 'tests/test_conf.py',
    'tests/test_django.py', 'tests/test_async.py', 'tests/test_django_features.py',
    'tests/test_database.py', 'tests/test_postgres.py', 'tests/test_hashers.py',
    'tests/test_proxies.py', 'tests/test_testing.py', 'tests/test_command.py',
    'tests/test_devlog.py', 'tests/test_pubsub.py', 'tests/test_fanout.py',
    'tests/test_history.py', 'tests/test_presence.py', 'tests/test_recovery.py',
]

#: Load tests of those modules, which ``make test`` runs: hundreds of clients at once
#: measure our code under load, and each module keeps its smaller tests of the same paths.
LOAD_TESTS = [
    'tests/test_limits.py::test_slow_clients_do_not_hold_up_the_others',
    'tests/test_async.py::test_a_crowd_of_async_views_beside_websockets_and_sync_views',
    'tests/test_postgres.py::test_500_clients_query_on_every_message_with_30_connections_allowed',
    'tests/test_fanout.py::test_1000_subscribers_across_both_processes_get_all_100_messages',
]


def pyenv_on_path():
    """Put pyenv's interpreters on PATH, newest patch release of each minor first: nox
    finds a Python by its name (python3.13), which pyenv's shims only give for the
    versions its global setting names."""
    root = Path(os.environ.get('PYENV_ROOT', Path.home() / '.pyenv'))
    found = sorted(root.glob('versions/3.*/bin'), reverse=True,
                   key=lambda bin: tuple(int(part) for part in bin.parent.name.split('.')
                                         if part.isdigit()))
    os.environ['PATH'] = os.pathsep.join([*map(str, found), os.environ['PATH']])


pyenv_on_path()
#: Each session's row of the table, beside its report in ``.nox/<session>/tmp/``.
ROW = 'matrix-row.md'

nox.options.default_venv_backend = 'uv'
nox.options.download_python = 'never'   # pyenv's interpreters, or none: no downloads
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = 'yes'


@nox.session(allow_parallel=True)
@nox.parametrize('python,django', COMBINATIONS)
def tests(session, django):
    """The matrix's tests on one Python and Django, in a virtualenv of their own."""
    session.install('-e', '.[test]', 'Django~=%s.0' % django)
    run_tests(session)


@nox.session(python='3.13', default=False)
def lowest(session):
    """The matrix's tests with every dependency at the lower bound setup.cfg gives it, on
    the newest Python, where old releases most often lack wheels: ``nox -s lowest``."""
    # Wheels only, but for this project and the two pure-Python sdists of the test extra.
    session.install('--resolution', 'lowest-direct', '--only-binary', ':all:',
                    *(option for name in ('superserver', 'django-websocket-redis', 'psycogreen')
                      for option in ('--no-binary', name)), '-e', '.[test]')
    run_tests(session)


def run_tests(session):
    """pytest on the matrix's tests, or on the session's arguments, with its row."""
    versions = session.run('python', '-c', 'import django, sys; print("Python %s, Django %s"'
                           ' % (sys.version.split()[0], django.get_version()))', silent=True)
    selection = session.posargs or [
        *MATRIX_TESTS, *('--deselect=' + test for test in LOAD_TESTS)]
    report = Path(session.create_tmp()) / 'junit.xml'
    report.unlink(missing_ok=True)
    try:
        session.run('python', '-m', 'pytest', '-p', 'no:cacheprovider', '-m', 'not soak',
                    '--junit-xml', str(report), *selection)
    finally:
        if versions:   # not under --install-only
            write_row(report, versions.strip())


def write_row(report, versions):
    """The session's row of the table ``make matrix`` prints: what pytest's report counts."""
    suite = ElementTree.parse(report).getroot().find('testsuite') if report.exists() else None
    counts = {key: int(suite.get(key)) if suite is not None else 0
              for key in ('tests', 'failures', 'errors', 'skipped')}
    passed = counts['tests'] - counts['failures'] - counts['errors'] - counts['skipped']
    time = '%.0f s' % float(suite.get('time')) if suite is not None else 'no report'
    report.with_name(ROW).write_text('| %s | %d | %d | %d | %d | %s |\n' % (
        versions, counts['tests'], passed, counts['failures'] + counts['errors'],
        counts['skipped'], time))
