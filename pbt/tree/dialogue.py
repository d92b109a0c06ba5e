"""Chat messages from a tree path, as a given speaker sees the dialogue.

PBT-METHOD.md §2 ("what each speaker sees"): the speaker's instruction with the question is the
first user message, then the dialogue so far, the speaker's own earlier turns as ``assistant``
and the other agent's turns as ``user``. Consecutive messages with the same role (for agent B:
the instruction followed by A's first answer) are merged with a blank line, so that chat
templates which require alternating roles accept every prompt. The preference pairs use the
same function with the persona-free instruction (§4.7), so training prompts match generation.
"""

from __future__ import annotations

from pbt.tree.model import Tree


def speaker_messages(
    tree: Tree, upto: str | None, speaker: int, instruction: str, *, merge: bool = True
) -> list[dict[str, str]]:
    """Messages for `speaker` (0 = A, 1 = B) replying after node `upto` (None: the first turn).

    `instruction` is the full first user message (persona or standard prompt, question filled in).
    """
    messages: list[dict[str, str]] = [{"role": "user", "content": instruction}]
    if upto is not None:
        for node in tree.path_to(upto):
            role = "assistant" if node.agent == speaker else "user"
            content = node.text.strip()
            if merge and messages[-1]["role"] == role:
                messages[-1] = {"role": role, "content": f"{messages[-1]['content']}\n\n{content}"}
            else:
                messages.append({"role": role, "content": content})
    return messages
