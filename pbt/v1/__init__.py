"""Python code generated from ``protos/pbt/v1/*.proto`` by ``make protos`` (never edit by hand).

``tests/unit/test_protos.py`` regenerates into a temporary folder and fails when these files are stale.
"""
