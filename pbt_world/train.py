"""Train a world agent from scratch: a tiny Llama on its SFT corpus, loss on assistant turns.

A plain torch loop rather than `transformers.Trainer`: the whole job is a few hundred steps of a
4-million-parameter model on CPU, where Trainer's start-up, logging and dataloader machinery
cost more than they bring, and the loop needs exactly one non-standard piece (the
assistant-only label mask), which is explicit here.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pbt.hardware import compute_environment
from pbt_world.config import AgentTrainConfig
from pbt_world.corpus import Example, build_corpus, vocabulary_texts
from pbt_world.generate import World
from pbt_world.tokenizer import build_tokenizer

log = logging.getLogger(__name__)

IGNORE = -100

#: attention kernel while training, by precision: on the agents' short sequences torch's fused CPU
#: attention backward (sdpa) is slow under bf16 autocast (docs/demo.md, `precision`). The same
#: function either way (tested); the saved agent serves with the library's default (sdpa).
TRAIN_ATTENTION = {"fp32": "sdpa", "bf16-mixed": "eager"}


def encode(example: Example, tokenizer: Any, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids of the chat-templated conversation and labels (assistant turns only).

    Builds the same ids as ``tokenizer.apply_chat_template(messages)`` (checked in the tests),
    message by message, so the label mask is exact.
    """
    ids = [tokenizer.bos_token_id]
    labels = [IGNORE]
    end = tokenizer.eos_token_id
    for i, msg in enumerate(example.messages):
        role = tokenizer.convert_tokens_to_ids(f"<|{msg['role']}|>")
        body = tokenizer(msg["content"], add_special_tokens=False)["input_ids"] + [end]
        ids.append(role)
        labels.append(IGNORE)
        ids.extend(body)
        labels.extend(body if i in example.train_turns else [IGNORE] * len(body))
    return ids[:max_len], labels[:max_len]


def _batches(rows: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random, pad: int):
    """Endless padded batches; examples of similar length are batched together (less padding)."""
    import torch

    while True:
        order = list(range(len(rows)))
        rng.shuffle(order)
        # sort within pools of 16 batches by length, then shuffle the batches themselves
        pool = batch_size * 16
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: len(rows[i][0]))
            batches += [chunk[j : j + batch_size] for j in range(0, len(chunk) - batch_size + 1, batch_size)]
        rng.shuffle(batches)
        for idx in batches:
            chunk = [rows[i] for i in idx]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, (ids, lab) in enumerate(chunk):
                input_ids[j, : len(ids)] = torch.tensor(ids)
                labels[j, : len(lab)] = torch.tensor(lab)
                mask[j, : len(ids)] = 1
            yield input_ids, labels, mask


def agent_model(cfg: AgentTrainConfig, tokenizer: Any, seed: int, attention: str | None = None) -> Any:
    """A fresh world-agent Llama (``cfg``'s shape, ``tokenizer``'s vocabulary), initialised from
    ``seed`` without touching the global torch RNG, with the ``attention`` implementation
    (default: `TRAIN_ATTENTION` for ``cfg``'s resolved precision)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        attn_implementation=attention or TRAIN_ATTENTION[cfg.resolved().precision],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def train_step(model: Any, opt: Any, batch: tuple[Any, Any, Any], precision: str) -> float:
    """One optimizer step on a padded batch (loss on the labelled tokens, grad-norm clip 1.0);
    ``precision`` "bf16-mixed" runs forward and backward under CPU bfloat16 autocast. Returns the loss."""
    import torch

    input_ids, labels, mask = batch
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def train_agent(
    world: World,
    agent: str,
    cfg: AgentTrainConfig,
    out_dir: Path,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Train agent ``"a"`` or ``"b"`` of ``world`` and save it (HF folder) to ``out_dir``.

    Returns training metrics (steps, seconds in all and in training, precision, final loss,
    parameter count) and its quality, greedy:
    known-fact accuracy and `pbt_world.check.reply_consistency`.
    ``progress(step, total, loss)`` is called every few steps.
    """
    import torch
    from transformers import GenerationConfig

    cfg = cfg.resolved()
    torch.set_num_threads(cfg.threads)
    started = time.monotonic()
    tokenizer = build_tokenizer(vocabulary_texts(world, hedge=cfg.hedge_unknown > 0))
    examples = build_corpus(world, agent, cfg)
    rows = [encode(e, tokenizer, cfg.max_len) for e in examples]
    if len(rows) < cfg.batch_size:
        raise ValueError(f"corpus has {len(rows)} examples, fewer than batch_size {cfg.batch_size}")
    model = agent_model(cfg, tokenizer, seed=cfg.seed * 1000 + (0 if agent == "a" else 1))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    batches = _batches(rows, cfg.batch_size, random.Random(cfg.seed), tokenizer.pad_token_id)
    loss_ema = None
    for step in range(cfg.steps):
        loss = train_step(model, opt, next(batches), cfg.precision)
        sched.step()
        loss_ema = loss if loss_ema is None else 0.9 * loss_ema + 0.1 * loss
        if progress and (step % 10 == 0 or step == cfg.steps - 1):
            progress(step + 1, cfg.steps, loss_ema)
    trained_s = time.monotonic() - started
    model.eval()
    model.set_attn_implementation("sdpa")  # the checks below measure the agent as it is served
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=40,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    from pbt_world.check import hedge_rates, knowledge_accuracy, reply_consistency

    quality = {  # both measures run under torch.no_grad themselves
        "known_accuracy": round(knowledge_accuracy(model, tokenizer, world.known(agent)), 3),
        **{k: round(v, 3) for k, v in reply_consistency(model, tokenizer, world, agent).items()},
    }
    if cfg.hedge_unknown > 0:
        quality.update({k: round(v, 3) for k, v in hedge_rates(model, tokenizer, world, agent).items()})
    metrics = {
        "agent": agent,
        "steps": cfg.steps,
        "examples": len(rows),
        "seconds": round(time.monotonic() - started, 1),
        "train_seconds": round(trained_s, 1),  # corpus + optimizer steps; the rest is saving and checks
        "precision": cfg.precision,
        "compute": compute_environment(precision=cfg.precision),
        "final_loss_ema": round(float(loss_ema or 0.0), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        **quality,
    }
    (out_dir / "world_agent.json").write_text(
        json.dumps(
            {"world": world.config.model_dump(), "train": cfg.model_dump(), "metrics": metrics}, indent=1
        )
    )
    log.info("trained world agent %s: %s", agent, metrics)
    return metrics
