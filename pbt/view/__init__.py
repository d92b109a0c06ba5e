"""`pbt view`: a static HTML site for tree jobs, preference sets, evaluations and demo runs.

Three layers:

* `pbt.view.model`: the page model, pure Python: tree, pair and evaluation records -> view dicts
  (what each node shows, which sibling comparisons became pairs and why the others did not: the
  preference engine's own `pbt.prefs.compare_siblings`, the index rows, the report tables, the
  lineage chain of a model).
* `pbt.view.render`: those dicts -> HTML pages, CSS and a little JavaScript (no CDN; works from
  ``file://`` and from the object store; large indexes load as a ``<script src>`` data file).
* `pbt.view.site`: reads the store and writes a whole site into a folder (and, optionally, back
  into the store).
"""

from __future__ import annotations
