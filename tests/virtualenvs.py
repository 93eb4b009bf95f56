"""The repository as users get it, in virtualenvs of its own.

A copy of the tree as a checkout has it (``copy_source``), an interpreter found the way a
user's shell would (``newest_python``), a fresh virtualenv made and filled by uv
(``uv_virtualenv``: seconds, where pip takes minutes) and commands run with that
virtualenv's python only (``run``). Used by test_packaging (the built wheel on the newest
Python and Django) and test_extras (each extra alone).
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

from .server_process import PYTHON, ROOT

#: What a clean checkout does not have: version control, virtualenvs (nox's are hundreds
#: of megabytes), build output, caches, the demo's database, node's modules.
LEFT_BEHIND = shutil.ignore_patterns('.git', '.venv', '.nox', 'build', 'dist', '*.egg-info',
                                     '__pycache__', 'db.sqlite3', '.pytest_cache',
                                     'node_modules')


def copy_source(destination):
    """A copy of the repository at ``destination`` as a checkout has it; returns it."""
    shutil.copytree(ROOT, destination, ignore=LEFT_BEHIND)
    return destination


def newest_python(minor):
    """The newest pyenv interpreter of ``minor`` (``'3.13'``), else ``python3.13`` on the
    PATH, else None."""
    pyenv = Path(os.environ.get('PYENV_ROOT', Path.home() / '.pyenv'))
    def release(path):
        return tuple(int(number) for number in re.findall(r'\d+', path.parent.parent.name))
    found = sorted(pyenv.glob('versions/%s*/bin/python%s' % (minor, minor)),
                   key=release)
    if found:
        return found[-1]
    on_path = shutil.which('python' + minor)
    return Path(on_path) if on_path else None


def uv():
    """uv, as this virtualenv has it (the test extra installs it), or on the PATH."""
    beside = Path(PYTHON).parent / 'uv'
    return str(beside) if beside.exists() else shutil.which('uv')


def uv_virtualenv(directory, python, *requirements):
    """The python of a new virtualenv in ``directory`` on the interpreter ``python``, with
    ``requirements`` installed by uv (its resolver picks the newest releases they allow)
    and nothing else."""
    subprocess.run([uv(), 'venv', '--quiet', '--python', str(python), str(directory)],
                   check=True, capture_output=True, timeout=120)
    result = subprocess.run(
        [uv(), 'pip', 'install', *map(str, requirements)], capture_output=True, text=True,
        timeout=600, env={**os.environ, 'VIRTUAL_ENV': str(directory)})
    assert result.returncode == 0, result.stdout + result.stderr
    return directory / 'bin' / 'python'


def run(python, *args, cwd, **env):
    """The output of ``python args`` run in ``cwd`` with ``env`` added; fails unless it
    succeeds."""
    result = subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True,
                            env={'PATH': '/usr/bin:/bin', **env}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
