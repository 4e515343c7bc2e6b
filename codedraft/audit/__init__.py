"""The audit log: every administrative act, with who, when, from where and what."""
