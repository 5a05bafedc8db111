"""Embedded search backend: a tantivy index in a local directory, rebuilt beside and swapped.

One module per idea: ``schema`` (fields and the document mapping), ``compiler`` (parsed
query and filter to a tantivy query), ``highlight`` (marked snippets from stored text),
``store`` (generation directories, locks, live pointer, rebuild journal) and ``backend``
(TantivyIndex, which composes them).
"""

from search.tantivy_index.backend import TantivyIndex
from search.tantivy_index.schema import FORMAT_VERSION

__all__ = ["FORMAT_VERSION", "TantivyIndex"]
