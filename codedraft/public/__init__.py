"""Public reading of a code's published material, for anyone, without an account."""
