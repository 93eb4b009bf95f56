"""Run the Autobahn|Testsuite fuzzing client against superserver, then judge the report.

    python autobahn/run.py [--cases '1.*,2.*'] [--path /ws/echo/] [--settings MODULE]

1. The client, autobahntestsuite 0.8.2, is Python 2.7 software. A Python 2.7
   virtualenv with the set pinned in requirements-py27.txt is built once and cached
   outside the repository ($SUPERSERVER_CACHE_DIR, else ~/.cache/superserver).
2. ``./manage.py superserver --noreload --nodebugger`` serves the demo project on a
   free loopback port; its echo view accepts messages up to 16 MiB (chapter 9).
3. ``wstest -m fuzzingclient`` runs the cases; the report lands in autobahn/reports/
   (index.html to read, index.json for the checker, wstest.log for the client's output).
4. The server is stopped and check.py prints its table and verdict; its exit code is ours.
   Before it, a line gives the run's wall time and the CPU seconds the server spent
   on it (``--cases '12.*,13.*'`` measures compression alone).
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.server_process import ServerProcess  # noqa: E402

import check  # noqa: E402  (autobahn/check.py, beside this file)

REQUIREMENTS = HERE / 'requirements-py27.txt'
DEFAULT_REPORTS = HERE / 'reports'
# Seconds. Chapters 1-10 take well under a minute here; 12 and 13 (permessage-deflate,
# about 11 GB each way through the client's Python 2 code) take about 16 minutes.
WSTEST_TIMEOUT = 60 * 60


class Python27Missing(Exception):
    pass


def find_python27():
    """The Python 2.7 to build the client's virtualenv with."""
    candidates = []
    if os.environ.get('SUPERSERVER_PYTHON27'):
        candidates.append(Path(os.environ['SUPERSERVER_PYTHON27']))
    pyenv_root = Path(os.environ.get('PYENV_ROOT', Path.home() / '.pyenv'))
    candidates += sorted(pyenv_root.glob('versions/2.7*/bin/python2.7'), reverse=True)
    on_path = shutil.which('python2.7')
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise Python27Missing(
        'No Python 2.7 found, and the Autobahn fuzzing client (autobahntestsuite 0.8.2)\n'
        'runs on Python 2.7 only. Looked at $SUPERSERVER_PYTHON27, %s/versions/2.7*\n'
        'and python2.7 on PATH. Install one with `pyenv install 2.7.18`, or point\n'
        'SUPERSERVER_PYTHON27 at a python2.7 executable, and run again.' % pyenv_root)


def client_environment():
    """The cached Python 2.7 virtualenv with wstest in it, built when missing or stale."""
    python27 = find_python27()
    fingerprint = hashlib.sha256(REQUIREMENTS.read_bytes() + str(python27).encode())
    cache = Path(os.environ.get('SUPERSERVER_CACHE_DIR',
                                Path.home() / '.cache' / 'superserver'))
    venv = cache / 'autobahn-py27'
    stamp = venv / 'superserver-requirements.sha256'
    if stamp.is_file() and stamp.read_text() == fingerprint.hexdigest():
        return venv
    print('autobahn: building the Python 2.7 client environment in %s' % venv, flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, '-m', 'virtualenv', '--quiet', '--python', str(python27),
                    str(venv)], check=True)
    subprocess.run([str(venv / 'bin' / 'pip'), 'install', '-qq', '--disable-pip-version-check',
                    '--no-python-version-warning', '-r', str(REQUIREMENTS)], check=True)
    stamp.write_text(fingerprint.hexdigest())
    return venv


def fuzzing_spec(url, cases, reports):
    spec = json.loads((HERE / 'fuzzingclient.json').read_text())
    spec['outdir'] = str(reports)
    spec['servers'][0]['url'] = url
    if cases:
        spec['cases'] = cases
    return spec


def server_cpu(process):
    """User and system CPU seconds of the server process so far."""
    times = process.cpu_times()
    return times.user + times.system


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cases', help="comma-separated case patterns (default: all)")
    parser.add_argument('--path', default='/ws/echo/', help='the echo endpoint to fuzz')
    parser.add_argument('--settings', default='superserver.settings',
                        help='Django settings module of the project to serve')
    parser.add_argument('--reports', type=Path, default=DEFAULT_REPORTS,
                        help='where the report goes (emptied first)')
    args = parser.parse_args(argv)
    reports = args.reports.resolve()
    try:
        venv = client_environment()
    except Python27Missing as error:
        print('autobahn: %s' % error)
        return 2

    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir(parents=True)
    server = ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0',
                           env={'DJANGO_SETTINGS_MODULE': args.settings})
    try:
        spec = fuzzing_spec(server.ws_url + args.path, args.cases and args.cases.split(','),
                            reports)
        spec_file = reports / 'fuzzingclient.json'
        spec_file.write_text(json.dumps(spec, indent=2))
        print('autobahn: fuzzing %s (cases %s)' % (spec['servers'][0]['url'],
                                                  ', '.join(spec['cases'])), flush=True)
        server_process = psutil.Process(server.pid)
        cpu_before, started = server_cpu(server_process), time.monotonic()
        with open(reports / 'wstest.log', 'w') as log:
            client = subprocess.run(
                [str(venv / 'bin' / 'wstest'), '--mode', 'fuzzingclient', '--spec', str(spec_file)],
                cwd=reports, stdout=log, stderr=subprocess.STDOUT, timeout=WSTEST_TIMEOUT)
        print('autobahn: the cases took %.1f s; the server spent %.1f s of CPU on them'
              % (time.monotonic() - started, server_cpu(server_process) - cpu_before),
              flush=True)
    finally:
        server.stop()
    (reports / 'server.log').write_text(server.output() + '\n')
    if client.returncode != 0:
        print('autobahn: wstest failed with exit code %d; see %s'
              % (client.returncode, reports / 'wstest.log'))
        return 1
    print('autobahn: report in %s' % (reports / 'index.html'), flush=True)
    return check.main([str(reports / 'index.json')])


if __name__ == '__main__':
    sys.exit(main())
