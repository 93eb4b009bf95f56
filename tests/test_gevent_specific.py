"""gevent_specific patches once, is harmless twice, and warns when imported too late."""
import subprocess

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


def test_manage_py_patches_first():
    result = subprocess.run(
        [PYTHON, 'manage.py', 'shell', '-c',
         'from gevent import monkey; print(monkey.is_module_patched("socket"))'],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={'PATH': '/usr/bin:/bin', 'DJANGO_SETTINGS_MODULE': 'superserver.settings'})
    assert result.stdout.splitlines()[-1] == 'True', result.stderr
    assert 'PatchedTooLate' not in result.stderr
