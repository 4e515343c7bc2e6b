"""Feedback on clauses: rounds, anchored comment threads, support, amendments, dispositions."""
