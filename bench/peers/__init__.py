"""The servers superserver is measured against, and the load generator's ceiling; each
is run as ``python -m bench.peers.NAME PORT`` and listens on 127.0.0.1:PORT."""
