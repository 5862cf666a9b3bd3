"""Section writers of the writeup, one function per deliverable `write(section, inputs)`, grouped by handout
part; the registry (cs336lm.reporting.registry) says which writer answers which deliverable."""
