"""The demo's synthetic persuasion world: invented facts, tiny agents trained on them, and the
`pbt demo` pipeline that runs the product's services on that world. It imports the product
(`pbt`); the product never imports it (tests/unit/test_world_boundary.py)."""
