"""Generation backends: see `pbt.backends.base` for the contract."""

from pbt.backends.base import ChatBackend, ChatResult, Choice, Message, SamplingParams, Usage
from pbt.backends.factory import make_backend

__all__ = ["ChatBackend", "ChatResult", "Choice", "Message", "SamplingParams", "Usage", "make_backend"]
