"""Judge an Autobahn|Testsuite fuzzing-client report.

    python autobahn/check.py [autobahn/reports/index.json] [--agent NAME]

Prints one table (behaviour and close behaviour counts per chapter), headed by the
client that ran the cases when run.py recorded it (client.json), then every case that
is not OK with the suite's own reason, then a verdict line. Exits 1 when a case of
chapters 1 to 10, 12 or 13 (permessage-deflate) is anything but OK or INFORMATIONAL
(the suite alone decides what is informational), or when any case's close behaviour
is anything but OK, INFORMATIONAL or UNIMPLEMENTED. Exits 2 when there is no report
to judge, or it has no gated case.

Both clients write the same index.json, but wstest names the agent as the spec does
(superserver) and kosoku after the server's address: the report's only agent is
judged unless ``--agent`` names one.
"""
import argparse
import json
import sys
from collections import Counter
from pathlib import Path

BEHAVIOURS = ('OK', 'NON-STRICT', 'INFORMATIONAL', 'UNIMPLEMENTED', 'FAILED')
ACCEPTED = {'OK', 'INFORMATIONAL'}
ACCEPTED_CLOSE = {'OK', 'INFORMATIONAL', 'UNIMPLEMENTED'}
GATED_CHAPTERS = set(range(1, 11)) | {12, 13}
#: Beside index.json: {"name": ..., "version": ...} of the client, written by run.py.
CLIENT_FILE = 'client.json'


def case_key(case_id):
    return tuple(int(part) for part in case_id.split('.'))


def gated(case_id):
    return case_key(case_id)[0] in GATED_CHAPTERS


def verdicts(cases):
    """(passed, failed) case ids: a case fails on its behaviour (when gated) or its close."""
    passed, failed = [], []
    for case_id, case in sorted(cases.items(), key=lambda item: case_key(item[0])):
        bad_behaviour = gated(case_id) and case['behavior'] not in ACCEPTED
        bad_close = case['behaviorClose'] not in ACCEPTED_CLOSE
        (failed if bad_behaviour or bad_close else passed).append(case_id)
    return passed, failed


def table(cases):
    """Lines of the per-chapter table of behaviours and close behaviours."""
    chapters = sorted({case_key(case_id)[0] for case_id in cases})
    # and any other a client reports (kosoku: ERROR, a case that could not run).
    behaviours = [*BEHAVIOURS, *sorted({case['behavior'] for case in cases.values()}
                                       - set(BEHAVIOURS))]
    header = ['chapter', 'cases', *behaviours, 'close OK', 'close other']
    rows = []
    for chapter in chapters + ['all']:
        chosen = [case for case_id, case in cases.items()
                  if chapter == 'all' or case_key(case_id)[0] == chapter]
        counts = Counter(case['behavior'] for case in chosen)
        close_ok = sum(case['behaviorClose'] == 'OK' for case in chosen)
        rows.append([str(chapter), str(len(chosen)), *(str(counts[b]) for b in behaviours),
                     str(close_ok), str(len(chosen) - close_ok)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ['  '.join(cell.rjust(width) for cell, width in zip(row, widths))
            for row in [header, *rows]]


def reasons(report_dir, case):
    """The suite's own description and result texts for a case."""
    details = json.loads((report_dir / case['reportfile']).read_text())
    return details.get('description', ''), details.get('result', ''), details.get('resultClose', '')


def load(index, agent=None):
    """The cases of ``agent`` in the report, by default of its only agent."""
    agents = json.loads(index.read_text())
    if agent is None:
        if len(agents) != 1:
            raise KeyError('agents %s: name one with --agent' % ', '.join(sorted(agents)))
        (agent,) = agents
    return agents[agent]


def client(report_dir):
    """Name and version of the client that wrote the report, or None if not recorded."""
    try:
        recorded = json.loads((report_dir / CLIENT_FILE).read_text())
    except OSError:
        return None
    return '%(name)s %(version)s' % recorded


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('index', nargs='?', type=Path,
                        default=Path(__file__).resolve().parent / 'reports' / 'index.json')
    parser.add_argument('--agent', help="the agent to judge (default: the report's only one)")
    args = parser.parse_args(argv)
    try:
        cases = load(args.index, args.agent)
    except (OSError, ValueError, KeyError) as error:
        print('autobahn: no report to judge in %s (%s)' % (args.index, error))
        return 2
    if not any(gated(case_id) for case_id in cases):
        print('autobahn: the report has no case of chapters %s'
              % ', '.join(map(str, sorted(GATED_CHAPTERS))))
        return 2

    ran_by = client(args.index.parent)
    if ran_by:
        print('Cases run by %s:' % ran_by)
    print('\n'.join(table(cases)))
    not_ok = [case_id for case_id in sorted(cases, key=case_key)
              if cases[case_id]['behavior'] != 'OK' or cases[case_id]['behaviorClose'] != 'OK']
    passed, failed = verdicts(cases)
    if not_ok:
        print('\nCases that are not OK:')
        for case_id in not_ok:
            case = cases[case_id]
            description, result, result_close = reasons(args.index.parent, case)
            print('  %-8s %-13s close %-13s %s%s' % (
                case_id, case['behavior'], case['behaviorClose'],
                'FAILS THE CHECK: ' if case_id in failed else '', description))
            print('           result: %s | close: %s' % (result, result_close))
    print('\nautobahn: %d passed, %d failed%s'
          % (len(passed), len(failed), ' (%s)' % ran_by if ran_by else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
