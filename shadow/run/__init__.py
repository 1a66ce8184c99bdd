"""The run as a whole: the one place that knows the order of the stages and wires them.

`run(settings, console)` is what the command line calls for `shadow run` and `shadow demo`:
it checks the inputs, opens the events output, and runs the lifecycle (shadow.run.lifecycle)
around one process's replay (shadow.run.single) or a fleet of worker processes
(shadow.run.fleet) on uvloop. Per record, the pipeline (shadow.run.pipeline) joins the stages;
the tally, merge, progress and live modules keep and show the counts.
"""

from __future__ import annotations

import sys

from shadow.config.settings import RunSettings
from shadow.errors import UsageError
from shadow.run.fleet import Fleet, check_fleet
from shadow.run.lifecycle import Job, Lifecycle, events_output
from shadow.run.single import SingleRun
from shadow.sources.clobber import check_outputs
from shadow.sources.opening import is_stream, validate_inputs
from shadow.stdio import Console


def run(settings: RunSettings, console: Console) -> int:
    """Check the inputs, then run; the caller turns ShadowError into its exit code."""
    if settings.workers > 1:
        check_fleet(settings)
    elif settings.loop and any(is_stream(path) for path in settings.inputs):
        raise UsageError("--loop cannot read stdin ('-') or a pipe twice: give log files")
    validate_inputs(settings.inputs, settings.input_format)
    outputs = {"--output": settings.output, "--learn-noise": settings.learn_noise}
    stdout = sys.stdout.fileno() if settings.output is None and sys.stdout else None
    check_outputs([*settings.inputs, settings.config.source], outputs, stdout)
    with events_output(settings.output) as stream:
        lifecycle = Lifecycle(settings, console, stream)
        job: Job = Fleet(lifecycle) if settings.workers > 1 else SingleRun(lifecycle)
        import uvloop  # here, not at the top: commands that run no replay do not load it

        code: int = uvloop.run(lifecycle.execute(job))
        return code
