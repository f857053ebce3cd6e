"""Step 2-4 of the flow: skills to an index on disk, and back.

``documents`` (a skill -> the texts to embed), ``embed`` (texts -> unit vectors: the
``Embedder`` interface, sentence-transformers) and ``onnx`` (the same model exported to
ONNX, what queries and builds run), ``vectors`` (the vector index: the only FAISS user),
``lexical`` (BM25 over each skill's text), ``center`` (the collection's mean document
vector, stored in the manifest), ``tables`` (``SkillIndex``: what a build makes,
the store saves and a search reads), ``build`` (a ``SkillIndex`` in memory), ``store`` (the
index folder: atomic save, checked load, status).

May import ``retriever.load`` and the shared modules at the package's top (``skill``,
``errors``, ``paths``, ``phrases``, ``rules``); never ``search``, ``present``, ``serve``,
``authoring`` or ``cli``.
"""
