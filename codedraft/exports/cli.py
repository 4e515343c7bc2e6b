"""Commands of this feature; ``codedraft.cli.register`` adds every command in ``commands``."""
from __future__ import annotations

import click

commands: list[click.Command] = []
