"""Local transformers backend: one model in this process, concurrent requests batched together.

Requests from any number of coroutines (or threads) go to one worker thread
(`pbt.backends.batching.BatchWorker`) that decodes with continuous batching: between two
decoding steps it admits waiting requests (up to ``max_batch_size`` rows; a request with ``n``
choices is ``n`` rows), prefills them left-padded and merges their KV cache into the running
batch; finished rows leave at once. Each row keeps its own sampling parameters (temperature,
top_p, top_k, min_tokens, max_tokens, stop) and its own random generator, so a request's output
does not depend on which other requests share its batch: greedy rows equal an unbatched run
token for token, and a row with a seed draws the same random numbers whatever its neighbours are.

Sampling uses the Gumbel-max trick on the filtered logits, which draws from exactly the same
distribution as multinomial sampling while keeping a per-row generator.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import math
import random
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pbt.backends.base import ChatBackend, ChatResult, Choice, Message, SamplingParams, Usage
from pbt.backends.batching import BatchStats, BatchWorker, Call, Request, Row, RunningBatch
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


class LocalBackend(ChatBackend):
    """A transformers causal LM (plus an optional PEFT adapter) serving batched chat requests.

    Args:
        model_dir: folder with a model and tokenizer (``save_pretrained`` layout).
        adapter: optional PEFT adapter folder; it is merged into the weights at load time.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: torch dtype name for the weights (``float32`` keeps batched == unbatched exactly).
        max_batch_size: most rows (choices) decoded together.
        batch_wait_s: how long the worker waits for more requests before starting a batch.
        num_threads: if set, ``torch.set_num_threads`` for this process.
        model_name: the name reported in results (default: the model folder's name).
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
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if max_batch_size < 1:
            raise ValidationError("must be >= 1", field="max_batch_size")
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
        self.batch_listeners: list[Callable[[BatchStats], None]] = []
        self._seeds = random.SystemRandom()
        self._closed = False
        # runtime LoRA adapters (PEFT multi-adapter; rows of one batch may use different ones)
        self._adapters: dict[str, str] = {}  # served name -> internal id (name__vN)
        self._adapter_sources: dict[str, str] = {}  # served name -> where it came from
        self._adapter_refs: dict[str, int] = {}  # internal id -> requests in flight
        self._retired: set[str] = set()  # replaced or unloaded ids, deleted when no request uses them
        self._adapter_lock = threading.Lock()
        self._adapter_versions = itertools.count(1)
        self._worker = BatchWorker(self, name=f"batcher-{self.model_name}")
        log.info("loaded %s on %s (context %d tokens)", self.name, self.device, self.max_context)

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

    # -- runtime LoRA adapters ---------------------------------------------------------------
    @property
    def adapters(self) -> dict[str, str]:
        """Served adapter name -> where it was loaded from."""
        with self._adapter_lock:
            return dict(self._adapter_sources)

    def _acquire(self, adapter: str | None, future: concurrent.futures.Future) -> str | None:
        """The internal id a request uses; held until its future is done (a replaced version is
        deleted only after the last request that uses it)."""
        if adapter is None:
            return None
        with self._adapter_lock:
            internal = self._adapters.get(adapter)
            if internal is None:
                raise ValidationError(
                    f"adapter {adapter!r} is not loaded; loaded: {sorted(self._adapters)}", field="model"
                )
            self._adapter_refs[internal] = self._adapter_refs.get(internal, 0) + 1
        future.add_done_callback(lambda _f: self._release(internal))
        return internal

    def _release(self, internal: str) -> None:
        with self._adapter_lock:
            self._adapter_refs[internal] -= 1
            free = self._adapter_refs[internal] == 0 and internal in self._retired
            if self._adapter_refs[internal] == 0:
                del self._adapter_refs[internal]
        if free:
            self._delete_later(internal)

    def _delete_later(self, internal: str) -> None:
        if self._closed:
            return
        self._worker.put(Call(lambda: self._delete(internal), concurrent.futures.Future()))

    def _delete(self, internal: str) -> None:  # on the worker thread
        with self._adapter_lock:
            if self._adapter_refs.get(internal) or internal not in self._retired:
                return
            self._retired.discard(internal)
        configs = getattr(self.model, "peft_config", {})
        if internal not in configs:
            return
        if len(configs) == 1:  # the last adapter: back to the plain base model
            self.model = self.model.unload().eval()
        else:
            self.model.delete_adapter(internal)
            if self.model.active_adapter not in self.model.peft_config:
                self.model.set_adapter(next(iter(self.model.peft_config)))
        log.info("deleted adapter %s", internal)

    def _attach(self, internal: str, path: Path) -> None:  # on the worker thread
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(path), adapter_name=internal, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=internal)
        self.model.eval()

    def _retire(self, internal: str) -> None:  # with the lock held
        self._retired.add(internal)
        if not self._adapter_refs.get(internal):
            self._delete_later(internal)

    async def load_adapter(self, name: str, path: str | Path, *, source: str | None = None) -> None:
        """Load a PEFT LoRA adapter folder and serve it as `name` next to the base model and the other
        adapters. Loading under a name already served replaces it: requests already running finish on
        the old version, new ones use the new one."""
        path = Path(path)
        if not (path / "adapter_config.json").is_file():
            raise ValidationError(
                f"no PEFT adapter at {source or path} (adapter_config.json missing)", field="lora_path"
            )
        internal = f"{name}__v{next(self._adapter_versions)}"
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._worker.put(Call(lambda: self._attach(internal, path), future))
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            log.warning("loading adapter %s from %s failed: %s", name, source or path, exc)
            raise ValidationError(
                f"adapter {name!r} could not be loaded from {source or path}: {type(exc).__name__}",
                field="lora_path",
            ) from None
        with self._adapter_lock:
            old = self._adapters.get(name)
            self._adapters[name] = internal
            self._adapter_sources[name] = source or str(path)
            if old is not None:
                self._retire(old)
        log.info("adapter %s loaded from %s (%s)", name, source or path, internal)

    def unload_adapter(self, name: str) -> None:
        """Stop serving `name`; its weights go once the requests using them have finished."""
        from pbt.errors import NotFoundError

        with self._adapter_lock:
            internal = self._adapters.pop(name, None)
            if internal is None:
                raise NotFoundError(f"adapter {name!r} is not loaded; loaded: {sorted(self._adapters)}")
            self._adapter_sources.pop(name, None)
            self._retire(internal)

    def _adapter_kwargs(self, rows: Sequence[Row]) -> dict[str, Any]:
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            return {}
        return {"adapter_names": [row.request.adapter or "__base__" for row in rows]}

    async def candidate_logprobs(
        self, messages: Sequence[Message], candidates: Sequence[str], *, adapter: str | None = None
    ) -> list[float]:
        prompt_ids = self.encode(self.render(messages))
        for i, candidate in enumerate(candidates):  # scored after the prompt: both must fit
            n = len(self.tokenizer(candidate, add_special_tokens=False).input_ids)
            if len(prompt_ids) + n > self.max_context:
                raise ValidationError(
                    f"the prompt ({len(prompt_ids)} tokens) and this candidate ({n} tokens) exceed the "
                    f"model's context of {self.max_context} tokens",
                    field=f"candidates[{i}]",
                )
        future: concurrent.futures.Future = concurrent.futures.Future()
        internal = self._acquire(adapter, future)
        self._worker.put(Call(lambda: self._score(prompt_ids, list(candidates), internal), future))
        return await asyncio.wrap_future(future)

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
    def _generator(self, params: SamplingParams, index: int) -> Any:
        import torch

        if params.greedy:
            return None
        seed = (
            self._seeds.getrandbits(62) if params.seed is None else (params.seed * 1_000_003 + index) % 2**62
        )
        return torch.Generator(device=self.device).manual_seed(seed)

    def prefill(self, requests: list[Request]) -> RunningBatch:
        """Left-pad the prompts of `requests` (n rows each) and run them through the model."""
        import torch
        from transformers import DynamicCache

        rows = []
        for req in requests:
            limit = min(req.params.max_tokens, self.max_context - len(req.prompt_ids))
            req.rows = [Row(req, i, self._generator(req.params, i), limit) for i in range(req.params.n)]
            req.pending = len(req.rows)
            rows += req.rows
        width = max(len(r.request.prompt_ids) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, row in enumerate(rows):
            p = row.request.prompt_ids
            ids[j, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[j, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
                **self._adapter_kwargs(rows),
            )
        return RunningBatch(rows, cache, mask, positions[:, -1:], out.logits[:, -1, :].float())

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
        next_ids = torch.tensor([[chosen[j]] for j in keep], dtype=torch.long, device=self.device)
        if len(keep) < len(batch.rows):
            batch.select(keep)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(keep), 1))], dim=1)
        batch.positions = batch.positions + 1
        with torch.inference_mode():
            out = self.model(
                input_ids=next_ids,
                attention_mask=batch.mask,
                position_ids=batch.positions,
                cache=batch.cache,
                use_cache=True,
                **self._adapter_kwargs(batch.rows),
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
        """Next token per row: argmax for greedy rows, Gumbel-max over filtered logits otherwise."""
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
        sorted_logits, _ = sub.sort(dim=-1, descending=True)
        vocab = sub.shape[-1]
        ks = torch.tensor(
            [p.top_k if p.top_k and p.top_k > 0 else vocab for p in params], device=logits.device
        ).clamp(max=vocab)
        kth = sorted_logits.gather(1, (ks - 1)[:, None])
        sub = sub.masked_fill(sub < kth, -math.inf)
        top_p = torch.tensor([p.top_p for p in params], device=logits.device)[:, None]
        if bool((top_p < 1.0).any()):
            probs = sorted_logits.masked_fill(sorted_logits < kth, -math.inf).softmax(-1)
            before = probs.cumsum(-1) - probs  # probability mass strictly above each token
            cutoff_rank = (before < top_p).sum(-1, keepdim=True).clamp(min=1)
            threshold = sorted_logits.gather(1, cutoff_rank - 1)
            sub = sub.masked_fill(sub < threshold, -math.inf)
        for k, j in enumerate(sampled):
            u = torch.rand(vocab, generator=rows[j].generator, device=logits.device).clamp_(1e-12, 1 - 1e-12)
            chosen[j] = (sub[k] - torch.log(-torch.log(u))).argmax()
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

    def _score(self, prompt_ids: list[int], candidates: list[str], adapter: str | None = None) -> list[float]:
        """Sum of log-probabilities of each candidate's tokens after the prompt (one forward pass)."""
        import torch

        cand_ids = [self.tokenizer(c, add_special_tokens=False).input_ids for c in candidates]
        seqs = [prompt_ids + c for c in cand_ids]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, s in enumerate(seqs):
            ids[j, width - len(s) :] = torch.tensor(s)
            mask[j, width - len(s) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            extra: dict[str, Any] = {}
            if self._adapter_kwargs([]) == {"adapter_names": []}:  # a PEFT model: name each row's adapter
                extra["adapter_names"] = [adapter or "__base__"] * len(seqs)
            logits = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                **extra,
            ).logits
            logprobs = logits[:, :-1].float().log_softmax(-1).gather(2, ids[:, 1:, None])[..., 0]
        return [float(logprobs[j, width - 1 - len(c) :].sum()) if c else 0.0 for j, c in enumerate(cand_ids)]
