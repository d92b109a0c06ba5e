"""Generation backends: see `pbt.backends.base` for the contract."""

from pbt.backends.base import ChatBackend, ChatResult, Choice, Message, SamplingParams, Usage

__all__ = ["ChatBackend", "ChatResult", "Choice", "Message", "SamplingParams", "Usage"]
