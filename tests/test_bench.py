"""The benchmark harness (bench/) runs from end to end: a smoke run, few connections and
one short run, of superserver and python-websockets. It checks that every scenario it
ran gave each server a figure, never what the figures are: performance is not asserted
in tests. S2 shares S1's code; S5 needs wrk, whose report is read here from a copy.
"""
import re
import subprocess

import pytest

from bench import wrk

from .conftest import PYTHON, ROOT

SCENARIOS = ('S1', 'S3', 'S4')
SERVERS = {'superserver': 'superserver', 'websockets': 'python-websockets'}
NUMBER = re.compile(r'[\d,]+(\.\d+)?')

#: What wrk 4.1.0 printed for GETs of a URL that answers 404, its server stopped (SIGSTOP)
#: for 1.5 s of the 3 (``--timeout 1s``).
WRK_REPORT = '''\
Running 3s test @ http://127.0.0.1:36351/nope/
  1 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    65.63ms  165.56ms 847.89ms   88.62%
    Req/Sec   807.44    273.25     1.08k    87.50%
  Latency Distribution
     50%    1.05ms
     75%    1.46ms
     90%  284.93ms
     99%  726.05ms
  1290 requests in 3.00s, 541.94KB read
  Socket errors: connect 0, read 0, write 0, timeout 20
  Non-2xx or 3xx responses: 1290
Requests/sec:    429.64
Transfer/sec:    180.50KB
'''


def table_rows(report, scenario):
    """{server name: cells} of the table under the scenario's heading."""
    section = re.search(r'^## %s .*?(?=^## |\Z)' % scenario, report, re.MULTILINE | re.DOTALL)
    assert section, 'no %s section in the report:\n%s' % (scenario, report)
    rows = [line.strip('|').split('|') for line in section.group().splitlines()
            if line.startswith('| ') and not line.startswith('| server ')]
    return {cells[0].strip(): [cell.strip() for cell in cells[1:]] for cells in rows}


@pytest.mark.timeout(120)
def test_smoke_run_gives_every_server_a_figure_in_every_scenario(tmp_path):
    output = tmp_path / 'report.md'
    result = subprocess.run(
        [PYTHON, '-m', 'bench', '--smoke', '--scenarios', ','.join(SCENARIOS),
         '--servers', ','.join(SERVERS), '--output', str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stderr
    report = output.read_text()
    assert result.stdout.strip() == report.strip()
    for scenario in SCENARIOS:
        rows = table_rows(report, scenario)
        assert set(rows) == set(SERVERS.values()), (scenario, rows)
        for name, cells in rows.items():
            assert NUMBER.fullmatch(cells[0]), (scenario, name, cells)
    assert sorted(path.name for path in (tmp_path / 'logs').iterdir()) == sorted(
        '%s-%s.log' % (scenario, server) for scenario in SCENARIOS for server in SERVERS)


def test_wrk_report_is_read():
    assert wrk.parse(WRK_REPORT) == pytest.approx({
        'requests': 1290, 'requests_per_s': 429.64, 'p50_ms': 1.05, 'p99_ms': 726.05, 'max_ms': 847.89,
        'errors': 20 + 1290})
    assert wrk.parse(WRK_REPORT.replace('847.89ms', '1.20s'))['max_ms'] == pytest.approx(1200)
