"""`pbt demo` and `pbt world`: registered with the `pbt` command through the ``pbt.commands``
entry point group (pyproject.toml), so the product never imports the world."""
