"""The engine: read a config into an experiment, build it, and call the Trainer method of its stage.

`stage.py` prepares, instantiates and executes a stage; `preflight.py` and `monitors.py` check the built objects
before the loop starts; `attribution.py` names the config key a failure belongs to, and `exits.py` how an error ends
a command; `summary.py` prints what a stage reached; `tuner.py` runs Lightning's Tuner on a fit config; `resume.py`
continues a recorded fit.
"""

from lighter.engine.stage import Experiment, call_stage, check, execute, instantiate, prepare

__all__ = ["Experiment", "call_stage", "check", "execute", "instantiate", "prepare"]
