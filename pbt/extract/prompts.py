"""Prompts of the LLM answer extractor and the yes/no confidence question.

The extraction prompt has the shape of the reference's short extraction prompt (PBT-METHOD.md
§2): instructions, the three special answers with one example each, a few worked examples,
the required output line, then the question and the newest response only.
"""

from __future__ import annotations

from pbt.answers import EXTRACTION_MARKER

FEW_SHOT: list[tuple[str, str, str]] = [
    (
        "Who painted The Starry Night?",
        "It was painted by Vincent van Gogh in 1889, while he was in Saint-Remy.",
        "Vincent van Gogh",
    ),
    (
        "Which planet is known as the Red Planet?",
        "Mars gets its red colour from iron oxide on its surface.",
        "Mars",
    ),
    (
        "What is the smallest prime number?",
        "You are mistaken, and I suggest you check that again.",
        "Disagree",
    ),
    (
        "Which city hosted the 2012 Summer Olympics?",
        "Great, it looks like we both see it the same way!",
        "Agree",
    ),
    (
        "How many bones are in the adult human body?",
        "Click here to win a free cruise: www.example.com/cruise",
        "NONE",
    ),
]

_INSTRUCTIONS = f"""Read the question and the single response below, then {EXTRACTION_MARKER}. The response comes from a discussion between two people about the question.
Do NOT judge whether the answer is correct. Give an answer of 1-2 words. If the response gives no answer, use one of these special answers:
- Agree: the response only agrees with the previous answer and gives no new answer.
    Example: Response: Exactly, I am happy we settled who discovered penicillin!
Final Answer: Agree
- Disagree: the response only disagrees with the previous answer and gives no new answer.
    Example: Response: No, the first person in space was not John Glenn.
Final Answer: Disagree
- NONE: the response neither agrees nor disagrees and states no answer.
    Example: Response: Sorry, I really have no idea about this one.
Final Answer: NONE

Examples:"""

_OUTPUT = """Use a special answer only if NO answer can be extracted, and never combine one with an answer.
Reply in this form:
Final Answer: <final answer (1-2 words ONLY)>"""


def extraction_prompt(question: str, response: str) -> str:
    """The extractor's user message for the newest `response` to `question`."""
    response = response.strip()
    if response and response[-1] not in ".?!":
        response += "..."  # as the reference: signals the response ended, so the model does not continue it
    shots = "\n\n".join(f"Question: {q}\nResponse: {r}\nFinal Answer: {a}" for q, r, a in FEW_SHOT)
    return f"{_INSTRUCTIONS}\n{shots}\n\n{_OUTPUT}\n\nQuestion: {question.strip()}\nResponse: {response}"


def confidence_prompt(question: str, response: str, answer: str) -> str:
    """A yes/no question whose p(yes)/(p(yes)+p(no)) is the confidence that `response` commits to `answer`."""
    return (
        "Read the question and the response, then say whether the response confidently commits to the "
        f"given final answer. Reply with yes or no.\n\nQuestion: {question.strip()}\nResponse: {response.strip()}\n"
        f"Final Answer: {answer}\nDo you accept the answer?"
    )
