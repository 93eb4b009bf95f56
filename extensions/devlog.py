"""Logging for development: tracebacks that show each frame's local variables.

A websocket view that raises has no debugger page to show (the 101 is gone); its log
entry is all the developer gets, so it shows the locals of every frame, their values
shortened.
"""
import logging
import reprlib
import traceback

__all__ = ['LocalsFormatter', 'format_exception_with_locals']

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 120


def format_exception_with_locals(exc_info):
    exc_type, exc, tb = exc_info
    lines = ['Traceback (most recent call last):\n']
    for frame, lineno in traceback.walk_tb(tb):
        code = frame.f_code
        lines += traceback.StackSummary.from_list(
            [(code.co_filename, lineno, code.co_name, None)]).format()
        for name, value in frame.f_locals.items():
            try:
                shown = _short.repr(value)
            except Exception as error:   # a broken __repr__ must not hide the traceback
                shown = '<repr failed: %r>' % error
            lines.append('      %s = %s\n' % (name, shown))
    lines += traceback.format_exception_only(exc_type, exc)
    return ''.join(lines).rstrip('\n')


class LocalsFormatter(logging.Formatter):
    def formatException(self, exc_info):
        return format_exception_with_locals(exc_info)
