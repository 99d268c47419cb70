"""carnet-relay: the blind relay. It stores and forwards padded ciphertext entries in
mailboxes named by opaque ids, checks capability signatures, and knows nothing else.

Modules: ``main`` (CLI), ``config``, ``serve`` (process lifecycle), ``server`` (HTTP
API), ``requests`` (input parsing), ``errors``, ``subscriptions`` (websockets),
``logs`` (blind logging), ``storage`` (backends), ``process`` (run it as a
subprocess, for tests and benchmarks).
"""
