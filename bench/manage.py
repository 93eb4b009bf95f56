#!/usr/bin/env python
"""Django's command-line utility for the benchmark project (run with the repository root
on PYTHONPATH: ``PYTHONPATH=. python bench/manage.py superserver``)."""
import gevent_specific  # noqa: F401  (first: patch the standard library before it is used)

import os
import sys


def main():
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'bench.project.settings')
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)


if __name__ == '__main__':
    main()
