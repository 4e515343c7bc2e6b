"""Published drafts: immutable snapshots of a code."""
