"""The judgment layer: what a check is, the distributions it reads, and how they become a verdict.

Pure code: no I/O. The measuring layer hands it distributions; everything else reads its result.
"""
