"""The engine: read a config into an experiment, build it, and call the Trainer method of its stage.

`stage.py` prepares, instantiates and executes a stage; `preflight.py` and `monitors.py` check the built objects
before the loop starts; `summary.py` prints what a stage reached; `tuner.py` runs Lightning's Tuner on a fit config.
"""

from lighter.engine.stage import Experiment, call_stage, check, execute, instantiate, prepare

__all__ = ["Experiment", "call_stage", "check", "execute", "instantiate", "prepare"]
