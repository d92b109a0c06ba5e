"""SFT on the chosen responses of PBT pairs: ``python -m training.sft --config training/configs/<name>.yaml``.

The paper's first stage (PBT-METHOD.md §5); set ``merge_adapter: true`` so that DPO can start from
the merged SFT model (``base_model: store:training/<sft run>/merged``).
"""

from __future__ import annotations

import sys

from training.main import main

if __name__ == "__main__":
    sys.exit(main("sft"))
