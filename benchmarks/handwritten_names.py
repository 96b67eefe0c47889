"""The second reference: `handwritten.py`'s module logging lighter's names with plain Lightning (`LighterNames`).

python benchmarks/handwritten_names.py digits-mlp --epochs 20 --timeline t.json --save-dir runs/bench
"""

from __future__ import annotations

from handwritten import LighterNames, main

if __name__ == "__main__":
    main(module=LighterNames, name="handwritten_names")
