"""Request and response bodies of the OpenAI-compatible routes (the subset the project uses).

Unknown request fields are ignored, as OpenAI clients send many optional ones; the fields that
change generation are validated and mapped to `pbt.backends.base.SamplingParams`. Every number
has bounds and every text a length cap (characters here; the model's context in tokens is
checked by the backend), and text must be valid Unicode (no lone surrogates), so no request
can make the server overflow, stall or fail with a 500.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pbt.backends.base import ChatResult, SamplingParams

#: longest text accepted in characters (a message, a prompt); the context in tokens is far smaller
MAX_TEXT_CHARS = 200_000
MAX_MESSAGES = 512
MAX_CANDIDATES = 64
MAX_CANDIDATE_CHARS = 16_384
MAX_STOP = 16
MAX_TOKENS = 1_000_000
INT64 = 2**63 - 1


def _unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"invalid Unicode at character {exc.start} (a lone surrogate)") from None
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_unicode)]
Candidate = Annotated[str, Field(max_length=MAX_CANDIDATE_CHARS), AfterValidator(_unicode)]
StopText = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_unicode)]
ModelName = Annotated[str, Field(max_length=256), AfterValidator(_unicode)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: Text

    @field_validator("content", mode="before")
    @classmethod
    def _parts_to_text(cls, value: Any) -> Any:
        """OpenAI content parts ``[{"type": "text", "text": ...}]`` are joined into one string."""
        if isinstance(value, list):
            texts = []
            for part in value:
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise ValueError("only text content parts are supported")
                texts.append(str(part.get("text", "")))
            return "".join(texts)
        return value


class _SamplingFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: ModelName | None = Field(None, description="Served model name; None means the only model served.")
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1, le=MAX_TOKENS)
    max_tokens: int | None = Field(
        None, ge=1, le=MAX_TOKENS, description="Default: 256, capped by the remaining context."
    )
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    min_tokens: int = Field(0, ge=0, le=MAX_TOKENS)
    n: int = Field(1, ge=1, le=64)
    seed: int | None = Field(None, ge=-INT64 - 1, le=INT64)
    stop: StopText | Annotated[list[StopText], Field(max_length=MAX_STOP)] | None = None
    stream: bool = False

    @model_validator(mode="after")
    def _no_streaming(self) -> _SamplingFields:
        if self.stream:
            raise ValueError("stream=true is not supported by this server")
        return self

    def sampling(self, default_max_tokens: int = 256) -> SamplingParams:
        max_tokens = self.max_completion_tokens or self.max_tokens or default_max_tokens
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=max_tokens,
            min_tokens=self.min_tokens,
            n=self.n,
            seed=self.seed,
            stop=stop,
        )


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)


class CompletionRequest(_SamplingFields):
    prompt: Text = Field(..., min_length=1)


class CandidateLogprobsRequest(BaseModel):
    """Body of the project's extension route ``POST .../pbt/candidate_logprobs``."""

    model_config = ConfigDict(extra="ignore")

    model: ModelName | None = None
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    candidates: list[Candidate] = Field(..., min_length=1, max_length=MAX_CANDIDATES)


def _usage(result: ChatResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "total_tokens": result.usage.total_tokens,
    }


def chat_response(result: ChatResult, model: str) -> dict[str, Any]:
    """OpenAI ``chat.completion`` body; each choice also carries its ``completion_tokens``."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": c.index,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason,
                "completion_tokens": c.completion_tokens,
            }
            for c in result.choices
        ],
        "usage": _usage(result),
    }


def completion_response(result: ChatResult, model: str) -> dict[str, Any]:
    """OpenAI ``text_completion`` body."""
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": c.index,
                "text": c.text,
                "finish_reason": c.finish_reason,
                "completion_tokens": c.completion_tokens,
            }
            for c in result.choices
        ],
        "usage": _usage(result),
    }


def error_body(
    message: str, *, param: str | None = None, code: int = 400, kind: str = "invalid_request_error"
) -> dict:
    """The one error shape of this server (OpenAI's)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


LoraName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class LoadLoraAdapterRequest(BaseModel):
    """vLLM's ``POST /v1/load_lora_adapter`` body; ``lora_path`` is a store key here (see lora.py)."""

    model_config = ConfigDict(extra="ignore")

    lora_name: LoraName
    lora_path: Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_unicode)]


class UnloadLoraAdapterRequest(BaseModel):
    """vLLM's ``POST /v1/unload_lora_adapter`` body."""

    model_config = ConfigDict(extra="ignore")

    lora_name: LoraName
