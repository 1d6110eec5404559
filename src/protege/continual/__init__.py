"""Continual (incremental) learning on the engine: a stream of experiences, one stage per experience and
strategy, strategies as steps and hooks (replay, EWC, MAS, LwF, iCaRL, DER++), the accuracy matrix and
the forgetting measures (docs/continual.md).

Import the parts from their modules (``protege.continual.plan``...): this package's own import stays
light, as the recipe schema (protege.config) reads ``protege.continual.config``.
"""
