"""Relay storage: the ``Storage`` interface (``base``) and its backends (``sqlite``)."""
