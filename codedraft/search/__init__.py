"""Search for CodeDraft: one interface (``engine.SearchEngine``) over plain documents.

``engine`` holds the interface, the shared types and query validation; ``whoosh_backend``
is the embedded default (``WhooshSearchEngine(path, language="en")``); ``analysis`` holds
the folding and stemming analyzers. Nothing in this package imports Flask or SQLAlchemy:
the app builds ``SearchDocument`` values after its commits and feeds them in.
"""
