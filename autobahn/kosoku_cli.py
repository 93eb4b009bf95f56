"""kosoku's command line, with the bytes Autobahn's compression cases expect.

    python autobahn/kosoku_cli.py URL [--include CASE]... [--outdir DIR]   (as ``kosoku``)

The 12.x and 13.x cases were written for Python 2, where a message is a byte string:
they hash what the server echoes, then decode it. kosoku 0.1.0 hands them bytes for a
compressed message but a str for an uncompressed one, which a server may send on a
compressed connection (RFC 7692, section 6) and superserver does (messages under 128
bytes, and after one that deflate could not shrink); the case then ends in ERROR,
"Strings must be encoded before hashing", where wstest 0.8.2 says OK. Here such a str
becomes the bytes that came on the wire before the case sees it. Where kosoku gives
bytes already, nothing changes.
"""
import sys

from kosoku._cli import main
from kosoku.cases import CASES

COMPRESSION_CHAPTERS = ('12', '13')


def with_wire_bytes(on_message):
    """The case's ``onMessage``, given the message as bytes."""
    def onMessage(self, message, binary):  # noqa: N802 (the name Autobahn calls)
        if isinstance(message, str):
            # kosoku decoded text as UTF-8 and binary as latin-1, byte for character.
            message = message.encode('latin-1' if binary else 'utf-8')
        return on_message(self, message, binary)
    return onMessage


if __name__ == '__main__':
    for case_id, case in CASES.items():
        if case_id.split('.')[0] in COMPRESSION_CHAPTERS:
            case.onMessage = with_wire_bytes(case.onMessage)
    sys.exit(main())
