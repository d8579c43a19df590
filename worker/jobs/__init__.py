"""rq jobs (rq imports `townsquare.worker.jobs.<module>` in each job's process, so this runs first).

onnxruntime's telemetry is turned off before any job can load it (the agents' memory jobs embed
text): see `agents.brain.embed.quiet_onnxruntime`."""

from ...agents.brain.embed import quiet_onnxruntime

quiet_onnxruntime()
