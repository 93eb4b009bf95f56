"""The times a busy server writes thousands of times a second, formatted once a second:
the Date header of every response and the time of every access-log line."""
import time

__all__ = ['http_date', 'log_time']

_WEEKDAYS = ('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')
_MONTHS = (None, 'Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct',
           'Nov', 'Dec')


class _PerSecond:
    """``format(struct_time)`` of ``convert(now)``, made again when the second changes."""

    __slots__ = ('_convert', '_format', '_second', '_value')

    def __init__(self, convert, format):
        self._convert = convert
        self._format = format
        self._second = None
        self._value = None

    def __call__(self):
        second = int(time.time())
        if second != self._second:
            self._value = self._format(self._convert(second))
            self._second = second
        return self._value


#: The Date header value (RFC 9110 section 5.6.7), as bytes.
http_date = _PerSecond(time.gmtime, lambda t: b'%s, %02d %s %04d %02d:%02d:%02d GMT' % (
    _WEEKDAYS[t.tm_wday].encode(), t.tm_mday, _MONTHS[t.tm_mon].encode(), t.tm_year,
    t.tm_hour, t.tm_min, t.tm_sec))

#: Local time as Django's runserver shows it in its request lines: 23/Nov/2026 12:57:07.
log_time = _PerSecond(time.localtime, lambda t: '%02d/%s/%04d %02d:%02d:%02d' % (
    t.tm_mday, _MONTHS[t.tm_mon], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec))
