"""DPO on PBT preference pairs: ``python -m training.dpo --config training/configs/<name>.yaml [--flag v]``.

Runs the same way under ``torchrun --nproc_per_node N -m training.dpo ...`` and in a PyTorchJob.
Options: ``python -m training.dpo --help``.
"""

from __future__ import annotations

import sys

from training.main import main

if __name__ == "__main__":
    sys.exit(main("dpo"))
