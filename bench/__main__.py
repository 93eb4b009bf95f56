"""python -m bench: superserver and its peers, scenario by scenario, in one run; the
report is printed and written to bench/results/latest.md (bench/README.md reads it)."""
import argparse
import os
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from . import report, scenarios, servers
from .processes import CLIENT_CORE, ROOT, SERVER_CORE, MeasurementError, ServerProcess

RESULTS = ROOT / 'bench' / 'results'


def keys(text):
    return [key.strip() for key in text.split(',') if key.strip()]


def parse_arguments(argv):
    scenario_keys = [scenario.key for scenario in scenarios.ALL]
    server_keys = [server.key for server in servers.ALL]
    parser = argparse.ArgumentParser(
        prog='python -m bench',
        description='Measure superserver against gevent-websocket, python-websockets, Channels '
                    'on uvicorn, gunicorn and gevent.pywsgi; print a markdown report.')
    parser.add_argument('--scenarios', type=keys, default=scenario_keys, metavar='S1,S2,...',
                        help='scenarios to run (default: all of %s)' % ','.join(scenario_keys))
    parser.add_argument('--servers', type=keys, default=server_keys, metavar='NAME,...',
                        help='servers to measure (default: all of %s)' % ','.join(server_keys))
    parser.add_argument('--runs', type=int, metavar='N',
                        help='runs of each server in each scenario, interleaved; medians are '
                             'reported (default 3, 1 with --smoke)')
    parser.add_argument('--duration', type=int, metavar='SECONDS',
                        help='length of S1, S2 and S5 (default 10, 1 with --smoke)')
    parser.add_argument('--smoke', action='store_true',
                        help='a few connections, one short run: checks that every part works, '
                             'measures nothing worth reading')
    parser.add_argument('--output', type=Path, default=RESULTS / 'latest.md', metavar='FILE',
                        help='where the report is written (default bench/results/latest.md)')
    arguments = parser.parse_args(argv)
    for option, chosen, known in (('--scenarios', arguments.scenarios, scenario_keys),
                                  ('--servers', arguments.servers, server_keys)):
        if unknown := set(chosen) - set(known):
            parser.error('%s: unknown %s (known: %s)'
                         % (option, ', '.join(sorted(unknown)), ', '.join(known)))
    for option, value in (('--runs', arguments.runs), ('--duration', arguments.duration)):
        if value is not None and value < 1:
            parser.error('%s must be at least 1' % option)
    return arguments


def progress(text, end='\n'):
    print(text, end=end, file=sys.stderr, flush=True)


def measure(scenario, chosen, load, runs, logs):
    """The outcome of each chosen server in ``scenario``. Each run starts every server
    once, fresh, in turn: a server's runs are never back to back, so that a slow minute
    of the machine does not fall on one server's runs only."""
    measured = [server for server in scenario.servers if server.key in chosen]
    outcomes = {(scenario.key, server.key): report.Outcome() for server in measured}
    headline = next(column for column in scenario.columns if column.key == scenario.headline)
    for run in range(1, runs + 1):
        for server in measured:
            outcome = outcomes[scenario.key, server.key]
            progress('%s run %d/%d  %-32s ' % (scenario.key, run, runs, server.name), end='')
            try:
                with ServerProcess(server, logs / ('%s-%s.log' % (scenario.key, server.key))
                                   ) as process:
                    figures = scenario.measure(server, process, load)
            except (MeasurementError, OSError) as error:
                outcome.errors.append((run, str(error)))
                progress('failed: %s' % error)
            else:
                outcome.figures.append(figures)
                progress('%s %s' % (headline.format.format(figures[headline.key]),
                                    headline.label))
    return outcomes


def main(argv):
    arguments = parse_arguments(argv)
    load = scenarios.SMOKE if arguments.smoke else scenarios.FULL
    if arguments.duration is not None:
        load = replace(load, duration=arguments.duration)
    runs = arguments.runs or (1 if arguments.smoke else 3)
    chosen = [scenario for scenario in scenarios.ALL if scenario.key in arguments.scenarios]
    if not {SERVER_CORE, CLIENT_CORE} <= os.sched_getaffinity(0):
        sys.exit('python -m bench needs cores %d and %d: the server runs on one, the load '
                 'generator on the other' % (SERVER_CORE, CLIENT_CORE))
    # Off the servers' core: this process only waits, on the load generator's.
    os.sched_setaffinity(0, {CLIENT_CORE})
    logs = arguments.output.parent / 'logs'   # the servers' output, beside the report
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob('*.log'):
        old.unlink()
    started, clock, load_average = datetime.now(timezone.utc), time.monotonic(), os.getloadavg()
    outcomes = {}
    for scenario in chosen:
        progress('%s (servers\' output: %s)' % (scenario.describe(load), logs))
        outcomes.update(measure(scenario, arguments.servers, load, runs, logs))
    text = report.render(chosen, load, outcomes, runs,
                         shlex.join(['python', '-m', 'bench', *argv]),
                         started.strftime('%Y-%m-%d %H:%M UTC'), round(time.monotonic() - clock),
                         load_average)
    print(text)
    arguments.output.write_text(text)
    progress('Written to %s' % arguments.output)
    return 1 if any(outcome.errors for outcome in outcomes.values()) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
