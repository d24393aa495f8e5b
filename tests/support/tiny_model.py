"""A tiny random-weight llama model and a real ``mlx_lm.server`` for integration tests.

Everything here runs offline on the CPU (``HF_HUB_OFFLINE=1`` in every child process).

``build_tiny_model(dest, tool_calling=False)`` writes, in about a second, a directory that
``mlx_lm.utils.load`` and ``mlx_lm.server --model DIR`` accept:

* ``config.json``          llama, hidden 64, 2 layers, 4 heads, max_position_embeddings 32768
* ``model.safetensors``    random weights saved from ``mlx_lm.models.llama.Model`` via mlx
* ``tokenizer.json``       byte-level BPE trained here (``tokenizers``), 671 tokens
* ``tokenizer_config.json`` bos/eos, ``PreTrainedTokenizerFast``, a ChatML-style chat_template
* ``special_tokens_map.json``

The text it generates is random printable-ASCII junk: the output head is zero for every token
that is not printable ASCII, so greedy decoding never emits EOS or a special token and every
request generates exactly ``max_tokens`` tokens (finish_reason "length").  Tests should look only
at structure and usage, never at the words.

Tool calling (mlx-lm 0.32.2): ``TokenizerWrapper.has_tool_calling`` is true when a tool parser
is configured or inferred (``mlx_lm.tokenizer_utils._infer_tool_parser``).  With
``tool_calling=True`` the chat template renders the tools in a Hermes/Qwen style and contains both
``<tool_call>`` and ``tool_call.name``, which infers the ``json_tools`` parser
(``<tool_call>`` … ``</tool_call>`` with a JSON object inside).  Both variants share the same
vocabulary (``<tool_call>``/``</tool_call>`` are special tokens in both); only the template
differs.  NOTE: mlx-lm 0.32.2 does *not* reject ``tools`` for a model without tool calling: it
logs the warning "Received tools but model does not support tool calling. …" and answers 200
(the template simply ignores the tools).  A 400 "does not support tool calling" does not come
from mlx_lm.server 0.32.2; script it with ``FakeOpenAI`` (``Reply.error(400, ...)``).  The tool
variant accepts and renders tools but, with the masked output head, never emits a tool call.

``start_mlx_server(model_dir)`` starts ``python -m mlx_lm.server`` on a free port and waits
for ``GET /health`` (~0.7-1.5 s here).  mlx_lm.server facts worth knowing (0.32.2, measured):

* request ``"model"`` must be ``"default_model"`` (``MLXServer.model``) or the exact ``--model``
  string; anything else is loaded as a hub repo -> HTTP 404 ``{"error": "Cannot find an
  appropriate cached snapshot folder ... outgoing traffic has been disabled ..."}`` offline.
* errors are ``{"error": "<string>"}``, not the OpenAI envelope.
* a model that fails to load leaves the process running with ``GET /health`` -> 503
  ``{"status": "unavailable"}`` forever (the helper detects it and fails at once).
* ``GET /v1/models`` breaks (200, empty body) if the HF hub cache dir does not exist; the helper
  points ``HF_HUB_CACHE`` at an empty directory.
* timings on this 2-core CPU: cold prefill of a ~9.7k-token prompt 5.1 s; the same prompt again
  or extended: 0.04-0.06 s with ``cached_tokens`` 9691/9692; a ~1.3k-token cold request 0.2-0.26 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Iterable, Sequence

from tests.support.net import free_port, wait_http

__all__ = [
    "build_tiny_model",
    "start_mlx_server",
    "MLXServer",
    "TINY_MODEL_CONFIG",
    "SPECIAL_TOKENS",
]

HIDDEN = 64
LAYERS = 2
HEADS = 4
INTERMEDIATE = 128
MAX_POSITIONS = 32768
TARGET_VOCAB = 800

BOS = "<|endoftext|>"
EOS = "<|im_end|>"
SPECIAL_TOKENS = [BOS, "<|im_start|>", EOS, "<tool_call>", "</tool_call>"]

TINY_MODEL_CONFIG = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": HIDDEN,
    "num_hidden_layers": LAYERS,
    "intermediate_size": INTERMEDIATE,
    "num_attention_heads": HEADS,
    "num_key_value_heads": HEADS,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": MAX_POSITIONS,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    # vocab_size, bos/eos ids are filled in from the trained tokenizer
}

_TRAINING_TEXT = """\
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.
You are Claude Code, an interactive command line tool that helps users with software tasks.
Read the file notes.txt and summarize it. Please run the tests and fix the failing ones.
def main(argv: list[str]) -> int:
    for item in items:
        if item is None:
            return 1
    return 0
import os, sys, json
{"name": "Read", "arguments": {"file_path": "docs/notes.txt"}}
{"type": "function", "function": {"name": "Bash", "parameters": {"type": "object"}}}
<system-reminder>Today's date is 2026-11-24.</system-reminder>
The user asked a question about the code in this repository; answer it concisely.
Tool results: the command exited with status 0 and printed nothing on stderr.
class Gateway: routes requests from Anthropic Messages API to OpenAI chat completions.
system user assistant tool content role messages tools stream usage tokens cache
0123456789 + - * / = < > ( ) [ ] { } : ; , . ! ? ' " ` ~ @ # $ % ^ & | \\ _
"""

# ChatML-ish template without tool support: tools are ignored entirely.
_TEMPLATE_PLAIN = (
    "{% for message in messages %}"
    "{% if message.content is string %}{% set text = message.content %}"
    "{% elif message.content is none %}{% set text = '' %}"
    "{% else %}{% set text = message.content | map(attribute='text') | join('') %}"
    "{% endif %}"
    "<|im_start|>{{ message.role }}\n{{ text }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Hermes/Qwen-style template with tools.  Must contain "<tool_call>" and "tool_call.name" so
# that mlx-lm infers the json_tools parser.
_TEMPLATE_TOOLS = (
    "{% if tools %}"
    "<|im_start|>system\n"
    "{% if messages and messages[0].role == 'system' and messages[0].content is string %}"
    "{{ messages[0].content }}\n\n"
    "{% endif %}"
    "# Tools\n<tools>\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}"
    "</tools>\nCall a function with <tool_call>{\"name\": <name>, \"arguments\": <object>}</tool_call>"
    "<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if tools and loop.first and message.role == 'system' and message.content is string %}"
    "{% else %}"
    "{% if message.content is string %}{% set text = message.content %}"
    "{% elif message.content is none %}{% set text = '' %}"
    "{% else %}{% set text = message.content | map(attribute='text') | join('') %}"
    "{% endif %}"
    "<|im_start|>{{ message.role }}\n{{ text }}"
    "{% if message.tool_calls %}"
    "{% for tool_call in message.tool_calls %}"
    "{% if tool_call.function is defined %}{% set tool_call = tool_call.function %}{% endif %}"
    "<tool_call>{\"name\": \"{{ tool_call.name }}\", \"arguments\": "
    "{% if tool_call.arguments is string %}{{ tool_call.arguments }}"
    "{% else %}{{ tool_call.arguments | tojson }}{% endif %}"
    "}</tool_call>"
    "{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TARGET_VOCAB,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = _TRAINING_TEXT.splitlines()
    tok.train_from_iterator(lines * 3, trainer=trainer)
    return tok


def _printable_ids(tok) -> list[int]:
    """Ids of ordinary tokens that decode to printable ASCII (no specials, no partial UTF-8)."""
    specials = {tok.token_to_id(t) for t in SPECIAL_TOKENS}
    ids = []
    for i in range(tok.get_vocab_size()):
        if i in specials:
            continue
        text = tok.decode([i])
        if text and all(32 <= ord(c) < 127 or c == "\n" for c in text):
            ids.append(i)
    return ids


def _write_weights(dest: Path, config: dict, seed: int, printable: list[int]) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models.llama import Model, ModelArgs

    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(config))
    weights = dict(tree_flatten(model.parameters()))
    # Untied output head whose rows are zero except for printable-ASCII tokens: greedy decoding
    # then (almost surely: the max of ~600 random logits is > 0) picks readable text, never EOS
    # or a special token, so a request always generates exactly max_tokens tokens and ends
    # with finish_reason "length".
    mask = mx.zeros((config["vocab_size"], 1))
    mask[mx.array(printable)] = 1.0
    weights["lm_head.weight"] = weights["lm_head.weight"] * mask
    mx.eval(weights)
    mx.save_safetensors(str(dest / "model.safetensors"), weights, metadata={"format": "mlx"})


def build_tiny_model(dest: Path, *, tool_calling: bool = False, seed: int = 0) -> Path:
    """Write a tiny random llama model into ``dest`` (created if needed) and return ``dest``.

    Idempotent: if ``dest`` already holds a complete model built with the same options it is
    reused.  ``tool_calling=True`` makes mlx-lm infer the ``json_tools`` tool parser.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dest / ".tiny-model.json"
    wanted = {"tool_calling": tool_calling, "seed": seed, "version": 3}
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return dest
        except ValueError:
            pass

    tok = _train_tokenizer()
    vocab_size = tok.get_vocab_size()
    tok.save(str(dest / "tokenizer.json"))

    config = dict(TINY_MODEL_CONFIG)
    config["vocab_size"] = vocab_size
    config["bos_token_id"] = tok.token_to_id(BOS)
    config["eos_token_id"] = tok.token_to_id(EOS)
    (dest / "config.json").write_text(json.dumps(config, indent=2))

    template = _TEMPLATE_TOOLS if tool_calling else _TEMPLATE_PLAIN
    added = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in SPECIAL_TOKENS
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_POSITIONS,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": BOS,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": added,
        "chat_template": template,
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (dest / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "pad_token": BOS}, indent=2)
    )
    (dest / "generation_config.json").write_text(
        json.dumps({"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]})
    )

    _write_weights(dest, config, seed, _printable_ids(tok))
    stamp.write_text(json.dumps(wanted))
    return dest


# ---------------------------------------------------------------------------------------------
# mlx_lm.server


def _child_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["HF_DATASETS_OFFLINE"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    # GET /v1/models scans the HF hub cache and, in mlx-lm 0.32.2, dies mid-response (200 with an
    # empty body, traceback "CacheNotFound") when that directory does not exist.  Point it at an
    # existing, empty directory so /v1/models lists just the --model path (and never a real
    # cache's contents).  ``env=`` can override.
    hub = Path(tempfile.gettempdir()) / "turnroute-tests-hf-hub"
    hub.mkdir(parents=True, exist_ok=True)
    env["HF_HUB_CACHE"] = str(hub)
    if extra:
        env.update(extra)
    return env


class MLXServer:
    """A running ``mlx_lm.server``.  ``url`` ends in ``/v1``; ``base`` does not."""

    def __init__(self, proc: subprocess.Popen, port: int, model_dir: Path, log_path: Path):
        self.proc = proc
        self.port = port
        self.model_dir = Path(model_dir)
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/v1"
        self.log_path = log_path
        self.started_s: float | None = None  # seconds from spawn to healthy
        self._tail: deque[str] = deque(maxlen=200)
        self._reader = threading.Thread(target=self._pump, name=f"mlx-server-{port}", daemon=True)
        self._reader.start()

    # What to put in a request's "model" field.  mlx_lm.server maps "default_model" and the
    # exact --model string to the loaded model; any other string makes it try to load that
    # path / hub repo (and, offline, fail with HTTP 404 {"error": "..."}), dropping the cache.
    model = "default_model"

    @property
    def model_path(self) -> str:
        """The exact ``--model`` argument (also accepted as the request's model)."""
        return str(self.model_dir)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log_path, "a", encoding="utf-8", errors="replace") as log:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace")
                self._tail.append(line)
                log.write(line)
                log.flush()

    def output(self) -> str:
        """The last ~200 lines the server printed (stdout and stderr together)."""
        return "".join(self._tail)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def broken(self) -> bool:
        """True when the generation thread died (bad model dir, …): mlx_lm.server then keeps
        running but answers ``GET /health`` with 503 ``{"status": "unavailable"}`` forever."""
        return "generation thread died" in self.output()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._reader.join(timeout=2)

    def __enter__(self) -> "MLXServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MLXServer({self.url}, model={self.model_dir}, pid={self.proc.pid})"


def start_mlx_server(
    model_dir: Path,
    *,
    port: int | None = None,
    extra_args: Sequence[str] | Iterable[str] = (),
    max_tokens: int = 16,
    prompt_cache_size: int = 10,
    timeout: float = 60.0,
    env: dict | None = None,
) -> MLXServer:
    """Start ``python -m mlx_lm.server --model model_dir`` and wait until ``GET /health`` is 200.

    Defaults chosen for tests: ``--max-tokens 16`` (used when a request names none),
    ``--prompt-cache-size 10`` (mlx default), temperature 0 (mlx default).  ``extra_args`` are
    appended last, so they can override these.  Raises ``RuntimeError`` with the server's output
    if it exits or does not become healthy within ``timeout`` seconds; the process is killed
    in that case.  Use as a context manager, or call ``.stop()``.
    """
    port = port or free_port()
    model_dir = Path(model_dir)
    cmd = [
        sys.executable,
        "-m",
        "mlx_lm.server",
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-tokens",
        str(max_tokens),
        "--prompt-cache-size",
        str(prompt_cache_size),
        *extra_args,
    ]
    fd, log_name = tempfile.mkstemp(prefix=f"mlx-server-{port}-", suffix=".log")
    os.close(fd)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_child_env(env),
        start_new_session=True,
    )
    server = MLXServer(proc, port, Path(model_dir), Path(log_name))
    try:
        wait_http(f"{server.base}/health", timeout,
                  alive=lambda: server.alive() and not server.broken())
    except Exception as e:
        server.stop(timeout=5)
        raise RuntimeError(
            f"mlx_lm.server did not become healthy ({e}); rc={proc.returncode}; "
            f"cmd={' '.join(cmd)}\n--- server output ---\n{server.output()}"
        ) from e
    server.started_s = time.monotonic() - t0
    return server
