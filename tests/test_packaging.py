"""`pip install .` from a clean tree gives a working package."""
import shutil
import subprocess
from pathlib import Path

from .conftest import PYTHON, ROOT

LEFT_BEHIND = shutil.ignore_patterns('.git', '.venv', 'build', 'dist', '*.egg-info',
                                     '__pycache__', 'db.sqlite3', '.pytest_cache')


def test_pip_install_gives_importable_modules_and_pinned_dependencies(tmp_path):
    source, target = tmp_path / 'source', tmp_path / 'site'
    shutil.copytree(ROOT, source, ignore=LEFT_BEHIND)
    subprocess.run([PYTHON, '-m', 'pip', 'install', '--quiet', '--no-deps', '--target',
                    str(target), str(source)], check=True, capture_output=True, timeout=300)
    # Import from the installed copy only, from a directory with no sources in it.
    result = subprocess.run(
        [PYTHON, '-c', 'import gevent_specific, extensions.adaptation,'
         ' extensions.management.commands.superserver;'
         ' print(extensions.__file__); print(gevent_specific.__file__)'],
        cwd=tmp_path, env={'PYTHONPATH': str(target), 'PATH': '/usr/bin:/bin'},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for path in result.stdout.split():
        assert Path(path).is_relative_to(target)
    metadata = next(target.glob('superserver-*.dist-info')) / 'METADATA'
    requires = [line.split(': ', 1)[1] for line in metadata.read_text().splitlines()
                if line.startswith('Requires-Dist') and 'extra ==' not in line]
    assert sorted(r.split('<')[0].split('>')[0].lower() for r in requires) == [
        'cryptography', 'django', 'django-extensions', 'gevent', 'isal', 'websockets',
        'werkzeug', 'ws4py']
    assert all('<' in r and '>=' in r for r in requires), requires
    assert not (target / 'superserver').exists()   # the demo project stays in the repo
    assert not (target / 'tests').exists()
