"""The agent model server: KServe `ModelServer` + a `kserve.Model` backed by `pbt.backends.local`,
with OpenAI-compatible routes implemented in this package (`routes.py`)."""
