"""People: accounts, organisations, sign-in sessions, invitations, API tokens."""
