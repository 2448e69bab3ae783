"""How roles reach each other. Embedded mode: direct calls (:mod:`~vecstore.transport.embedded`)."""
