"""The design of many runs: which runs an experiment config asks for (values from sweeps, names trained once),
how a sweep's winner and edge of stability are chosen, and what the runs cost in GPU-hours."""
