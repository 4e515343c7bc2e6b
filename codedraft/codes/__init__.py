"""Codes of practice: chapters, working groups, clauses and roles."""
