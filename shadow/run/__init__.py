"""The run as a whole: the one place that knows the order of the stages and wires them.

`run(settings, console)` is what the command line calls for `shadow run` and `shadow demo`:
it checks the inputs, opens the events output, and runs the lifecycle (shadow.run.lifecycle)
around one process's replay (shadow.run.single) or a fleet of worker processes
(shadow.run.fleet) on uvloop. Per record, the pipeline (shadow.run.pipeline) joins the stages;
the tally, merge, progress and live modules keep and show the counts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from shadow.config.settings import RunSettings
from shadow.errors import UsageError
from shadow.run.check import check_config
from shadow.run.fleet import Fleet, check_fleet
from shadow.run.hooks import load_hooks
from shadow.run.lifecycle import Job, Lifecycle, events_output, events_path, new_run_id
from shadow.run.single import SingleRun
from shadow.sources.clobber import check_outputs
from shadow.sources.opening import is_stream, validate_inputs
from shadow.stdio import Console

__all__ = ["check_config", "run"]


def run(
    settings: RunSettings, console: Console, headline: Callable[[str], str] | None = None
) -> int:
    """Check the inputs, then run; the caller turns ShadowError into its exit code.

    `headline(events_path)`: what closes a run on a terminal (`settings.terminal`)."""
    if settings.workers > 1:
        check_fleet(settings)
    elif settings.loop and any(is_stream(path) for path in settings.inputs):
        raise UsageError("--loop cannot read stdin ('-') or a pipe twice: give log files")
    validate_inputs(settings.inputs, settings.input_format)
    outputs = {"--output": settings.output, "--learn-noise": settings.learn_noise}
    stdout = sys.stdout.fileno() if settings.output is None and sys.stdout else None
    check_outputs([*settings.inputs, settings.config.source], outputs, stdout)
    # Imported here, before anything starts, by the parent and by each worker for itself.
    hooks = load_hooks(settings.config)
    run_id = new_run_id()
    with events_output(events_path(settings, run_id)) as stream:
        lifecycle = Lifecycle(settings, console, stream, run_id, headline)
        job: Job = Fleet(lifecycle) if settings.workers > 1 else SingleRun(lifecycle, hooks)
        import uvloop  # here, not at the top: commands that run no replay do not load it

        code: int = uvloop.run(lifecycle.execute(job))
        return code
