"""Relay storage: the ``Storage`` interface (``base``), the rules of an append shared by
every backend (``appending``), and the backends (``sqlite``, ``postgres``)."""
