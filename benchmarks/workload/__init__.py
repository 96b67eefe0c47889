"""What the benchmarks train: models, data and a timing callback shared by all three ways of training.

The lighter configs import this directory as `project`; the hand-written and plain scripts import it as `workload`.
"""
