"""A pipeline `Commands` that records instead of running: a step's decisions without a synth, cdktf or AWS."""

from __future__ import annotations

import io

from pipeline.commands import Commands


class RecordingCommands(Commands):
    def __init__(self):
        super().__init__(dry_run=False, out=io.StringIO())
        self.ran: list[list[str]] = []

    def run(self, command, **options):  # noqa: ARG002 - same signature as Commands.run
        self.ran.append(list(command))
        self.say(f"+ {' '.join(command[1:4])}")
