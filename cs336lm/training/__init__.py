"""The runtime around one training run (handout §5, §7): the loop and its step, evaluation, the lr schedule's
clock, checkpoints, resume and preemption, the run lock, metrics, the summary, devices and fast paths, the
divergence rule, and the largest batch that fits."""
