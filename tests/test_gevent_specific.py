"""gevent_specific patches once, is harmless twice, warns when imported too late, and runs
a script or module patched (``python -m gevent_specific``)."""
import json
import os
import subprocess

import pytest

from .conftest import PYTHON, ROOT


def run(code, *args):
    return subprocess.run([PYTHON, *args, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_patches_once_and_is_harmless_twice():
    result = run('import importlib, gevent_specific, gevent_specific\n'
                 'from gevent import monkey\n'
                 'assert monkey.is_module_patched("socket")\n'
                 'assert monkey.is_module_patched("threading")\n'
                 'importlib.reload(gevent_specific)\n'
                 'assert gevent_specific.patch() is False\n'
                 'print("ok")', '-W', 'error')
    assert (result.returncode, result.stdout, result.stderr) == (0, 'ok\n', '')


def test_warns_when_imported_after_ssl():
    result = run('import ssl\nimport gevent_specific')
    assert result.returncode == 0, result.stderr
    assert ('PatchedTooLate: gevent_specific was imported too late (ssl was already imported)'
            in result.stderr)


def test_refuses_when_a_thread_is_running():
    result = run('import threading, time\n'
                 'threading.Thread(target=time.sleep, args=(0.5,)).start()\n'
                 'import gevent_specific')
    assert result.returncode == 1
    assert ('StartedTooLate: gevent_specific was imported after 1 thread(s) started'
            in result.stderr)


def test_runserver_exits_when_wsgi_py_imports_it_too_late(tmp_path):
    """Django's runserver imports wsgi.py in a thread: the error ends the process, which
    would otherwise go on watching files and serve nothing."""
    subprocess.run([PYTHON, '-m', 'django', 'startproject', 'stock', str(tmp_path)],
                   check=True, timeout=60)
    wsgi = tmp_path / 'stock' / 'wsgi.py'
    wsgi.write_text('import gevent_specific  # noqa: F401\n' + wsgi.read_text())
    result = subprocess.run([PYTHON, 'manage.py', 'runserver', '--skip-checks', '127.0.0.1:0'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, 'DJANGO_SETTINGS_MODULE': 'stock.settings'})
    assert result.returncode == 1, result.stderr
    assert ('gevent_specific.StartedTooLate: gevent_specific was imported after 1 thread(s) '
            "started: import it first, before anything starts a thread\n(imported in thread "
            "'django-main-thread': the process exits)\n") in result.stderr
    assert 'stock/wsgi.py", line 1, in <module>' in result.stderr


def test_manage_py_patches_first():
    result = subprocess.run(
        [PYTHON, 'manage.py', 'shell', '-c',
         'from gevent import monkey; print(monkey.is_module_patched("socket"))'],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={'PATH': '/usr/bin:/bin', 'DJANGO_SETTINGS_MODULE': 'superserver.settings'})
    assert result.stdout.splitlines()[-1] == 'True', result.stderr
    assert 'PatchedTooLate' not in result.stderr


# -- python -m gevent_specific: patch, then run a script or module as python would ----------

PROBE = '''
import json, sys
from django.utils.autoreload import get_child_arguments
from gevent import monkey
print(json.dumps({'argv': sys.argv, 'path0': sys.path[0], 'file': __file__, 'name': __name__,
                  'spec': getattr(__spec__, 'name', None), 'restart': get_child_arguments(),
                  'patched': monkey.is_module_patched('socket')}))
'''


def probe(cwd, *args):
    result = subprocess.run([PYTHON, '-W', 'error', *args], cwd=cwd, capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, ''), result.stderr
    return json.loads(result.stdout)


def test_runs_a_script_patched_as_python_runs_it(tmp_path):
    (tmp_path / 'bin').mkdir()
    (tmp_path / 'bin' / 'probe.py').write_text(PROBE)
    plain = probe(tmp_path, 'bin/probe.py', 'a', '-b')
    patched = probe(tmp_path, '-m', 'gevent_specific', 'bin/probe.py', 'a', '-b')
    assert (plain.pop('patched'), patched.pop('patched')) == (False, True)
    assert plain['path0'] == str(tmp_path / 'bin')   # the script's directory, not the cwd
    assert plain['file'] == str(tmp_path / 'bin' / 'probe.py')
    # runpy gives the script's absolute path as sys.argv[0], where python keeps it as given.
    assert plain['argv'][0] == plain['restart'][2] == 'bin/probe.py'
    plain['argv'][0] = plain['restart'][2] = plain['file']
    assert patched == plain


def test_runs_a_module_patched_as_python_runs_it(tmp_path):
    (tmp_path / 'probe').mkdir()
    (tmp_path / 'probe' / '__init__.py').write_text('')
    (tmp_path / 'probe' / '__main__.py').write_text(PROBE)
    plain = probe(tmp_path, '-m', 'probe', 'a', '-m', 'b')
    patched = probe(tmp_path, '-m', 'gevent_specific', '-m', 'probe', 'a', '-m', 'b')
    assert (plain.pop('patched'), patched.pop('patched')) == (False, True)
    assert plain['restart'][1:] == ['-Werror', '-m', 'probe', 'a', '-m', 'b']
    assert patched == plain


@pytest.mark.parametrize('args', [[], ['-m'], ['-c', 'pass']])
def test_runner_usage(args):
    result = subprocess.run([PYTHON, '-m', 'gevent_specific', *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == 'usage: python -m gevent_specific (SCRIPT | -m MODULE) [args...]\n'
