"""A visitor's LoRA file: read from its header, checked against the model's layer sizes.

The file is refused with a message before it costs a GPU call: not a LoRA, half a pair, rank 0, an odd
dtype, tensors that are neither LoRA weights nor their alphas, or made for another model. The
verdict comes from the safetensors header alone (names, shapes, dtypes; no tensor is read) and is
kept per file (path, size, modification time), so a file named by many requests is checked once.
Loading and unloading it happen inside ``backend.Backend.run``, which reads the tensors once
(``load_state``): PEFT's ``.default.`` names are renamed and kohya-style ``alpha`` tensors folded
into the B matrices, so both load as their trainer meant.
"""

from __future__ import annotations

import collections
import os
import re
import threading
from pathlib import Path
from typing import Any

import error_messages


class BadLora(ValueError):
    """An uploaded file is not a LoRA, or not one for the loaded model."""


# Adapter name of a visitor's LoRA; it exists only inside ``Backend.run`` under the lock.
LORA_ADAPTER = "visitor"
_LORA_KEY = re.compile(
    r"^(?:transformer\.)?(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$"
)
# A kohya-style scale beside a pair: ``<module>.alpha`` (scale = alpha / rank).
_ALPHA_KEY = re.compile(r"^(?:transformer\.)?(?:base_model\.model\.)?(?P<module>.+)\.alpha$")
# ACE-Step's own trainer names the attention projections as upstream does; diffusers renames them
# (``_convert_non_diffusers_ace_step_lora_to_diffusers``), and so must the header check.
_PROJ_RENAMES = {".q_proj.": ".to_q.", ".k_proj.": ".to_k.", ".v_proj.": ".to_v.", ".o_proj.": ".to_out.0."}


# What a LoRA's matrices may be stored as (safetensors dtype names).
LORA_DTYPES = {"F16", "BF16", "F32", "F64"}


def read_lora_header(path: str) -> dict[str, tuple[int, ...]]:
    """``{key in diffusers naming: shape}`` of a LoRA ``.safetensors`` file's A and B matrices,
    read from its header alone (no tensor is read).

    Raises ``BadLora`` for anything that is not a safetensors file of LoRA weights: no LoRA
    tensors, an A matrix without its B (or the reverse), rank 0, weights that are not floating
    point, or tensors PEFT would not take (anything but LoRA weights and their alphas).
    """
    from safetensors import safe_open

    name = Path(path).name
    if not Path(path).is_file():
        raise BadLora(error_messages.LORA_MISSING)
    if not name.lower().endswith(".safetensors"):
        raise BadLora(error_messages.LORA_NOT_SAFETENSORS.format(name=name))
    try:
        with safe_open(path, framework="np") as f:
            keys = list(f.keys())
            dtypes = {k: f.get_slice(k).get_dtype() for k in keys}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
    except Exception:
        raise BadLora(error_messages.LORA_UNREADABLE.format(name=name)) from None
    lora_keys = [k for k in keys if _LORA_KEY.match(k)]
    parts: dict[str, set[str]] = {}
    for key in lora_keys:
        match = _LORA_KEY.match(key)
        parts.setdefault(match["module"], set()).add(match["part"])
    if not parts:
        raise BadLora(error_messages.LORA_NO_WEIGHTS.format(name=name))
    unpaired = sorted(m for m, p in parts.items() if p != {"A", "B"})
    if unpaired:
        raise BadLora(
            error_messages.LORA_HALF_PAIRS.format(name=name, count=len(unpaired), layers=len(parts), first=unpaired[0])
        )
    _check_extras(name, keys, shapes, parts)
    check_ranks({k: shapes[k] for k in lora_keys}, name)
    odd = sorted({dtypes[k] for k in keys if dtypes[k] not in LORA_DTYPES})
    if odd:
        raise BadLora(error_messages.LORA_DTYPES.format(name=name, dtypes=", ".join(odd)))
    original = _original_naming(keys)
    return {diffusers_key(k, original): shapes[k] for k in lora_keys}


def _check_extras(name: str, keys: list[str], shapes: dict[str, tuple[int, ...]], parts: dict[str, set]) -> None:
    """Refuse what diffusers would refuse inside the GPU call ("Invalid LoRA checkpoint"): a tensor
    that is neither a LoRA matrix nor one layer's alpha (one number, beside its pair)."""
    for key in keys:
        if _LORA_KEY.match(key) or "dora_scale" in key:  # diffusers drops DoRA scales itself
            continue
        alpha = _ALPHA_KEY.match(key)
        if alpha is not None and alpha["module"] in parts and int(_count(shapes[key])) == 1:
            continue
        if alpha is not None:
            raise BadLora(error_messages.LORA_STRAY_ALPHA.format(name=name, key=key))
        if "lora" not in key:
            raise BadLora(error_messages.LORA_NOT_WEIGHTS.format(name=name, key=key))


def _count(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _original_naming(keys: Any) -> bool:
    """Whether diffusers would read the file as ACE-Step's own trainer's (its test, verbatim)."""
    return any("q_proj" in k or "k_proj" in k for k in keys)


def diffusers_key(key: str, original: bool) -> str:
    """``key`` as diffusers names it when the transformer loads it: PEFT's ``.default.`` dropped and,
    for ACE-Step's own trainer's files (``original``), its prefix and projection names converted."""
    key = re.sub(r"\.lora_([AB])\.default\.", r".lora_\1.", key)
    if original:
        key = key.removeprefix("base_model.model.")
        for old, new in _PROJ_RENAMES.items():
            key = key.replace(old, new)
        key = f"transformer.{key}"
    return key


def check_ranks(shapes: dict[str, tuple[int, ...]], name: str) -> None:
    """Raise ``BadLora`` unless each layer's A and B matrices share their rank (A is rank × inputs,
    B outputs × rank) and it is at least 1: PEFT would fail on them only inside the GPU call."""
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        match = _LORA_KEY.match(key)
        if match:
            pairs.setdefault(match["module"], {})[match["part"]] = shape
    for module, pair in sorted(pairs.items()):
        a, b = pair.get("A"), pair.get("B")
        if a is None or b is None:
            continue
        if len(a) < 2 or len(b) < 2 or a[0] != b[1]:
            ranks = {"a": a[0] if a else "?", "b": b[1] if len(b) > 1 else "?"}
            raise BadLora(error_messages.LORA_RANKS.format(name=name, module=module, **ranks))
        if a[0] == 0:
            raise BadLora(error_messages.LORA_RANK_ZERO.format(name=name, module=module))


def layer_sizes(transformer: Any) -> dict[str, tuple[int, int]]:
    """``{layer name: (inputs, outputs)}`` for every linear or convolution layer a LoRA could target."""
    sizes = {}
    for name, layer in transformer.named_modules():
        size_in = getattr(layer, "in_features", None) or getattr(layer, "in_channels", None)
        size_out = getattr(layer, "out_features", None) or getattr(layer, "out_channels", None)
        if size_in and size_out:
            sizes[name] = (size_in, size_out)
    return sizes


def check_lora_fits(shapes: dict[str, Any], sizes: dict[str, tuple[int, int]], label: str, name: str) -> None:
    """Raise ``BadLora`` unless every LoRA matrix in ``shapes`` (key → shape, or key → tensor) fits a
    layer in ``sizes`` (``label``: the model they are; ``name``: the LoRA file's)."""
    shapes = {k: tuple(getattr(v, "shape", v)) for k, v in shapes.items()}
    pairs = [(k, _LORA_KEY.match(k)) for k in shapes]
    misfits = []
    for key, match in pairs:
        if match is None:
            continue
        size = sizes.get(match["module"])
        shape = shapes[key]
        fits = (
            size is not None
            and len(shape) >= 2
            and (shape[1] == size[0] if match["part"] == "A" else shape[0] == size[1])
        )
        if not fits:
            misfits.append(match["module"])
    check_ranks({k: shapes[k] for k, m in pairs if m is not None}, "This LoRA")
    used = [m for _, m in pairs if m is not None]
    if not used:
        raise BadLora(error_messages.LORA_NO_WEIGHTS.format(name=name))
    if misfits:
        raise BadLora(
            error_messages.LORA_OTHER_MODEL.format(count=len(misfits), used=len(used), label=label, first=misfits[0])
        )


# Verdicts by file: (real path, size, mtime in ns, what it was checked against) → None (fits) or the
# message of its refusal. A file named by many requests (12 joins with one 190 MB LoRA cost +2 GB when
# each join read it) is checked once; a file changed in place gets a new key.
_VERDICTS: collections.OrderedDict[tuple, str | None] = collections.OrderedDict()
_VERDICTS_KEPT = 256
_verdicts_lock = threading.Lock()


_checking: dict[tuple, threading.Lock] = {}


def check_file(path: str, sizes: dict[str, tuple[int, int]] | None = None, label: str = "", whole: bool = True) -> None:
    """Raise ``BadLora`` unless ``path`` is a LoRA (and, given ``sizes``, one that fits them): its
    header, then (``whole``) its numbers streamed a block at a time (``not_finite``). The whole verdict
    is kept for the file as it is now; joins naming a file being checked wait for that one check. Not
    ``whole`` (the admission check: ``headers``), the header alone, unless a whole verdict is already kept."""
    try:
        stat = os.stat(path)
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, label if sizes is not None else None)
    except OSError:
        return _verdict(path, sizes, label)  # missing: the header check says so with a message
    if not whole:
        with _verdicts_lock:
            kept = _VERDICTS.get(key, _UNKNOWN)
        if kept is _UNKNOWN:
            return _fits(path, sizes, label)
        if kept is not None:
            raise BadLora(kept)
        return None
    with _verdicts_lock:
        lock = _checking.setdefault(key, threading.Lock())
    with lock:
        with _verdicts_lock:
            known = key in _VERDICTS
            if known:
                _VERDICTS.move_to_end(key)
                verdict = _VERDICTS[key]
        if not known:
            try:
                _verdict(path, sizes, label)
                verdict = None
            except BadLora as exc:
                verdict = str(exc)
            with _verdicts_lock:
                _VERDICTS[key] = verdict
                while len(_VERDICTS) > _VERDICTS_KEPT:
                    _VERDICTS.popitem(last=False)
    with _verdicts_lock:  # later joins find the verdict; whoever waits on this lock still has it
        if _checking.get(key) is lock:
            del _checking[key]
    if verdict is not None:
        raise BadLora(verdict)


_UNKNOWN = object()


def _fits(path: str, sizes: dict[str, tuple[int, int]] | None, label: str) -> None:
    shapes = read_lora_header(path)
    if sizes is not None:
        check_lora_fits(shapes, sizes, label, Path(path).name)


def _verdict(path: str, sizes: dict[str, tuple[int, int]] | None, label: str) -> None:
    _fits(path, sizes, label)
    broken = not_finite(path)
    if broken:
        raise BadLora(error_messages.LORA_DAMAGED.format(name=Path(path).name, count=len(broken)))


# Bytes read at once when a file's numbers are checked: plain reads into one buffer (no memory
# map, whose pages would count as the server's own while the whole file is read).
_BLOCK = 4 * 2**20
_FLOATS = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "BF16": "<u2"}


def not_finite(path: str) -> list[str]:
    """The tensors of a safetensors file (its header already checked) holding NaN or infinity,
    read a block at a time, so a file of any size costs one block of memory."""
    import json
    import struct

    import numpy as np

    broken = []
    buffer = bytearray(_BLOCK)
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        for name, info in sorted(
            ((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0]
        ):
            dtype = _FLOATS.get(info["dtype"])
            begin, end = info["data_offsets"]
            if dtype is None:
                continue
            f.seek(8 + length + begin)
            left, width = end - begin, np.dtype(dtype).itemsize
            while left > 0:
                got = f.readinto(memoryview(buffer)[: min(_BLOCK, left) // width * width or width])
                if not got:
                    break
                values = np.frombuffer(buffer, dtype, got // width)
                bad = ((values & 0x7F80) == 0x7F80).any() if info["dtype"] == "BF16" else not np.isfinite(values).all()
                if bad:
                    broken.append(name)
                    break
                left -= got
    return broken


def needs_rewrite(path: str) -> bool:
    """Whether diffusers cannot take the file as it is (``.default.`` names or alpha tensors), from
    its header."""
    from safetensors import safe_open

    with safe_open(path, framework="np") as f:
        keys = list(f.keys())
    return any(".default." in k or _ALPHA_KEY.match(k) for k in keys)


def load_state(path: str) -> dict[str, Any]:
    """The file's LoRA tensors in diffusers naming, each alpha folded into its B matrix (PEFT's
    scale is alpha / rank; diffusers loads the pair at scale 1), read once."""
    from safetensors.torch import load_file

    raw = load_file(path)
    original = _original_naming(raw)
    b_of = {m["module"]: k for k in raw if (m := _LORA_KEY.match(k)) and m["part"] == "B"}
    alphas = {}
    for key in [k for k in raw if _ALPHA_KEY.match(k) and not _LORA_KEY.match(k)]:
        alphas[diffusers_key(b_of[_ALPHA_KEY.match(key)["module"]], original)] = float(raw.pop(key))
    state = {diffusers_key(k, original): v for k, v in raw.items()}
    for key, alpha in alphas.items():
        state[key] = state[key] * (alpha / state[key].shape[1])
    return state
