"""carnetd, the device's background service (``carnet.daemon.main`` starts it).

- ``live``: live sync (relay subscription, debounced pushes, backoff).
- ``inbox``: imports files dropped in the inbox folder once they are complete.
- ``reminders``: fires each reminder of an upcoming appointment once.
- ``control``: the datagram socket the CLI pokes after a local change.
- ``pidfile`` and ``status``: what `carnet status` reads about the daemon.
- ``supervisor``: runs the parts, handles signals and the systemd protocol.
- ``process``: runs a real carnetd subprocess, for integration tests and benchmarks.

No log line carries record contents, names, record ids or mailbox ids: logs say
what happened (a sync, an import, a reminder) and how much, never to what.
"""
