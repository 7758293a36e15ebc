"""helpers.profile and helpers.models: profile switch, candidates, fallback, offline models."""
from __future__ import annotations

import time

import pytest
import torch

import helpers
from helpers import models, profile


def test_full_is_the_default(clean_profile_env):
    assert profile.profile_name() == "full"
    assert helpers.model_candidates() == [models.HUB_MODEL_ID, str(models.EMBEDDED_DIR)]


def test_fast_under_nbgrader(clean_profile_env):
    clean_profile_env.setenv("NBGRADER_EXECUTION", "autograde")
    assert profile.profile_name() == "fast"
    assert helpers.model_candidates() == [str(models.TINY_DIR)]


def test_candidates_are_the_profiles_own_list(clean_profile_env):
    """The profile is the one place that names the models: model_candidates() follows an edit of it."""
    import dataclasses

    for name, chosen in profile.PROFILES.items():
        assert helpers.model_candidates(name) == list(chosen.model_candidates), name
    edited = dataclasses.replace(profile.PROFILES["full"], model_candidates=("Org/another-model", "/elsewhere"))
    clean_profile_env.setitem(profile.PROFILES, "full", edited)
    assert helpers.model_candidates() == ["Org/another-model", "/elsewhere"]
    assert helpers.model_candidates("fast") == [str(models.TINY_DIR)]


def test_no_code_picks_a_candidate_by_its_position():
    """Code uses the id a loader returned (helpers.local_model_dir for its files), never
    ``model_candidates()[i]``, which may name another model than the one loaded."""
    import re

    from helpers.paths import REPO_ROOT

    pattern = re.compile(r"model_candidates\([^)]*\)\s*\[")
    offenders = [f"{path.relative_to(REPO_ROOT)}:{number}"
                 for folder in ("authoring", "helpers", "tools", "benchmarks", "grader")
                 for path in sorted((REPO_ROOT / folder).rglob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, f"a candidate picked by position: {offenders}"


def test_local_model_dir_of_a_folder_is_the_folder(tiny_dir):
    assert models.local_model_dir(str(tiny_dir)) == tiny_dir
    assert helpers.local_model_dir(tiny_dir) == tiny_dir
    with pytest.raises(FileNotFoundError, match="/no/such/model-folder"):
        models.local_model_dir("/no/such/model-folder")


def test_local_model_dir_of_a_hub_id_is_its_cached_snapshot(tmp_path, monkeypatch):
    """A hub id that loaded is read from the local cache: the folder is that snapshot, not another model."""
    import huggingface_hub.constants as constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--SomeOrg--cached-model"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert models.local_model_dir("SomeOrg/cached-model") == snapshot
    with pytest.raises(FileNotFoundError, match="SomeOrg/not-cached.*local Hugging Face cache"):
        models.local_model_dir("SomeOrg/not-cached")


def test_env_forces_profile_case_insensitively(clean_profile_env):
    clean_profile_env.setenv("NBGRADER_EXECUTION", "autograde")
    clean_profile_env.setenv("COURSE_PROFILE", " FULL ")
    assert profile.profile_name() == "full"


def test_bad_profile_names_accepted_values(clean_profile_env):
    clean_profile_env.setenv("COURSE_PROFILE", "turbo")
    with pytest.raises(ValueError, match="fast, full"):
        profile.profile_name()
    with pytest.raises(ValueError, match="fast, full"):
        profile.get_profile("medium")


def test_fast_profile_does_less_work():
    fast, full = profile.get_profile("fast"), profile.get_profile("full")
    assert fast.max_new_tokens < full.max_new_tokens
    assert max(fast.prompt_lengths_tokens) < max(full.prompt_lengths_tokens)
    assert len(fast.quantization_variants) < len(full.quantization_variants)


def test_only_the_full_profile_builds_the_4bit_variant():
    """The 4-bit weight-only row is a full-profile study row; graded (fast) runs keep dynamic INT8 only."""
    assert "weight_only_4bit" in profile.get_profile("full").quantization_variants
    assert profile.get_profile("fast").quantization_variants == ("dynamic",)


def test_fallback_skips_an_unreachable_hub_id_quickly(tiny_dir):
    start = time.perf_counter()
    tokenizer, model, model_id = helpers.load_causal_lm(["SomeOrg/not-a-real-model-xyz", str(tiny_dir)])
    elapsed = time.perf_counter() - start
    assert model_id == str(tiny_dir)
    assert not model.training
    # Offline mode makes the hub id fail at once; a network time-out would take ~50 s.
    assert elapsed < 20, f"fallback took {elapsed:.1f} s: the hub id is waiting for the network"


def test_error_lists_every_candidate_and_why():
    with pytest.raises(helpers.ModelLoadError) as info:
        helpers.load_causal_lm(["SomeOrg/missing-model", "/no/such/folder"])
    text = str(info.value)
    assert "SomeOrg/missing-model" in text and "/no/such/folder" in text
    assert "no model folder at /no/such/folder" in text
    assert [a[0] for a in info.value.attempts] == ["SomeOrg/missing-model", "/no/such/folder"]


def test_no_candidates_is_a_clear_error():
    with pytest.raises(ValueError, match="no candidate"):
        models.first_loadable([], lambda mid: None)


def test_first_loadable_returns_the_first_success_in_order():
    tried = []

    def load(model_id):
        tried.append(model_id)
        if model_id == "bad":
            raise OSError("unreachable")
        return model_id.upper()

    assert models.first_loadable(["bad", "good", "other"], load) == ("good", "GOOD")
    assert tried == ["bad", "good"]


def test_tiny_model_is_deterministic_and_fast(tmp_path, tiny_dir):
    start = time.perf_counter()
    first = models.build_tiny_model(tmp_path / "a", tokenizer_source=models.EMBEDDED_DIR)
    elapsed = time.perf_counter() - start
    second = models.build_tiny_model(tmp_path / "b", tokenizer_source=models.EMBEDDED_DIR)
    assert elapsed < 5, f"tiny model took {elapsed:.1f} s to build"
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    assert (first / "model.safetensors").read_bytes() == (tiny_dir / "model.safetensors").read_bytes()


def test_tiny_model_shares_the_embedded_tokenizer_and_architecture(tiny_dir):
    from transformers import AutoConfig, AutoTokenizer

    tiny_tok = AutoTokenizer.from_pretrained(tiny_dir)
    assert AutoConfig.from_pretrained(tiny_dir).model_type == "llama"
    if models.is_complete_model_dir(models.EMBEDDED_DIR):
        emb_tok = AutoTokenizer.from_pretrained(models.EMBEDDED_DIR)
        text = helpers.REFERENCE_PROMPT
        assert tiny_tok(text).input_ids == emb_tok(text).input_ids
        assert AutoConfig.from_pretrained(models.EMBEDDED_DIR).model_type == "llama"


def test_tokenizer_matches_the_gguf_metadata(tiny_dir):
    """The converter's defaults (BOS added, eos = <|im_start|>) are corrected at set-up."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert tokenizer("Hello").input_ids[0] != tokenizer.bos_token_id
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|im_end|>"


@pytest.mark.embedded
def test_embedded_model_continues_fluently():
    if not models.is_complete_model_dir(models.EMBEDDED_DIR):
        pytest.skip("embedded model missing: run `make setup`")
    tokenizer, model, _ = helpers.load_causal_lm([str(models.EMBEDDED_DIR)])
    inputs = tokenizer(helpers.REFERENCE_PROMPT, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=20, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    text = tokenizer.decode(out[0, inputs.input_ids.shape[1]:], skip_special_tokens=True)
    words = text.split()
    assert len(words) >= 8, text
    assert len(set(words)) >= 0.6 * len(words), f"repetitive continuation: {text!r}"
    assert sum(w.strip(".,;").isalpha() for w in words) >= 0.8 * len(words), text


def test_prepare_is_a_no_op_when_models_exist(tiny_dir):
    before = (tiny_dir / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    timings = models.prepare_models(verbose=False)
    assert time.perf_counter() - start < 5
    assert set(timings) == {"embedded", "tiny"}
    assert (tiny_dir / "model.safetensors").stat().st_mtime_ns == before


def test_hub_probe_switches_offline(monkeypatch):
    from helpers import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "_state", {})
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_s=2.0: False)
    assert hub.ensure_fast_offline() is True
    import os
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_hub_probe_respects_online(monkeypatch):
    from helpers import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "_state", {})
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_s=2.0: True)
    assert hub.ensure_fast_offline() is False


def test_hub_probe_is_bounded_in_time(monkeypatch):
    """A resolver or connection that hangs (no network answering) must not stall the import."""
    from helpers import hub

    def hang(*args, **kwargs):
        time.sleep(5)
        raise OSError("no route")     # what a hung connect eventually does

    monkeypatch.setattr(hub.socket, "create_connection", hang)
    start = time.perf_counter()
    assert hub.hub_reachable(timeout_s=0.5) is False
    assert time.perf_counter() - start < 2


def test_paths_import_is_light_and_the_probe_precedes_the_hub_libraries():
    """``import helpers.paths`` (tools, tests, benchmarks) loads no torch and probes nothing; the hub
    probe runs once, just before transformers is first imported, so offline mode is on in time."""
    import os
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "import helpers.paths, helpers.hub as hub\n"
        "assert 'torch' not in sys.modules and 'offline' not in hub._state, sys.modules.keys()\n"
        "hub.hub_reachable = lambda timeout_s=2.0: False\n"
        "import helpers\n"
        "assert helpers.Timer and 'offline' not in hub._state\n"
        "import transformers, huggingface_hub.constants as c\n"
        "assert hub._state == {'offline': True} and os.environ['HF_HUB_OFFLINE'] == '1'\n"
        "assert c.HF_HUB_OFFLINE and transformers.utils.is_offline_mode()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
