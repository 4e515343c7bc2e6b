"""Stakeholders apply for an account; the Office approves or refuses them."""
