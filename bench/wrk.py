"""wrk, the HTTP load generator of S5 (Debian's package): one thread, keep-alive
connections, its latency distribution read from its report."""
import re
import shutil
import subprocess

from .processes import MeasurementError, run_load

UNITS_IN_MS = {'us': 1e-3, 'ms': 1.0, 's': 1e3, 'm': 60e3}
TIME = r'([\d.]+)(us|ms|s|m)'


def milliseconds(match):
    return float(match.group(1)) * UNITS_IN_MS[match.group(2)]


def run(url, connections, seconds):
    """wrk's figures for ``seconds`` (whole) of GETs on ``connections`` connections."""
    return parse(run_load(['wrk', '-t1', '-c%d' % connections, '-d%ds' % seconds,
                           '--latency', url], seconds))


def parse(report):
    """Requests (count and per second), p50, p99 and max latency (ms), and errors, from
    wrk's report."""
    def find(pattern):
        match = re.search(pattern, report, re.MULTILINE)
        if match is None:
            raise MeasurementError('no %r in the wrk report:\n%s' % (pattern, report))
        return match

    socket_errors = re.search(
        r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', report)
    non_2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', report)
    errors = sum(map(int, socket_errors.groups() if socket_errors else ()))
    return {'requests': int(find(r'^\s+(\d+) requests in ').group(1)),
            'requests_per_s': float(find(r'^Requests/sec:\s+([\d.]+)').group(1)),
            'p50_ms': milliseconds(find(r'^\s+50%\s+' + TIME)),
            'p99_ms': milliseconds(find(r'^\s+99%\s+' + TIME)),
            'max_ms': milliseconds(find(r'^\s+Latency\s+\S+\s+\S+\s+' + TIME)),
            'errors': errors + (int(non_2xx.group(1)) if non_2xx else 0)}


def version():
    if shutil.which('wrk') is None:
        return 'not installed'
    return subprocess.run(['wrk', '-v'], capture_output=True, text=True).stdout.split()[1]
