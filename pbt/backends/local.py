"""Local transformers backend: one model in this process, concurrent requests batched together.

Requests from any number of coroutines (or threads) go to one worker thread
(`pbt.backends.batching.BatchWorker`) that decodes with continuous batching: between two
decoding steps it admits waiting requests (up to ``max_batch_size`` rows; a request with ``n``
choices is ``n`` rows), prefills them left-padded and merges their KV cache into the running
batch; finished rows leave at once. Each row keeps its own sampling parameters (temperature,
top_p, top_k, min_tokens, max_tokens, stop) and its own random generator, so a request's output
does not depend on which other requests share its batch: greedy rows equal an unbatched run
token for token, and a row with a seed draws the same random numbers whatever its neighbours are.

Sampling draws from the filtered distribution (temperature, top-k, top-p) by inverse CDF with
one uniform number per row and token from the row's own `random.Random`, so the whole batch is
sampled in a handful of tensor operations while every row keeps its own generator.

Prompts are computed once: a request with ``n`` choices is prefilled once and its cache copied to
its ``n`` rows, and the prefix cache (`pbt.backends.prefix_cache`) serves the longest prefix of a
prompt already computed for an earlier one (a tree's prompts extend each other).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pbt.backends.adapters import RuntimeAdapters
from pbt.backends.base import ChatBackend, ChatResult, Choice, Message, SamplingParams, Usage
from pbt.backends.batching import BatchStats, BatchWorker, Call, Request, Row, RunningBatch
from pbt.backends.kv_cache import use_slabs
from pbt.backends.prefix_cache import PrefixCache, PrefixStats
from pbt.errors import UnavailableError, ValidationError

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
_FALLBACK_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def validate_messages(messages: Sequence[Message]) -> list[Message]:
    """Check the OpenAI message shape; raises `ValidationError` naming the bad field."""
    if not messages:
        raise ValidationError("at least one message is required", field="messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValidationError("each message needs 'role' and 'content'", field=f"messages[{i}]")
        if m["role"] not in ROLES:
            raise ValidationError(
                f"role must be one of {ROLES}, got {m['role']!r}", field=f"messages[{i}].role"
            )
        if not isinstance(m["content"], str):
            raise ValidationError("content must be a string", field=f"messages[{i}].content")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class LocalBackend(RuntimeAdapters, ChatBackend):
    """A transformers causal LM (plus an optional PEFT adapter) serving batched chat requests.

    Args:
        model_dir: folder with a model and tokenizer (``save_pretrained`` layout).
        adapter: optional PEFT adapter folder; it is merged into the weights at load time.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: torch dtype name for the weights (``float32`` keeps batched == unbatched exactly).
        max_batch_size: most rows (choices) decoded together.
        batch_wait_s: how long the worker waits for more requests before starting a batch.
        num_threads: if set, ``torch.set_num_threads`` for this process (and the engine thread).
            Unset, the engine thread picks its own (`engine_threads`): one intra-op thread for a
            small model on CPU, whose per-operation work is too small to split (measured on the
            tiny model on a busy 2-core machine: 10-25x faster tree building than two threads),
            torch's default otherwise; the rest of the process keeps torch's default.
        model_name: the name reported in results (default: the model folder's name).
        prefix_cache_mb: memory for the KV caches of earlier prompts, kept for reuse by later
            prompts sharing a prefix (`pbt.backends.prefix_cache`, least recently used first out);
            0 turns the prefix cache off.
    """

    def __init__(
        self,
        model_dir: str | Path,
        adapter: str | Path | None = None,
        *,
        device: str = "auto",
        dtype: str = "float32",
        max_batch_size: int = 32,
        batch_wait_s: float = 0.005,
        num_threads: int | None = None,
        model_name: str | None = None,
        prefix_cache_mb: float = 256.0,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if max_batch_size < 1:
            raise ValidationError("must be >= 1", field="max_batch_size")
        if prefix_cache_mb < 0:
            raise ValidationError("must be >= 0", field="prefix_cache_mb")
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise ValidationError(
                f"no model found in {self.model_dir} (config.json missing)", field="model_dir"
            )
        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        self.model_name = model_name or self.model_dir.name
        self.name = f"local:{self.model_dir}" + (f"+{adapter}" if adapter else "")
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        if not getattr(self.tokenizer, "chat_template", None):
            log.warning("%s has no chat template; using a plain 'Role: content' template", self.model_dir)
            self.tokenizer.chat_template = _FALLBACK_TEMPLATE
        model = AutoModelForCausalLM.from_pretrained(
            self.model_dir, dtype=getattr(torch, dtype), local_files_only=True
        )
        if adapter is not None:
            from peft import PeftModel

            adapter_path = Path(adapter)
            if not (adapter_path / "adapter_config.json").is_file():
                raise ValidationError(
                    f"no PEFT adapter in {adapter_path} (adapter_config.json missing)", field="adapter"
                )
            model = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
        self.model = model.to(self.device).eval()
        self.max_context = int(
            getattr(self.model.config, "max_position_embeddings", None) or self.tokenizer.model_max_length
        )
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = sorted(eos_ids)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)

        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        layers = DynamicCache(config=self.model.config).layers
        #: continuous batching merges caches; other cache layouts (sliding windows) batch statically
        self.can_merge = bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
        #: KV caches of earlier prompts (plain dynamic caches only: sliding windows drop old tokens)
        self.prefix_cache: PrefixCache | None = None
        if self.can_merge and prefix_cache_mb > 0:
            config = self.model.config
            heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
            head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
            itemsize = torch.empty((), dtype=self.model.dtype).element_size()
            per_token = 2 * len(layers) * heads * head_dim * itemsize
            self.prefix_cache = PrefixCache(int(prefix_cache_mb * 2**20) // per_token)
        #: torch intra-op threads of the engine thread (None: torch's default)
        self.engine_threads: int | None = num_threads or self._auto_threads()
        self.batch_listeners: list[Callable[[BatchStats], None]] = []
        self._seeds = random.SystemRandom()
        self._closed = False
        self._init_adapters()  # runtime LoRA adapters (`pbt.backends.adapters`)
        self._worker = BatchWorker(self, name=f"batcher-{self.model_name}")
        log.info("loaded %s on %s (context %d tokens)", self.name, self.device, self.max_context)

    #: models with fewer parameters decode on one intra-op thread by default (CPU only)
    small_model_params = 50_000_000

    def _auto_threads(self) -> int | None:
        if self.device != "cpu":
            return None
        params = sum(p.numel() for p in self.model.parameters())
        return 1 if params < self.small_model_params else None

    # -- prompts -----------------------------------------------------------------------------
    def render(self, messages: Sequence[Message]) -> str:
        """The chat template applied to `messages`, ending with the assistant turn's opening."""
        return self.tokenizer.apply_chat_template(
            validate_messages(messages), tokenize=False, add_generation_prompt=True
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered prompt; raises `ValidationError` if it leaves no room to generate."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) + 1 > self.max_context:
            raise ValidationError(
                f"the prompt has {len(ids)} tokens, but the model's context is {self.max_context} tokens",
                field="messages",
            )
        return ids

    # -- ChatBackend -------------------------------------------------------------------------
    async def chat(
        self, messages: Sequence[Message], params: SamplingParams, *, adapter: str | None = None
    ) -> ChatResult:
        """`adapter`: the name of a runtime-loaded LoRA adapter (`load_adapter`); None: the base model."""
        return await self.complete(self.render(messages), params, adapter=adapter)

    async def complete(
        self, prompt: str, params: SamplingParams, *, adapter: str | None = None
    ) -> ChatResult:
        """Continue a raw text `prompt` (no chat template): the OpenAI completions API."""
        ids = self.encode(prompt)
        return await asyncio.wrap_future(self.submit(ids, params, adapter=adapter))

    def submit(
        self, prompt_ids: list[int], params: SamplingParams, *, adapter: str | None = None
    ) -> concurrent.futures.Future:
        """Queue one request for the batching worker; the future resolves to a `ChatResult`."""
        if self._closed:
            raise UnavailableError("backend is closed", endpoint=self.name)
        future: concurrent.futures.Future = concurrent.futures.Future()
        internal = self._acquire(adapter, future)
        self._worker.put(
            Request(list(prompt_ids), params, future, adapter or self.model_name, adapter=internal)
        )
        return future

    async def candidate_logprobs(
        self, messages: Sequence[Message], candidates: Sequence[str], *, adapter: str | None = None
    ) -> list[float]:
        prompt_ids = self.encode(self.render(messages))
        cand_ids = [self.tokenizer(c, add_special_tokens=False).input_ids for c in candidates]
        for i, ids in enumerate(cand_ids):  # scored after the prompt: both must fit
            if len(prompt_ids) + len(ids) > self.max_context:
                raise ValidationError(
                    f"the prompt ({len(prompt_ids)} tokens) and this candidate ({len(ids)} tokens) exceed the "
                    f"model's context of {self.max_context} tokens",
                    field=f"candidates[{i}]",
                )
        future: concurrent.futures.Future = concurrent.futures.Future()
        internal = self._acquire(adapter, future)
        self._worker.put(Call(lambda: self._score(prompt_ids, cand_ids, internal), future))
        return await asyncio.wrap_future(future)

    @property
    def prefix_stats(self) -> PrefixStats:
        """Prompt tokens looked up and served from the prefix cache (zeros when it is off)."""
        return self.prefix_cache.stats if self.prefix_cache is not None else PrefixStats()

    @property
    def healthy(self) -> bool:
        """Open, with a running batching worker: requests can be served."""
        return not self._closed and self._worker.alive

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker after the work already queued."""
        if not self._closed:
            self._closed = True
            self._worker.stop()

    # -- engine (called on the worker thread) ------------------------------------------------
    def _generator(self, params: SamplingParams, index: int) -> random.Random | None:
        """The row's own random source (None for greedy rows): one uniform number per sampled token."""
        if params.greedy:
            return None
        seed = (
            self._seeds.getrandbits(62) if params.seed is None else (params.seed * 1_000_003 + index) % 2**62
        )
        return random.Random(seed)

    #: a forward pass's fixed cost, in prompt tokens: prompts are prefilled in separate passes
    #: when that saves more token rows than this (a prompt mostly served by the prefix cache
    #: should not be padded to the width of one it misses)
    prefill_pass_tokens = 512

    def prefill(self, requests: list[Request]) -> RunningBatch:
        """Run the prompts of `requests` through the model, each once whatever its ``n``.

        The prefix cache serves each prompt's longest prefix computed before; only the rest goes
        through the model. Prompts are grouped by how many tokens they need (`_groups`), a
        forward pass per group, and the groups' caches merged. A request with ``n`` choices
        becomes ``n`` rows that share its prompt's cache and last logits."""
        rows = []
        for req in requests:
            limit = min(req.params.max_tokens, self.max_context - len(req.prompt_ids))
            req.rows = [Row(req, i, self._generator(req.params, i), limit) for i in range(req.params.n)]
            req.pending = len(req.rows)
            rows += req.rows
        prefix = self.prefix_cache
        hits = [
            prefix.lookup(req.prompt_ids, limit=len(req.prompt_ids) - 1, space=req.adapter)
            if prefix is not None
            else (None, 0)
            for req in requests
        ]
        batch: RunningBatch | None = None
        for group in self._groups(
            [len(req.prompt_ids) - k for req, (_, k) in zip(requests, hits, strict=True)]
        ):
            part = self._prefill_group([requests[i] for i in group], [hits[i] for i in group])
            if batch is None:
                batch = part
            else:
                batch.merge(part)
                batch.cached_tokens += part.cached_tokens
        assert batch is not None
        return batch

    def _groups(self, needed: list[int]) -> list[list[int]]:
        """Partition request indices (by tokens each must feed) into forward passes of least cost,
        a pass costing `prefill_pass_tokens` plus its rows times its widest row."""
        order = sorted(range(len(needed)), key=needed.__getitem__)
        best = [0.0] + [math.inf] * len(order)
        cut = [0] * (len(order) + 1)
        for end in range(1, len(order) + 1):
            width = needed[order[end - 1]]
            for start in range(end):
                cost = best[start] + self.prefill_pass_tokens + (end - start) * width
                if cost < best[end]:
                    best[end], cut[end] = cost, start
        groups, end = [], len(order)
        while end:
            groups.append(order[cut[end] : end])
            end = cut[end]
        return groups[::-1]

    def _prefill_group(self, requests: list[Request], hits: list[tuple[Any, int]]) -> RunningBatch:
        """One forward pass for `requests`, whose prompts' prefixes `hits` holds (entry, tokens).

        A row's columns are ``[padding][cached prefix][fed tokens]``: every row feeds as many
        tokens as the row the cache serves least (so a row may recompute some tokens it has
        cached), and the batch is no wider than its longest prompt."""
        import torch
        from transformers import DynamicCache

        prefix = self.prefix_cache
        width = max(len(req.prompt_ids) - k for req, (_, k) in zip(requests, hits, strict=True))
        cached = [
            max(0, len(req.prompt_ids) - width) if k else 0
            for req, (_, k) in zip(requests, hits, strict=True)
        ]
        past = max(cached)
        ids = torch.full((len(requests), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(requests), past + width), dtype=torch.long)
        positions = torch.zeros((len(requests), width), dtype=torch.long)
        for r, (req, k) in enumerate(zip(requests, cached, strict=True)):
            new = len(req.prompt_ids) - k
            ids[r, width - new :] = torch.tensor(req.prompt_ids[k:], dtype=torch.long)
            positions[r, width - new :] = torch.arange(k, len(req.prompt_ids))
            mask[r, past - k : past] = 1
            mask[r, past + width - new :] = 1
        ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
        cache = use_slabs(DynamicCache(config=self.model.config))
        if past:
            for i in range(len(cache.layers)):
                keys = values = None
                for r, ((entry, _), k) in enumerate(zip(hits, cached, strict=True)):
                    if not k:
                        continue
                    k_i, v_i = entry.layers[i]
                    if keys is None:
                        keys = k_i.new_zeros((len(requests), k_i.shape[0], past, k_i.shape[2]))
                        values = v_i.new_zeros((len(requests), v_i.shape[0], past, v_i.shape[2]))
                    keys[r, :, past - k :] = k_i[:, :k]
                    values[r, :, past - k :] = v_i[:, :k]
                cache.update(keys, values, i)
            prefix.record_hit(sum(cached))
        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
                **self._adapter_kwargs([req.adapter for req in requests]),
            )
        if prefix is not None and prefix.max_tokens:
            for r, (req, k) in enumerate(zip(requests, cached, strict=True)):
                if k >= len(req.prompt_ids) - 1:
                    continue  # held already (up to its last token)
                cols = torch.nonzero(mask[r])[:, 0]
                prefix.insert(
                    req.prompt_ids,
                    [
                        (layer.keys[r].index_select(1, cols), layer.values[r].index_select(1, cols))
                        for layer in cache.layers
                    ],
                    space=req.adapter,
                )
        logits = out.logits[:, -1, :].float()
        last = positions[:, -1:]
        counts = [req.params.n for req in requests]
        if any(n != 1 for n in counts):
            index = torch.repeat_interleave(
                torch.arange(len(requests), device=self.device), torch.tensor(counts, device=self.device)
            )
            cache.batch_select_indices(index)
            mask, last, logits = mask[index], last[index], logits[index]
        rows = [row for req in requests for row in req.rows]
        return RunningBatch(rows, cache, mask, last, logits, cached_tokens=sum(cached))

    def step(self, batch: RunningBatch) -> int:
        """Choose one token per row, retire finished rows (resolving finished requests), advance the rest."""
        import torch

        chosen = self._choose(batch.logits, batch.rows).tolist()
        keep, generated = [], 0
        for j, row in enumerate(batch.rows):
            finished = self._append(row, chosen[j])
            generated += chosen[j] not in self.eos_ids
            if not finished:
                keep.append(j)
                continue
            row.request.pending -= 1
            if row.request.pending == 0:
                self._finish(row.request)
        if not keep:
            batch.rows = []
            return generated
        if len(keep) < len(batch.rows):
            keep = batch.drop(keep)
        next_ids = torch.tensor([[chosen[j]] for j in keep], dtype=torch.long, device=self.device)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(keep), 1))], dim=1)
        batch.positions = batch.positions + 1
        with torch.inference_mode():
            out = self.model(
                input_ids=next_ids,
                attention_mask=batch.mask,
                position_ids=batch.positions,
                cache=batch.cache,
                use_cache=True,
                **self._adapter_kwargs([row.request.adapter for row in batch.rows]),
            )
        batch.logits = out.logits[:, -1, :].float()
        return generated

    def _append(self, row: Row, token: int) -> bool:
        """Record one generated token; returns True when the row is finished."""
        if token in self.eos_ids:
            row.finish_reason = "stop"
            return True
        row.tokens.append(token)
        stops = row.request.params.stop
        if stops:
            text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
            hits = [text.index(s) for s in stops if s and s in text]
            if hits:
                row.text, row.finish_reason = text[: min(hits)], "stop"
                return True
        if len(row.tokens) >= row.limit:
            row.finish_reason = "length"
            return True
        return False

    def _choose(self, logits: Any, rows: list[Row]) -> Any:
        """Next token per row: argmax for greedy rows, inverse-CDF sampling of the filtered distribution otherwise."""
        import torch

        blocked = [j for j, row in enumerate(rows) if len(row.tokens) < row.request.params.min_tokens]
        if blocked and self.eos_ids:
            rows_index = torch.tensor(blocked, device=logits.device)[:, None]
            logits[rows_index, torch.tensor(self.eos_ids, device=logits.device)[None, :]] = -math.inf
        chosen = logits.argmax(dim=-1)
        sampled = [j for j, row in enumerate(rows) if row.generator is not None]
        if not sampled:
            return chosen
        params = [rows[j].request.params for j in sampled]
        sub = logits[sampled] / torch.tensor([p.temperature for p in params], device=logits.device)[:, None]
        vocab = sub.shape[-1]
        ks = [p.top_k if p.top_k and 0 < p.top_k < vocab else vocab for p in params]
        top_ps = [p.top_p for p in params]
        if min(ks) < vocab or min(top_ps) < 1.0:
            sorted_logits, _ = sub.sort(dim=-1, descending=True)
            kth = sorted_logits.gather(1, torch.tensor(ks, device=logits.device)[:, None] - 1)
            sub = sub.masked_fill(sub < kth, -math.inf)
            if min(top_ps) < 1.0:
                top_p = torch.tensor(top_ps, device=logits.device)[:, None]
                probs = sorted_logits.masked_fill(sorted_logits < kth, -math.inf).softmax(-1)
                before = probs.cumsum(-1) - probs  # probability mass strictly above each token
                cutoff_rank = (before < top_p).sum(-1, keepdim=True).clamp(min=1)
                threshold = sorted_logits.gather(1, cutoff_rank - 1)
                sub = sub.masked_fill(sub < threshold, -math.inf)
        # inverse-CDF sampling: one uniform in (0, 1] per row, from the row's own generator
        cdf = sub.double().softmax(-1).cumsum(-1)
        u = torch.tensor([1.0 - rows[j].generator.random() for j in sampled], dtype=cdf.dtype)
        picked = torch.searchsorted(cdf, (u.to(cdf.device) * cdf[:, -1])[:, None]).clamp_(max=vocab - 1)
        chosen[torch.tensor(sampled, device=logits.device)] = picked[:, 0]
        return chosen

    def _finish(self, req: Request) -> None:
        choices = [
            Choice(
                index=row.index,
                text=row.text
                if row.text is not None
                else self.tokenizer.decode(row.tokens, skip_special_tokens=True),
                finish_reason=row.finish_reason or "length",
                completion_tokens=len(row.tokens),
            )
            for row in req.rows
        ]
        usage = Usage(
            prompt_tokens=len(req.prompt_ids), completion_tokens=sum(c.completion_tokens for c in choices)
        )
        if not req.future.done():
            req.future.set_result(ChatResult(choices=choices, usage=usage, model=req.model))

    def _score(
        self, prompt_ids: list[int], cand_ids: list[list[int]], adapter: str | None = None
    ) -> list[float]:
        """Sum of log-probabilities of each candidate's tokens after the prompt (one forward pass)."""
        import torch

        seqs = [prompt_ids + c for c in cand_ids]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, s in enumerate(seqs):
            ids[j, width - len(s) :] = torch.tensor(s)
            mask[j, width - len(s) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                **self._adapter_kwargs([adapter] * len(seqs)),
            ).logits
            logprobs = logits[:, :-1].float().log_softmax(-1).gather(2, ids[:, 1:, None])[..., 0]
        return [float(logprobs[j, width - 1 - len(c) :].sum()) if c else 0.0 for j, c in enumerate(cand_ids)]
