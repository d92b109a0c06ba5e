"""Model builders: tiny offline Llama models for tests, the demo and benchmarks."""

from pbt.models.tiny import TinyModelConfig, build_tiny_model

__all__ = ["TinyModelConfig", "build_tiny_model"]
