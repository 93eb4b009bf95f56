"""The two Autobahn fuzzing clients, and which one runs.

autobahntestsuite 0.8.2 (``wstest``) is the reference, but it is Python 2.7 software,
and plain Debian and Ubuntu have no Python 2.7 any more. kosoku (Python 3, a Rust
runner) drives the same Autobahn case files and writes the same report, so it runs
where no Python 2.7 is found. Both take the spec run.py writes (fuzzingclient.json).
"""
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / 'requirements-py27.txt'
CHOICES = ('auto', 'wstest', 'kosoku')


class ClientMissing(Exception):
    """The client asked for cannot run here; the message says how to get it."""


def find_python27():
    """The Python 2.7 to run wstest with, or None.

    ``$SUPERSERVER_PYTHON27``, when set, is the only candidate, even empty: so
    ``SUPERSERVER_PYTHON27=`` hides every 2.7 of the machine. Otherwise pyenv's
    ``versions/2.7*``, then ``python2.7`` on PATH.
    """
    if 'SUPERSERVER_PYTHON27' in os.environ:
        candidates = [os.environ['SUPERSERVER_PYTHON27']]
    else:
        pyenv_root = Path(os.environ.get('PYENV_ROOT', Path.home() / '.pyenv'))
        candidates = [*sorted(pyenv_root.glob('versions/2.7*/bin/python2.7'), reverse=True),
                      shutil.which('python2.7')]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


class Wstest:
    """autobahntestsuite, as pinned in requirements-py27.txt, in a Python 2.7
    virtualenv built once and cached outside the repository."""

    name = 'wstest'

    def __init__(self, python27):
        self.python27 = python27
        self.version = re.search(r'^autobahntestsuite==(\S+)', REQUIREMENTS.read_text(),
                                 re.MULTILINE).group(1)

    def __str__(self):
        return 'wstest %s (autobahntestsuite, %s)' % (self.version, self.python27)

    @property
    def venv(self):
        """$SUPERSERVER_CACHE_DIR/autobahn-py27, by default in ~/.cache/superserver."""
        cache = Path(os.environ.get('SUPERSERVER_CACHE_DIR',
                                    Path.home() / '.cache' / 'superserver'))
        return cache / 'autobahn-py27'

    def prepare(self):
        """Build the virtualenv when it is missing or was built from other pins or
        another Python."""
        fingerprint = hashlib.sha256(REQUIREMENTS.read_bytes() + str(self.python27).encode())
        stamp = self.venv / 'superserver-requirements.sha256'
        if stamp.is_file() and stamp.read_text() == fingerprint.hexdigest():
            return
        print('autobahn: building the Python 2.7 client environment in %s' % self.venv,
              flush=True)
        shutil.rmtree(self.venv, ignore_errors=True)
        subprocess.run([sys.executable, '-m', 'virtualenv', '--quiet', '--python',
                        str(self.python27), str(self.venv)], check=True)
        subprocess.run([str(self.venv / 'bin' / 'pip'), 'install', '-qq',
                        '--disable-pip-version-check', '--no-python-version-warning',
                        '-r', str(REQUIREMENTS)], check=True)
        stamp.write_text(fingerprint.hexdigest())

    def command(self, spec_file):
        return [str(self.venv / 'bin' / 'wstest'), '--mode', 'fuzzingclient',
                '--spec', str(spec_file)]


class Kosoku:
    """kosoku, installed with the project's test extra. It reads no spec file (0.1),
    so the spec's URL, cases and exclude-cases become its arguments; it runs from
    kosoku_cli.py, which mends its compression cases."""

    name = 'kosoku'

    def __init__(self):
        try:
            self.version = importlib.metadata.version('kosoku')
        except importlib.metadata.PackageNotFoundError:
            raise ClientMissing(
                "kosoku is not installed in %s. Install the test extra (`make install`,\n"
                "or `pip install -e '.[test]'`) and run again." % sys.prefix) from None

    def __str__(self):
        return 'kosoku %s (Python %d.%d)' % (self.version, *sys.version_info[:2])

    def prepare(self):
        """Nothing to build: kosoku is a dependency of the project's tests."""

    def command(self, spec_file):
        spec = json.loads(spec_file.read_text())
        (server,) = spec['servers']
        return [sys.executable, str(HERE / 'kosoku_cli.py'), server['url'],
                '--outdir', spec['outdir'],
                *(option for case in spec['cases'] for option in ('--include', case)),
                *(option for case in spec['exclude-cases'] for option in ('--exclude', case))]


def choose(name='auto'):
    """The client called ``name``; for 'auto', wstest where a Python 2.7 is found
    (the reference), else kosoku."""
    if name == 'kosoku':
        return Kosoku()
    python27 = find_python27()
    if python27:
        return Wstest(python27)
    if name == 'wstest':
        raise ClientMissing(
            'No Python 2.7 found, and wstest (autobahntestsuite) runs on Python 2.7 only.\n'
            'Looked at %s. Install one with\n'
            '`pyenv install 2.7.18`, or point SUPERSERVER_PYTHON27 at a python2.7, or run\n'
            'kosoku instead (--client kosoku).' % (
                '$SUPERSERVER_PYTHON27 alone (it is set)' if 'SUPERSERVER_PYTHON27' in os.environ
                else "$PYENV_ROOT's versions/2.7* and python2.7 on PATH"))
    return Kosoku()
