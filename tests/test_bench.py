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

#: What wrk 4.1.0 printed against a server that answered some requests with 404 and
#: left others unanswered (--timeout 1s).
WRK_REPORT = '''\
Running 2s test @ http://127.0.0.1:8000/maybe/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   850.25us  412.11us  12.04ms   91.20%
    Req/Sec    30.11k     2.05k   33.40k    75.00%
  Latency Distribution
     50%  801.00us
     75%    0.95ms
     90%    1.21ms
     99%    2.50ms
  59932 requests in 2.00s, 8.40MB read
  Socket errors: connect 0, read 0, write 0, timeout 12
  Non-2xx or 3xx responses: 29966
Requests/sec:  29951.52
Transfer/sec:      4.20MB
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
    assert wrk.parse(WRK_REPORT) == {'requests_per_s': 29951.52, 'p50_ms': 0.801,
                                     'p99_ms': 2.5, 'max_ms': 12.04, 'errors': 12 + 29966}
