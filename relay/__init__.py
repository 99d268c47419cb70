"""carnet-relay: the blind relay. It stores and forwards padded ciphertext entries in
mailboxes named by opaque ids, checks capability signatures, and knows nothing else.

Modules: ``main`` (CLI), ``config``, ``serve`` (process lifecycle), ``server`` (HTTP
API), ``requests`` (input parsing), ``errors``, ``subscriptions`` (websockets),
``logs`` (blind logging), ``limits`` (rate limits, sizes, quotas), ``metrics``
(Prometheus text), ``storage`` (backends: SQLite, PostgreSQL), ``process`` (run
it as a subprocess) and ``pg_cluster`` (a throwaway PostgreSQL), the last two
for tests and benchmarks.
"""
