"""The random states of torch (CPU and CUDA), numpy and Python's `random`, as plain data a safe load can read.

Lightning's checkpoints leave them out, so without them a resumed fit shuffles and drops out along other random
streams than the fit it continues. Each rank has its own states; a checkpoint keeps every rank's.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

KEY = "lighter_rng"  # in the checkpoint: {"ranks": [states of rank 0, rank 1, ...]}


def capture() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos)},
        "numpy_gauss": {"has_gauss": int(has_gauss), "cached": float(gauss)},
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    numpy, gauss = states["numpy"], states["numpy_gauss"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state((numpy["kind"], keys, numpy["pos"], gauss["has_gauss"], gauss["cached"]))
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def gather(trainer: Any, mine: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every rank's states (`mine`, else its current ones), in rank order (a collective: every rank calls it)."""
    mine = capture() if mine is None else mine
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return [mine]
    everyone: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(everyone, mine)
    return everyone
