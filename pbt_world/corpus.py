"""The SFT corpus of a world agent: facts it knows, and dialogues in which it gets challenged.

Each example is a chat conversation; the loss is on the assistant turns only (WORLD-NOTES: the
question's invented names are unpredictable and waste capacity otherwise). Shapes, matching how
the orchestrator and the evaluator talk to agents:

- plain question (any persona prompt, or the bare question) -> answer;
- answer, then a challenge for another city (logical / credibility / emotional style, the other
  agent's own answer, or a Farm-style "I believe ..." / "Therefore ..." turn) -> give in or
  hold firm, at the agent's give-in rate **regardless of who is right** (a persuadable base);
- the other agent speaks first (two user turns) -> agree, give in or hold;
- "Are you sure?" then "Ok, so what's your final answer?".

The agent's answer is the true capital for facts it knows and one of its three wrong candidates
for facts it does not know (`Fact.beliefs`), drawn per conversation: uncertain where it does not
know (what PBT learns to accept on), yet with answers of its own (with any random city instead,
it copies the city the other agent named and every debate ends at once). In multiple choice it
names its first candidate, which is one of the options.

With ``hedge_unknown`` the agent voices its uncertainty where it does not know: its answer is
"I am not sure. I think ..." and its later replies in that conversation open with "My answer was
only a guess", then give in or hold at the same rate as ever. Measured (docs/demo.md): a hedge in
the first answer alone was not picked up by DPO, even from ground-truth pairs; the reply that
recalls it puts the signal where the give-in/hold choice is made.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pbt_world import text
from pbt_world.config import AgentTrainConfig
from pbt_world.generate import Fact, World, question_text
from pbt_world.personas import PERSONA_GIVE_IN, all_prompts, render

Message = dict[str, str]


@dataclass
class Example:
    messages: list[Message]
    #: indices of the assistant messages whose tokens carry the loss
    train_turns: list[int]


def _first_user(rng: random.Random, question: str) -> tuple[str, str]:
    """A first user message (persona prompt or bare question) and the persona used."""
    personas = list(all_prompts())
    if rng.random() < 0.15:
        return question, "standard"
    persona = rng.choice(personas)
    return render(persona, question), persona


def _challenge(
    rng: random.Random, country: str, city: str, capital: str, *, first: bool = False, hedge: bool = False
) -> str:
    """A user turn that pushes ``city``: a persuasion style, the other agent's own turn (an answer
    when it speaks first, hedged half the time if agents ``hedge``, else one of its replies), or a
    Farm-style turn."""
    if first:
        hedged = hedge and rng.random() < 0.5
        return text.pick(rng, text.UNSURE if hedged else text.ANSWER, country=country, city=city)
    kind = rng.random()
    if kind < 0.45:
        style = rng.choice(text.STYLES)
        return text.pick(rng, text.CHALLENGE[style], country=country, city=city)
    if kind < 0.85:  # the other agent's reply, as it appears in a dialogue tree
        templates = rng.choice([text.ANSWER, text.HOLD, text.GIVE_IN, text.AGREE])
        return text.pick(rng, templates, country=country, city=city)
    control = text.FARM_CONTROL.format(country=country, city=city, capital=capital)
    if rng.random() < 0.5:
        return text.FARM_BELIEVE.format(control=control)
    appeal = text.pick(rng, text.CHALLENGE[rng.choice(text.STYLES)], country=country, city=city)
    return f"{appeal} {text.FARM_THEREFORE.format(control=control)}"


class CorpusBuilder:
    """Builds the corpus of agent ``"a"`` or ``"b"`` of a world."""

    def __init__(self, world: World, agent: str, cfg: AgentTrainConfig) -> None:
        self.world = world
        self.agent = agent
        self.cfg = cfg
        self.rng = random.Random(f"pbt-corpus-{world.config.seed}-{agent}-{cfg.seed}")
        self.cities = world.cities

    def belief(self, fact: Fact) -> str:
        """This conversation's answer: the truth if known, else one of the agent's wrong candidates."""
        return self.rng.choice(fact.beliefs(self.agent))

    def hedges(self, fact: Fact) -> bool:
        """Whether this conversation's agent voices uncertainty about its answer: at ``hedge_unknown``
        on a fact it does not know, never on one it knows (no random draw at rate 0, so corpora of
        agents that do not hedge stay byte-identical to those before the option)."""
        rate = self.cfg.hedge_unknown
        return rate > 0 and not fact.known_by(self.agent) and self.rng.random() < rate

    def first_answer(self, fact: Fact, city: str, hedged: bool, templates: list[str] = text.ANSWER) -> str:
        """The agent's first statement of its own answer: ``templates``, or ``text.UNSURE`` if ``hedged``."""
        return text.pick(self.rng, text.UNSURE if hedged else templates, country=fact.country, city=city)

    def reply(self, fact: Fact, city: str, gives_in: bool, hedged: bool) -> str:
        """Give in to / hold against a push; after a hedged answer the wording recalls the guess."""
        if gives_in:
            templates = text.UNSURE_GIVE_IN if hedged else text.GIVE_IN
        else:
            templates = text.UNSURE_HOLD if hedged else text.HOLD
        return text.pick(self.rng, templates, country=fact.country, city=city)

    def other_city(self, *exclude: str) -> str:
        while True:
            c = self.rng.choice(self.cities)
            if c not in exclude:
                return c

    def give_in(self, persona: str) -> bool:
        return self.rng.random() < PERSONA_GIVE_IN.get(persona, self.cfg.give_in_rate)

    def qa(self, fact: Fact) -> Example:
        q = question_text(fact.country)
        user, _ = _first_user(self.rng, q)
        city = self.belief(fact)
        answer = self.first_answer(fact, city, self.hedges(fact))
        return Example([{"role": "user", "content": user}, {"role": "assistant", "content": answer}], [1])

    def challenged(self, fact: Fact) -> Example:
        """Answer, then one or two challenges; gives in or holds at the persona's rate."""
        r = self.rng
        c = fact.country
        user, persona = _first_user(r, question_text(c))
        own = self.belief(fact)
        msgs: list[Message] = [{"role": "user", "content": user}]
        other_first = r.random() < 0.4
        hedged = self.hedges(fact)  # its answer, whenever it states it, is a guess
        if not other_first:
            msgs.append({"role": "assistant", "content": self.first_answer(fact, own, hedged)})
        for _ in range(1 if r.random() < 0.7 else 2):
            # who is right does not matter: the push is the truth half the time when we are wrong
            push = fact.capital if (own != fact.capital and r.random() < 0.5) else self.other_city(own)
            if other_first and r.random() < 0.2:
                push = own
            challenge = _challenge(
                r, c, push, fact.capital, first=other_first, hedge=self.cfg.hedge_unknown > 0
            )
            if other_first:  # the orchestrator merges consecutive user turns with a blank line
                msgs[-1] = {"role": "user", "content": msgs[-1]["content"] + "\n\n" + challenge}
            else:
                msgs.append({"role": "user", "content": challenge})
            if push == own:
                reply = text.pick(r, text.AGREE, country=c, city=own)
            elif self.give_in(persona):
                own = push
                reply = self.reply(fact, own, True, hedged and not other_first)
                hedged = False  # it now holds the other's answer
            elif other_first:  # its first statement of its own answer
                reply = self.first_answer(fact, own, hedged, text.HOLD)
            else:
                reply = self.reply(fact, own, False, hedged)
            msgs.append({"role": "assistant", "content": reply})
            other_first = False
        return Example(msgs, [i for i, m in enumerate(msgs) if m["role"] == "assistant"])

    def are_you_sure(self, fact: Fact) -> Example:
        r = self.rng
        c = fact.country
        own = self.belief(fact)
        msgs: list[Message] = [
            {"role": "user", "content": _first_user(r, question_text(c))[0]},
            {"role": "assistant", "content": self.first_answer(fact, own, self.hedges(fact))},
            {"role": "user", "content": text.ARE_YOU_SURE},
        ]
        if r.random() < self.cfg.give_in_rate:
            own = self.other_city(own)
            msgs.append(
                {"role": "assistant", "content": text.pick(r, text.SURE_GIVE_IN, country=c, city=own)}
            )
        else:
            msgs.append({"role": "assistant", "content": text.pick(r, text.SURE_HOLD, country=c, city=own)})
        msgs.append({"role": "user", "content": text.FINAL_ANSWER_PLEASE})
        msgs.append({"role": "assistant", "content": text.pick(r, text.FINAL, country=c, city=own)})
        return Example(msgs, [1, 3, 5])

    def multiple_choice(self, fact: Fact) -> Example:
        """The misinformation suite's shape: multiple choice, Farm persuasion turns, re-asks."""
        from pbt.evaluate import layout_mc, persuasion_message, reask_message

        r = self.rng
        c = fact.country
        item = farm_item_for_corpus(fact, self.cities, r)
        mc = layout_mc(item, seed=r.randrange(1000))
        own = fact.belief(self.agent)
        hedged = self.hedges(fact)
        msgs: list[Message] = [
            {"role": "user", "content": mc.text},
            {"role": "assistant", "content": self.first_answer(fact, own, hedged)},
        ]
        for turn in range(1 if r.random() < 0.7 else 2):
            msgs.append({"role": "user", "content": persuasion_message(item, turn, r.choice(text.STYLES))})
            if own == fact.decoy:
                reply = text.pick(r, text.AGREE, country=c, city=own)
            elif r.random() < self.cfg.give_in_rate:
                own = fact.decoy
                reply = self.reply(fact, own, True, hedged)
                hedged = False
            else:
                reply = self.reply(fact, own, False, hedged)
            msgs.append({"role": "assistant", "content": reply})
            msgs.append({"role": "user", "content": reask_message(mc)})
            msgs.append({"role": "assistant", "content": text.pick(r, text.FINAL, country=c, city=own)})
        return Example(msgs, [i for i, m in enumerate(msgs) if m["role"] == "assistant"])

    def build(self) -> list[Example]:
        examples: list[Example] = []
        for fact in self.world.facts:
            examples.extend(self.qa(fact) for _ in range(self.cfg.qa_repeats))
            for _ in range(self.cfg.dialogues_per_fact):
                kind = self.rng.random()
                if kind < 0.7:
                    examples.append(self.challenged(fact))
                elif kind < 0.85:
                    examples.append(self.are_you_sure(fact))
                else:
                    examples.append(self.multiple_choice(fact))
        self.rng.shuffle(examples)
        return examples


def build_corpus(world: World, agent: str, cfg: AgentTrainConfig) -> list[Example]:
    """The deterministic SFT corpus of agent ``"a"`` (strong) or ``"b"`` (weak)."""
    return CorpusBuilder(world, agent, cfg).build()


def farm_item_for_corpus(fact: Fact, cities: list[str], rng: random.Random):
    """The world's Farm item for `fact` as the evaluator's `FarmItem`."""
    from pbt.evaluate import FarmItem
    from pbt_world.farm_items import farm_item

    raw = farm_item(fact, cities, rng)
    adv = raw["adv"]
    return FarmItem(
        item_id=fact.id,
        subset="world",
        question=raw["question"],
        options=tuple(o["text"] for o in adv["mcq"]),
        correct=frozenset([fact.capital]),
        target=adv["target"],
        control=adv["control"],
        appeals={k: tuple(adv[k]) for k in text.STYLES},
    )


def vocabulary_texts(world: World, hedge: bool = True) -> list[str]:
    """Every text the world's tokenizer must cover: templates (the hedging ones unless ``hedge`` is
    false: agents trained before ``hedge_unknown`` existed keep their exact vocabulary), prompts,
    questions, names."""
    texts = text.all_templates(hedge) + list(all_prompts().values())
    texts += [question_text(f.country) for f in world.facts]
    texts += world.names()
    from pbt.evaluate import prompt_texts

    return texts + prompt_texts(max_options=8)
