"""Report code that blocks the event loop: the one mistake that stalls a gevent server.

While one greenlet runs without yielding (a blocking C library, ``time.sleep`` left
unpatched, a long computation), every other connection waits. gevent's monitor thread
notices a loop that has not switched for ``threshold`` seconds; ``BlockingDetector``
then logs the stack of the code that blocked, once per place (its innermost frame in
the project's own code), on the ``superserver.blocking`` logger. Development only: the
monitor thread costs a little.
"""
import logging
import sys
import sysconfig
import traceback
import warnings

import gevent
from gevent import events

__all__ = ['BlockingDetector']

logger = logging.getLogger('superserver.blocking')

SHOWN_FRAMES = 10   # the innermost ones: the server and middleware above them are noise

_LIBRARIES = tuple({sysconfig.get_paths()[name] for name in ('stdlib', 'platstdlib', 'purelib',
                                                              'platlib')})


def _place(stack):
    """The frame to blame: the innermost one outside the standard library and packages."""
    for frame in reversed(stack):
        if not frame.filename.startswith(_LIBRARIES) and not frame.filename.startswith('<'):
            return frame
    return stack[-1]


class BlockingDetector:
    """Subscribes to gevent's EventLoopBlocked and logs each blocking place once."""

    def __init__(self, threshold=0.1):
        self.threshold = threshold
        self.reported = set()

    def start(self):
        gevent.config.max_blocking_time = self.threshold
        gevent.config.monitor_thread = True
        gevent.config.print_blocking_reports = False   # ours say more, once per place
        with warnings.catch_warnings():
            # Memory monitoring is not ours to set up; without psutil gevent warns.
            warnings.filterwarnings('ignore', 'Unable to monitor memory usage')
            gevent.get_hub().start_periodic_monitoring_thread()
        events.subscribers.append(self._on_event)
        return self

    def _on_event(self, event):
        # Runs in gevent's monitor thread, while the loop is still blocked.
        if not isinstance(event, events.EventLoopBlocked) or event.hub is None:
            return
        frame = sys._current_frames().get(event.hub.thread_ident)
        if frame is None:
            return
        stack = traceback.extract_stack(frame)
        place = _place(stack)
        key = (place.filename, place.lineno)
        if key in self.reported:
            return
        self.reported.add(key)
        # Log from the hub's own thread once it runs again: logging's locks are
        # gevent locks now, not to be taken from this thread.
        event.hub.loop.run_callback_threadsafe(self._report, place, stack, event.blocking_time)

    @staticmethod
    def _report(place, stack, threshold):
        shown = stack[-SHOWN_FRAMES:]
        hidden = len(stack) - len(shown)
        logger.warning(
            'The event loop was blocked for more than %d ms at %s:%d (in %s); every other '
            'request and websocket waited. Use cooperative I/O, or run the call in a '
            'thread with extensions.offload(function, *args). Stack of the blocking '
            'code%s:\n%s',
            threshold * 1000, place.filename, place.lineno, place.name,
            ' (%d outer frames not shown)' % hidden if hidden else '',
            ''.join(traceback.format_list(shown)).rstrip())
