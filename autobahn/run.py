"""Run an Autobahn|Testsuite fuzzing client against superserver, then judge the report.

    python autobahn/run.py [--client auto|wstest|kosoku] [--cases '1.*,2.*'] [--path /ws/echo/]
                           [--settings MODULE] [--reports DIR]

1. The client (clients.py): wstest, autobahntestsuite 0.8.2, the reference, where a
   Python 2.7 is found (its virtualenv is built once and cached); else kosoku, which
   runs the same case files on Python 3. ``--client`` picks one; ``SUPERSERVER_PYTHON27=``
   (empty) hides every Python 2.7. The first line says which client runs.
2. ``./manage.py superserver --noreload --nodebugger`` serves the demo project on a
   free loopback port; its echo view accepts messages up to 16 MiB (chapter 9).
3. The client runs the cases; the report lands in autobahn/reports/ (index.html to
   read, index.json for the checker, client.json naming the client, wstest.log or
   kosoku.log for its output, server.log).
4. The server is stopped and check.py prints its table and verdict; its exit code is ours.
   Before it, a line gives the run's wall time and the CPU seconds the server spent
   on it (``--cases '12.*,13.*'`` measures compression alone).
"""
import argparse
import json
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
import clients  # noqa: E402

DEFAULT_REPORTS = HERE / 'reports'
# Seconds. Chapters 1-10 take well under a minute here; 12 and 13 (permessage-deflate,
# about 11 GB each way through the client) about 10 minutes with wstest, 5 with kosoku.
CLIENT_TIMEOUT = 60 * 60


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
    parser.add_argument('--client', choices=clients.CHOICES, default='auto',
                        help='auto (the default): wstest where a Python 2.7 is found, '
                             'else kosoku')
    parser.add_argument('--cases', help="comma-separated case patterns (default: all)")
    parser.add_argument('--path', default='/ws/echo/', help='the echo endpoint to fuzz')
    parser.add_argument('--settings', default='superserver.settings',
                        help='Django settings module of the project to serve')
    parser.add_argument('--reports', type=Path, default=DEFAULT_REPORTS,
                        help='where the report goes (emptied first)')
    args = parser.parse_args(argv)
    reports = args.reports.resolve()
    try:
        client = clients.choose(args.client)
    except clients.ClientMissing as error:
        print('autobahn: %s' % error)
        return 2
    fallback = args.client == 'auto' and client.name == 'kosoku'
    print('autobahn: client %s%s' % (client, ': no Python 2.7 found for wstest' if fallback
                                     else ''), flush=True)
    client.prepare()

    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir(parents=True)
    (reports / check.CLIENT_FILE).write_text(json.dumps({'name': client.name,
                                                         'version': client.version}))
    log_file = reports / ('%s.log' % client.name)
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
        with open(log_file, 'w') as log:
            run = subprocess.run(client.command(spec_file), cwd=reports, stdout=log,
                                 stderr=subprocess.STDOUT, timeout=CLIENT_TIMEOUT)
        print('autobahn: %s ran the cases in %.1f s; the server spent %.1f s of CPU on them'
              % (client.name, time.monotonic() - started,
                 server_cpu(server_process) - cpu_before), flush=True)
    finally:
        server.stop()
    (reports / 'server.log').write_text(server.output() + '\n')
    # kosoku exits 1 when a case fails by its own measure, and writes the report all
    # the same: the checker judges it. No report means the client itself failed.
    if not (reports / 'index.json').is_file():
        print('autobahn: %s wrote no report (exit code %d); see %s'
              % (client.name, run.returncode, log_file))
        return 1
    print('autobahn: report in %s' % (reports / 'index.html'), flush=True)
    return check.main([str(reports / 'index.json')])


if __name__ == '__main__':
    sys.exit(main())
