"""Data: sources by name (builtin sources, image folders), splits, labels and targets, transfer sets, and
the in-memory datasets the loop reads. Importing the package registers every source."""

from protege.data import hf_dataset, images, sources, synthetic  # noqa: F401  (register their sources)
from protege.data.raw import SOURCES, RawData, call_source

__all__ = ["SOURCES", "RawData", "call_source"]
