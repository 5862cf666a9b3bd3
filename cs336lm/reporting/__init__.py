"""The writeup of the assignment as a registry of deliverables (cs336lm.reporting.registry): each handout problem
is one entry with its question, figure, caption and section writer, all reading the results tree's files through
the manifest the workflow passes (cs336lm.reporting.inputs)."""
