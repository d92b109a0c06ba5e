"""What each speaker sees (PBT-METHOD §2), and cleaning of generated text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pbt.backends.base import Message

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")


def speaker_messages(
    prompt: str, turns: Iterable[tuple[int, str]], speaker: int, *, merge_consecutive: bool = False
) -> list[Message]:
    """The speaker's prompt (persona + question) as the first user message, then the dialogue:
    its own earlier turns as ``assistant``, the other agents' turns as ``user``.

    `turns` are ``(agent, text)`` pairs from the first turn on. With `merge_consecutive`,
    consecutive messages of the same role are joined by a blank line (strict chat templates)."""
    messages: list[Message] = [{"role": "user", "content": prompt}]
    for agent, text in turns:
        messages.append({"role": "assistant" if agent == speaker else "user", "content": text})
    return merge_roles(messages) if merge_consecutive else messages


def merge_roles(messages: Sequence[Message]) -> list[Message]:
    merged: list[Message] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {
                "role": message["role"],
                "content": merged[-1]["content"] + "\n\n" + message["content"],
            }
        else:
            merged.append(dict(message))
    return merged


def clean_response(text: str) -> str:
    """Strip whitespace and drop a trailing incomplete sentence (PBT-METHOD §2).

    Text without any sentence end is kept whole (better a fragment than nothing); a trailing
    ``Final Answer: ...`` line is never cut."""
    text = text.strip()
    if not text or text[-1] in ".!?\"')]" or text.rsplit("\n", 1)[-1].lower().startswith("final answer"):
        return text
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return text
    return text[: ends[-1].end()].rstrip()
