"""Saved models and resumable training state, as JSON and safetensors (never pickles).

A saved model is a directory::

    config.json          the run's Config: task, data (source, preprocessing, split),
                         model (core + head), train
    vocab.json           the token list (ids are positions)
    model.safetensors    weights
    metrics.jsonl        one line per epoch (written by the training loop)

The training state for resuming lives in ``checkpoint/`` inside it. An ensemble is a directory
with ``ensemble.json`` (its members, folders inside it) instead of those three files
(:func:`save_ensemble`); :func:`load_pretrained` loads either. :func:`average_weights` writes
one model whose weights are the mean of several.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from ..config import ENSEMBLE_FILE, READING_FIELDS, SPLIT_FIELDS, Config
from ..jsonio import write_json
from ..nn.core import CoreConfig, RNNCore
from ..nn.heads import EnsembleClassifier, build_model
from ..text.vocab import Vocab
from .folder import read_config, write_model_file
from .wide import WIDE_FILE, copy_wide


def _publish(tmp: Path, path: Path) -> None:
    """Move a finished safetensors file into place with the mode the umask gives any new file:
    safetensors writes owner-only (0600) files, and a model or a run is meant to be shared and
    shipped like the JSON beside it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def _save_weights(module: nn.Module, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_model(module, str(tmp))
    _publish(tmp, path)


def save_pretrained(model: nn.Module, directory: str | Path, vocab: Vocab, config: Config) -> Path:
    """Write ``config.json`` (``config`` as it is), ``vocab.json`` and ``model.safetensors``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "config.json", config.to_dict())
    vocab.save(directory / "vocab.json")
    _save_weights(model, directory / "model.safetensors")
    write_model_file(directory, "lstm" if config.task == "sentiment" else "lm")
    return directory



def load_pretrained(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Vocab, Config]:
    """``(model, vocab, config)`` from a saved directory; weights mapped to ``device``."""
    directory = Path(directory)
    if is_ensemble(directory):
        return _load_ensemble(directory, device)
    for name in ("config.json", "vocab.json", "model.safetensors"):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a saved model: {name} is missing")
    config = read_config(directory)
    vocab = _read_vocab(directory)
    model = build_model(config.task, config.model)
    check_weights(model, directory, len(vocab))
    load_model(model, str(directory / "model.safetensors"), device=str(device))
    model.to(device).eval()
    return model, vocab, config


def is_ensemble(directory: str | Path) -> bool:
    return (Path(directory) / ENSEMBLE_FILE).is_file()


def _load_ensemble(directory: Path, device) -> tuple[nn.Module, Vocab, Config]:
    """An ensemble folder: every member loaded and checked to share the vocabulary, the labels
    and the data (so one tokenization and one test split serve them all). The config returned
    is the first member's."""
    path = directory / ENSEMBLE_FILE
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["members"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is damaged (no list of members: {error})") from None
    if not isinstance(names, list) or len(names) < 2:
        raise ValueError(f"{path} is damaged: an ensemble lists two or more member folders, "
                         f"not {names!r}")
    loaded = [load_pretrained(directory / name, device) for name in names]
    _check_members([directory / name for name in names], loaded)
    _, vocab, config = loaded[0]
    return EnsembleClassifier([model for model, _, _ in loaded]).to(device).eval(), vocab, config


def _check_members(wheres: list[Path], loaded: list[tuple[nn.Module, Vocab, Config]]) -> None:
    """Every member a classifier, and each reading the data as the first one does: the same
    vocabulary (one tokenization serves them all), labels, data source, split and seed."""

    _, vocab0, config0 = loaded[0]
    for where, (model, vocab, config) in zip(wheres, loaded, strict=True):
        if isinstance(model, EnsembleClassifier) or config.task != "sentiment":
            raise ValueError(f"{where}: an ensemble's members are classifiers")
        if (where / WIDE_FILE).is_file():
            raise ValueError(f"{where} is wide and deep: combining its LSTM with others would "
                             "drop its n-gram part; combine the LSTMs, then make the result "
                             "wide (sentiment wide --model RESULT --output ...)")
        if vocab.itos != vocab0.itos:
            raise ValueError(f"{where} has another vocabulary than the first member: an "
                             "ensemble's members read the same token ids (fine-tune them from "
                             "one encoder)")
        if config.model.head.labels != config0.model.head.labels:
            raise ValueError(f"{where} has labels {config.model.head.labels}, the first member "
                             f"{config0.model.head.labels}")
        ours, theirs = config.data, config0.data
        for key in SPLIT_FIELDS + READING_FIELDS:
            if getattr(ours, key) != getattr(theirs, key):
                raise ValueError(f"{where} reads the data differently from the first member "
                                 f"({key}: {getattr(ours, key)!r} vs {getattr(theirs, key)!r})")
        if config.split_seed != config0.split_seed:
            raise ValueError(f"{where} split its validation reviews with another seed "
                             f"({config.split_seed} vs {config0.split_seed})")


def save_ensemble(sources: list[str | Path], target: str | Path, dtype: str = "float32",
                  data_source: str | None = None, origins: list[str] | None = None) -> Path:
    """Write an ensemble of the saved classifiers ``sources``: each copied (as
    :func:`export_model`, weights in ``dtype``) into ``target/member-N``, and ``ensemble.json``
    naming them and where they came from (``origins``, default ``sources``). The members must
    share vocabulary, labels and data split (checked before anything is written: a ValueError
    names the difference)."""
    if len(sources) < 2:
        raise ValueError(f"an ensemble needs two or more models, got {len(sources)}")
    loaded = [load_pretrained(source) for source in sources]
    _check_members([Path(source) for source in sources], loaded)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    names = [f"member-{index}" for index in range(len(sources))]
    for name, member in zip(names, loaded, strict=True):
        _save_copy(*member, target / name, dtype, data_source)
    write_json(target / ENSEMBLE_FILE, {
        "members": names, "sources": origins or [str(source) for source in sources],
        "combine": "mean of the members' class probabilities"})
    write_model_file(target, "ensemble")
    return target


def average_weights(sources: list[str | Path], target: str | Path,
                    dtype: str = "float32") -> Path:
    """Write one classifier whose weights are the element-wise mean of ``sources``' (a
    "model soup", Wortsman et al. 2022; for example two epochs of one run, or runs fine-tuned
    from one start): one model's size and speed, unlike an ensemble. The sources must share
    what an ensemble's members share and their architecture (``config.json``'s model section);
    the config and vocabulary written are the first one's, and ``average.json`` names the
    sources. Averaging helps only models that started from the same weights; judge the result
    on validation."""
    if len(sources) < 2:
        raise ValueError(f"averaging weights needs two or more models, got {len(sources)}")
    loaded = [load_pretrained(source) for source in sources]
    wheres = [Path(source) for source in sources]
    _check_members(wheres, loaded)
    model, vocab, config = loaded[0]
    for where, (_, _, other) in zip(wheres[1:], loaded[1:], strict=True):
        if (other.model.core, other.model.head) != (config.model.core, config.model.head):
            raise ValueError(f"{where} has another architecture than {wheres[0]} (config.json's "
                             "model section differs): only models of one shape can be averaged")
    states = [member.state_dict() for member, _, _ in loaded]
    averaged = {name: (torch.stack([state[name].float() for state in states]).mean(0)
                       .to(tensor.dtype) if tensor.is_floating_point() else tensor)
                for name, tensor in states[0].items()}
    model.load_state_dict(averaged)
    path = _save_copy(model, vocab, config, target, dtype, None)
    write_json(path / "average.json", {"sources": [str(source) for source in sources],
                                        "combine": "mean of the sources' weights"})
    return path


def _read_vocab(directory: Path) -> Vocab:
    path = directory / "vocab.json"
    try:
        return Vocab.load(path)
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged (not a vocabulary: {error})") from None


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, read from its header only; a
    damaged or truncated file is a ValueError naming it."""
    try:
        with safe_open(str(path), framework="pt") as weights:
            return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path} is damaged or truncated (not a complete safetensors file: "
                         f"{error})") from None


def check_weights(model: nn.Module, directory: Path, vocab_size: int) -> None:
    """A saved folder must agree with itself: ``vocab.json`` with the embedding, the weights
    with the head and shapes ``config.json`` builds. A ValueError names the file and the two
    numbers, instead of a model that loads and answers wrongly."""
    path = directory / "model.safetensors"
    found, expected = weight_shapes(path), {k: tuple(v.shape) for k, v in
                                             model.state_dict().items()}
    rows = found.get("core.embedding.weight", (None,))[0]
    if rows is not None and rows != vocab_size:
        raise ValueError(f"{directory / 'vocab.json'} has {vocab_size} tokens but the embedding "
                         f"in {path} has {rows} rows: the vocabulary is not the one the model "
                         "was trained with")
    config_rows = expected.get("core.embedding.weight", (None,))[0]
    if config_rows is not None and config_rows != vocab_size:
        raise ValueError(f"{directory / 'config.json'} says vocab_size {config_rows} but "
                         f"{directory / 'vocab.json'} has {vocab_size} tokens")
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path} does not hold the model {directory / 'config.json'} describes: "
                         f"missing {missing[:4]}, unexpected {unexpected[:4]} (is the task or "
                         "the head in config.json the one it was trained for?)")
    for name, shape in expected.items():
        if found[name] != shape:
            raise ValueError(f"{path}: {name} has shape {list(found[name])} but "
                             f"{directory / 'config.json'} builds {list(shape)}")


def read_limits(max_length: int | None = None, keep: str | None = None) -> dict:
    """The ``max_length`` / ``keep`` given (not None), as a config's data and an export's
    record name them."""
    return {name: value for name, value in (("max_length", max_length), ("keep", keep))
            if value is not None}


def reading(config: Config, max_length: int | None = None, keep: str | None = None) -> Config:
    """``config`` reading texts cut to ``max_length`` tokens, their start or end (``keep``):
    an export that reads less of a long text than its model was trained on (None: as it was).
    ``keep`` alone re-cuts at the model's own ``max_length``; where it reads whole texts there is
    nothing to cut, which is refused rather than written as a no-op."""
    if keep is not None and max_length is None and config.data.max_length is None:
        raise ValueError(f"keep={keep!r} changes nothing: this model reads whole texts "
                         "(give max_length too, e.g. --max-length 384 --keep end)")
    changes = read_limits(max_length, keep)
    return replace(config, data=replace(config.data, **changes)) if changes else config


def export_model(source: str | Path, target: str | Path, dtype: str = "float16",
                 data_source: str | None = None, max_length: int | None = None,
                 keep: str | None = None) -> Path:
    """Copy a saved model with its weights stored in ``dtype`` (half the size in float16; they
    load back into float32). ``data_source`` replaces the data source in its config, e.g. a
    local copy of IMDB by the hub id, so evaluation elsewhere finds the same data and split.
    ``max_length`` / ``keep``: the copy reads that much of a long text (:func:`reading`)."""
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype!r}")
    if is_ensemble(source):  # each member exported; where they came from stays recorded
        spec = json.loads((Path(source) / ENSEMBLE_FILE).read_text(encoding="utf-8"))
        if read_limits(max_length, keep):
            raise ValueError("an ensemble's members read as they were trained: export one "
                             "model to change max_length or keep")
        return save_ensemble([Path(source) / name for name in spec["members"]], target, dtype,
                             data_source, origins=spec.get("sources"))
    model, vocab, config = load_pretrained(source)
    copied = _save_copy(model, vocab, reading(config, max_length, keep), target, dtype,
                        data_source)
    if copy_wide(source, copied):  # a wide-and-deep model's n-gram part and head, as they are
        write_model_file(copied, "wide")
    return copied


def _save_copy(model: nn.Module, vocab: Vocab, config: Config, target: str | Path, dtype: str,
               data_source: str | None) -> Path:
    if data_source is not None:
        config = replace(config, data=replace(config.data, source=data_source))
    return save_pretrained(model.to(getattr(torch, dtype)), target, vocab, config)


def load_core_weights(directory: str | Path) -> tuple[CoreConfig, Vocab, dict]:
    """The core of any saved model folder: its config, its vocabulary and its weights."""
    directory = Path(directory)
    config = read_config(directory)
    weight_shapes(directory / "model.safetensors")  # a damaged file named before loading
    weights = load_file(str(directory / "model.safetensors"))
    core_weights = {k.removeprefix("core."): v for k, v in weights.items()
                    if k.startswith("core.")}
    return config.model.core, _read_vocab(directory), core_weights


def transfer_core(core: RNNCore, vocab: Vocab, directory: str | Path,
                  directions: str = "both") -> None:
    """Load the core saved in ``directory`` (e.g. a pretrained language model's) into ``core``,
    whose model uses ``vocab``. The vocabularies must be identical and every weight's shape
    must match; otherwise a ValueError names the difference. ``directions`` "forward" or
    "backward": only that stack of a separate-layout core, into a one-direction ``core``."""
    _, saved_vocab, weights = load_core_weights(directory)
    if directions != "both":
        weights = one_direction(weights, directions == "backward")
    if saved_vocab.itos != vocab.itos:
        raise ValueError(
            f"the core in {directory} was trained with another vocabulary ({len(saved_vocab)} "
            f"tokens) than this model's ({len(vocab)} tokens); build the model with the "
            "encoder's vocabulary")
    _load_matching(core, weights, "core", directory)


def transfer_head(model: nn.Module, directory: str | Path) -> None:
    """Load the head (every weight outside ``core.``) of the classifier saved in ``directory``
    into ``model``, whose head must have the same weights and shapes: with
    :func:`transfer_core`, a saved classifier's training continues from where it ended."""
    task = read_config(directory).task
    if task != "sentiment":
        raise ValueError(f"{directory} holds a {task} model, whose head is no classifier's: "
                         "only a saved classifier can pass its head on (encoder_head)")
    # the head's tensors alone, not the whole file (transfer_core has just read the core's)
    with safe_open(str(Path(directory) / "model.safetensors"), framework="pt") as saved:
        weights = {name: saved.get_tensor(name) for name in saved.keys()
                   if not name.startswith("core.")}
    # a mil head's attention and sentence ends start fresh when the saved head has none
    fresh = set(getattr(model, "fresh_weights", ())) - set(weights)
    own = {name: tensor for name, tensor in model.state_dict().items()
           if not name.startswith("core.") and name not in fresh}
    _load_matching(model, weights, "head", directory, own=own)


def _load_matching(module: nn.Module, weights: dict, what: str, directory: str | Path,
                   own: dict | None = None) -> None:
    """``module.load_state_dict(weights)`` after checking that ``weights`` and ``own`` (the
    part of the module's weights they replace; all of them when None) hold the same names
    and shapes; a ValueError names a difference."""
    strict = own is None
    own = module.state_dict() if own is None else own
    if set(own) != set(weights):
        raise ValueError(f"the {what} in {directory} has other weights than this {what}: "
                         f"missing {sorted(set(own) - set(weights))}, "
                         f"unexpected {sorted(set(weights) - set(own))}")
    for name, tensor in weights.items():
        if tensor.shape != own[name].shape:
            raise ValueError(f"{what} weight {name!r} in {directory} has shape "
                             f"{tuple(tensor.shape)}, this {what} expects "
                             f"{tuple(own[name].shape)}")
    module.load_state_dict(weights, strict=strict)


def one_direction(weights: dict, backward: bool) -> dict:
    """A bidirectional core's weights reduced to one direction's stack: the RNN of layer ``l``
    and that direction (``rnns.{2l+d}``) becomes ``rnns.{l}``; the embedding is shared."""
    kept = {}
    for name, tensor in weights.items():
        if not name.startswith("rnns."):
            kept[name] = tensor
            continue
        _, index, rest = name.split(".", 2)
        layer, direction = divmod(int(index), 2)
        if direction == int(backward):
            kept[f"rnns.{layer}.{rest}"] = tensor
    return kept


def save_training_state(
    directory: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: dict,
    scaler: torch.amp.GradScaler | None = None,
    average: nn.Module | None = None,
) -> None:
    """Everything needed to resume: weights, optimizer state, RNG states and ``progress``
    (and the running weight average, ``average.safetensors``, when there is one)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    optimizer_state = optimizer.state_dict()
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    state_meta: dict = {}
    for param_id, values in optimizer_state["state"].items():
        state_meta[str(param_id)] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{param_id}.{key}"] = value.detach().cpu().contiguous()
                state_meta[str(param_id)][key] = "tensor"
            else:
                state_meta[str(param_id)][key] = value
    save_file(tensors, str(directory / "state.safetensors.tmp"))
    _publish(directory / "state.safetensors.tmp", directory / "state.safetensors")
    _save_weights(model, directory / "model.safetensors")
    if average is not None:
        _save_weights(average, directory / "average.safetensors")
    meta = {
        "progress": progress,
        "param_groups": optimizer_state["param_groups"],
        "optimizer_state": state_meta,
        "python_random": _to_json(random.getstate()),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
    }
    write_json(directory / "state.json", meta)  # written last: its presence marks completeness


def _to_json(value):
    return [_to_json(v) for v in value] if isinstance(value, tuple | list) else value


def _to_tuple(value):
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list) else value


def load_training_state(
    directory: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    average: nn.Module | None = None,
) -> dict | None:
    """Restore what :func:`save_training_state` wrote; returns ``progress`` (None if absent).
    A run that had no weight average starts ``average`` afresh from its next step."""
    directory = Path(directory)
    if not (directory / "state.json").is_file():
        return None
    meta = json.loads((directory / "state.json").read_text())
    device = next(model.parameters()).device
    load_model(model, str(directory / "model.safetensors"), device=str(device))
    if average is not None and (directory / "average.safetensors").is_file():
        load_model(average, str(directory / "average.safetensors"), device=str(device))
    tensors = load_file(str(directory / "state.safetensors"))
    state = {}
    for param_id, values in meta["optimizer_state"].items():
        state[int(param_id)] = {
            key: tensors[f"optim.{param_id}.{key}"] if value == "tensor" else value
            for key, value in values.items()
        }
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    random.setstate(_to_tuple(meta["python_random"]))
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    return meta["progress"]
