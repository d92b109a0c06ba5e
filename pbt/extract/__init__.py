"""Answer extraction after every dialogue turn (PBT-METHOD.md §2).

* `pbt.answers.parse_final_answer`: the ``Final Answer:`` line parser shared by every extractor.
* `pbt.extract.llm.LLMExtractor`: the extraction prompt through any backend (greedy, 15 tokens).
* `pbt.extract.rules.RuleExtractor`: offline, from candidate answers and agreement phrases.
* `pbt.extract.factory.make_extractor`: the one place that picks an extractor by kind.
* `pbt.extract.llm.answer_confidence` / `yes_probability`: p(yes)/(p(yes)+p(no)).
* `pbt.extract.judge`: agreement judges for `pbt.prefs.filters.ModelFilter`.
* `pbt.extract.prompts`: the extraction and confidence prompts.

The package's ``__init__`` imports nothing, so that `pbt.backends.scripted` can read the prompt
marker from `pbt.extract.prompts` without importing the backends back through `pbt.extract.llm`.
"""
