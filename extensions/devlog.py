"""Logging for development: tracebacks of the project's code, with its local variables.

A websocket view that raises has no debugger page to show (the 101 is gone); its log
entry is all the developer gets, so it shows the locals of every frame shown, their
values shortened.

Between the server and a view lie some thirty frames that only carry the request:
gevent's handler, superserver's layers, Werkzeug's debugger, Django's handler and the
four frames each middleware adds (``MiddlewareMixin.__call__`` and Django's exception
handling around it, which re-raises for the debugger): 70 to 190 lines with their
source and locals, for the view's two. ``user_traceback`` leaves them out, as runserver's tracebacks start where Django
caught the exception. Every other frame stays: the project's views, middleware and
decorators, and the libraries they called. So do the machinery's own frames below the
last of those (an error raised in the machinery, called by the project's code), and
all frames of a traceback that has no other: what raised is always shown.
"""
import logging
import reprlib
import traceback
import types

__all__ = ['LocalsFormatter', 'format_exception_with_locals', 'user_traceback']

#: Modules whose frames carry a request to the view: hidden above other code.
REQUEST_MACHINERY = ('gevent', 'werkzeug.debug', 'django.core.handlers',
                     'django.utils.deprecation', 'django.contrib.staticfiles.handlers',
                     'extensions.adaptation', 'extensions.wsgi', 'extensions.devserver',
                     'extensions.decorators')

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 120


def _carries_the_request(frame):
    module = frame.f_globals.get('__name__') or ''
    return any(module == name or module.startswith(name + '.') for name in REQUEST_MACHINERY)


def user_traceback(tb):
    """``tb`` without the frames of ``REQUEST_MACHINERY`` above the innermost frame of
    other code: new traceback objects over the same frames."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    users = [index for index, entry in enumerate(entries)
             if not _carries_the_request(entry.tb_frame)]
    if not users:
        return entries[0] if entries else None
    kept = None
    for index, entry in reversed(list(enumerate(entries))):
        if index >= users[-1] or index in users:
            kept = types.TracebackType(kept, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return kept


def format_exception_with_locals(exc_info):
    exc_type, exc, tb = exc_info
    lines = ['Traceback (most recent call last):\n']
    for frame, lineno in traceback.walk_tb(user_traceback(tb)):
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
