"""Markdown importer: split a code's Markdown text into chapters and clauses (parse.py) and
carry stable clause ids from one version of a code to the next (matching.py). Both are pure."""
