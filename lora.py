"""A visitor's adapter file, a LoRA or a LoKr: read from its header, checked against the model's layer sizes.

The file is refused with a message before it costs a GPU call: not an adapter, half a pair, rank 0, an
odd dtype, tensors that are neither adapter weights nor their alphas, made for another model, or naming
no layer of the loaded model (it would change nothing: ACE-Step #615 loaded such a LoKr silently). The
verdict comes from the safetensors header alone (names, shapes, dtypes; no tensor is read) and is kept
per file (path, size, modification time), so a file named by many requests is checked once. Loading
and unloading happen inside ``backend.Backend.run``: a LoRA's tensors read once (``load_state``: PEFT's
``.default.`` names renamed, kohya-style ``alpha`` tensors folded into the B matrices), a LoKr through
LyCORIS (``lokr``), its layer names mapped here (``lokr_layer_names``).
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


def read_lora_header(path: str, header: Header | None = None) -> dict[str, tuple[int, ...]]:
    """``{key in diffusers naming: shape}`` of a LoRA ``.safetensors`` file's A and B matrices,
    read from its header alone (no tensor is read).

    Raises ``BadLora`` for anything that is not a safetensors file of LoRA weights: no LoRA
    tensors, an A matrix without its B (or the reverse), rank 0, weights that are not floating
    point, or tensors PEFT would not take (anything but LoRA weights and their alphas).
    """
    name = Path(path).name
    keys, dtypes, shapes = header or read_header(path)
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


# A ``.safetensors`` header: its tensor names, dtypes and shapes (``read_header``).
Header = tuple[list[str], dict[str, str], dict[str, tuple[int, ...]]]


def read_header(path: str) -> Header:
    """A ``.safetensors`` file's tensor names, dtypes (safetensors' names: ``F32`` …) and shapes, from its
    header alone. Raises ``BadLora`` for a missing file, another format, or one that cannot be read."""
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
    return keys, dtypes, shapes


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


def layer_sizes(transformer: Any) -> dict[str, tuple[int, ...]]:
    """``{layer name: (inputs, outputs, *kernel)}`` for every linear or convolution layer an adapter could
    target (a convolution's kernel after its sizes; a linear layer has none)."""
    sizes = {}
    for name, layer in transformer.named_modules():
        size_in = getattr(layer, "in_features", None) or getattr(layer, "in_channels", None)
        size_out = getattr(layer, "out_features", None) or getattr(layer, "out_channels", None)
        if size_in and size_out:
            sizes[name] = (size_in, size_out, *tuple(getattr(layer, "kernel_size", ())))
    return sizes


def check_lora_fits(
    shapes: dict[str, Any], sizes: dict[str, tuple[int, ...]], label: str, name: str
) -> tuple[int, int]:
    """``(layers it changes, layers it names)`` of a LoRA whose matrices are ``shapes`` (key → shape, or key →
    tensor) on the layers in ``sizes`` (``label``: the model they are; ``name``: the LoRA file's). Raises
    ``BadLora`` when a matrix named for one of the model's layers does not fit it, or when none of its
    layers is one of the model's (it would change nothing). Layers the model lacks are counted, not refused."""
    shapes = {k: tuple(getattr(v, "shape", v)) for k, v in shapes.items()}
    pairs = [(k, _LORA_KEY.match(k)) for k in shapes]
    misfits = []
    for key, match in pairs:
        if match is None or (size := sizes.get(match["module"])) is None:
            continue
        shape = shapes[key]
        if not (len(shape) >= 2 and (shape[1] == size[0] if match["part"] == "A" else shape[0] == size[1])):
            misfits.append(match["module"])
    check_ranks({k: shapes[k] for k, m in pairs if m is not None}, "This LoRA")
    used = [m for _, m in pairs if m is not None]
    if not used:
        raise BadLora(error_messages.LORA_NO_WEIGHTS.format(name=name))
    if misfits:
        raise BadLora(
            error_messages.LORA_OTHER_MODEL.format(count=len(misfits), used=len(used), label=label, first=misfits[0])
        )
    named = {m["module"] for m in used}
    return landed(named & set(sizes), named, label, name, "LoRA")


def landed(changed: Any, named: Any, label: str, name: str, kind: str) -> tuple[int, int]:
    """``(len(changed), len(named))``: the layers of the model an adapter ``name`` (a ``kind``: "LoRA", "LoKr
    adapter") changes, of those it names; ``BadLora`` when it changes none (it would change nothing)."""
    if not changed:
        first = min(named)
        told = error_messages.ADAPTER_CHANGES_NOTHING
        raise BadLora(told.format(name=name, label=label, count=len(named), first=first, kind=kind))
    return len(changed), len(named)


# A LoKr adapter as LyCORIS saves it (upstream's trainer since ACE-Step PR #530, and the community's):
# ``<layer>.<part>``, the layer named ``lycoris_`` and its path with "_" for ".".
_LOKR_KEY = re.compile(r"^(?P<module>[^.]+)\.(?P<part>lokr_w[12](?:_[ab])?|lokr_t2|alpha|dora_scale)$")
LOKR_PREFIX = "lycoris_"
# The DiT's convolutions as upstream names them (``models.map_upstream_key`` maps them the other way).
_CONV_RENAMES = {".proj_in.1.": ".proj_in_conv.", ".proj_out.1.": ".proj_out_conv."}


def adapter_kind(path: str) -> str:
    """``"lokr"`` when the file's header names LoKr factors (``lokr_w1``, ``lokr_w1_a``), else ``"lora"``;
    from the header alone. Raises ``BadLora`` for a file that cannot be read (``read_header``)."""
    return _kind_of(read_header(path)[0])


def _kind_of(keys: list[str]) -> str:
    return "lokr" if any(_LOKR_KEY.match(k) and ".lokr_w1" in k for k in keys) else "lora"


def upstream_layer(layer: str) -> str:
    """A diffusers DiT layer's name in upstream's own model (``layers.0.self_attn.to_q`` →
    ``layers.0.self_attn.q_proj``), the names upstream's LoKr files are made on."""
    dotted = f".{layer}."
    for upstream, ours in (*_PROJ_RENAMES.items(), *_CONV_RENAMES.items()):
        dotted = dotted.replace(ours, upstream)
    return dotted.strip(".")


def lokr_layer_names(sizes: dict[str, tuple[int, ...]]) -> dict[str, str]:
    """``{LyCORIS layer name: the model's layer}`` for the layers in ``sizes``, by upstream's names (as
    upstream's trainer and ComfyUI map them, ComfyUI PR #12665) and by diffusers' own."""
    names = {}
    for layer in sizes:
        for named in (layer, upstream_layer(layer)):
            names[LOKR_PREFIX + named.replace(".", "_")] = layer
    return names


def read_lokr_header(path: str, header: Header | None = None) -> dict[str, dict[str, tuple[int, ...]]]:
    """``{LyCORIS layer name: {part: shape}}`` of a LoKr ``.safetensors`` file, from its header alone.

    Raises ``BadLora`` (naming the file and "LoKr adapter") for tensors that are not LoKr factors, an
    alpha or a DoRA scale; a layer without its ``w1`` or ``w2`` (whole, or both halves ``_a``/``_b``);
    factors whose ranks disagree or are 0; an alpha that is not one number; a DoRA scale that is not
    one number per output; weights that are not floating point.
    """
    name = Path(path).name
    keys, dtypes, shapes = header or read_header(path)
    layers: dict[str, dict[str, tuple[int, ...]]] = {}
    for key in keys:
        match = _LOKR_KEY.match(key)
        if match is None:
            raise BadLora(error_messages.LOKR_NOT_WEIGHTS.format(name=name, key=key))
        layers.setdefault(match["module"], {})[match["part"]] = shapes[key]
    for module, parts in sorted(layers.items()):
        lokr_shape(parts, name, module)
    odd = sorted({dtypes[k] for k in keys if dtypes[k] not in LORA_DTYPES})
    if odd:
        raise BadLora(error_messages.LOKR_DTYPES.format(name=name, dtypes=", ".join(odd)))
    return layers


def lokr_shape(parts: dict[str, tuple[int, ...]], name: str, module: str) -> tuple[int, int]:
    """``(outputs, inputs × kernel)`` of the weight one layer's LoKr factors make, ``kron(w1, w2)``
    (LyCORIS's ``LokrModule``: ``w1`` is ``w1_a @ w1_b`` when halved, ``w2`` likewise, Tucker's ``t2``
    between); ``BadLora`` for a layer whose factors cannot make one (``read_lokr_header``)."""

    def refused(told: str, **fields: Any) -> BadLora:
        return BadLora(told.format(name=name, module=module, **fields))

    for part, shape in parts.items():
        if part.startswith("lokr_") and len(shape) < 2:
            raise refused(error_messages.LOKR_NOT_MATRIX, part=part)
    sides = [_lokr_side(parts, side, refused) for side in ("w1", "w2")]
    out, inputs = sides[0][0] * sides[1][0], sides[0][1] * sides[1][1]
    if "alpha" in parts and _count(parts["alpha"]) != 1:
        raise refused(error_messages.LOKR_ALPHA)
    if "dora_scale" in parts and _count(parts["dora_scale"]) != out:
        raise refused(error_messages.LOKR_DORA, count=_count(parts["dora_scale"]), outputs=out)
    return out, inputs


def _lokr_side(parts: dict, side: str, refused: Any) -> tuple[int, int]:
    """One Kronecker factor's ``(rows, columns × kernel)``, whole or from its halves (``refused``: the
    layer's refusal, from a template and its fields)."""
    whole, a, b = parts.get(f"lokr_{side}"), parts.get(f"lokr_{side}_a"), parts.get(f"lokr_{side}_b")
    if whole is not None:
        return whole[0], _count(whole[1:])
    if a is None or b is None:
        missing = f"lokr_{side}" if a is None and b is None else f"lokr_{side}_{'b' if b is None else 'a'}"
        raise refused(error_messages.LOKR_HALF, missing=missing)
    tucker = parts.get("lokr_t2") if side == "w2" else None
    if tucker is not None:  # w2_a (rank, rows), w2_b (rank, columns), t2 (rank, rank, *kernel)
        ranks, rows, columns = (a[0], b[0], tucker[0], tucker[1]), a[1], b[1] * _count(tucker[2:])
    else:  # w_a (rows, rank), w_b (rank, columns[ × kernel])
        ranks, rows, columns = (a[1], b[0]), a[0], _count(b[1:])
    if len(set(ranks)) > 1:
        raise refused(error_messages.LOKR_RANKS, side=side, ranks=" and ".join(map(str, ranks)))
    if ranks[0] == 0:
        raise refused(error_messages.LOKR_RANK_ZERO)
    return rows, columns


def check_lokr_fits(
    layers: dict[str, dict[str, tuple[int, ...]]], sizes: dict[str, tuple[int, ...]], label: str, name: str
) -> tuple[int, int]:
    """``(layers it changes, layers it names)`` of a LoKr adapter (``read_lokr_header``) on the layers in
    ``sizes``. Raises ``BadLora`` when a layer it names for one of the model's does not make that layer's
    weight (``kron(w1, w2)``'s shape), or when none of its layers is one of the model's."""
    names = lokr_layer_names(sizes)
    matched, misfits = set(), []
    for module, parts in sorted(layers.items()):
        if (layer := names.get(module)) is None:
            continue
        matched.add(module)
        made, size = lokr_shape(parts, name, module), sizes[layer]
        wanted = (size[1], size[0] * _count(size[2:]))
        if made != wanted:
            misfits.append(
                {"first": module, "rows": made[0], "columns": made[1], "outputs": wanted[0], "inputs": wanted[1]}
            )
    if misfits:
        told = error_messages.LOKR_OTHER_MODEL
        raise BadLora(told.format(name=name, count=len(misfits), layers=len(matched), label=label, **misfits[0]))
    return landed(matched, layers, label, name, "LoKr adapter")


def layers_changed(path: str, sizes: dict[str, tuple[int, ...]], label: str = "this model") -> tuple[int, int]:
    """``(layers of the model the adapter changes, layers it names)``, a LoRA's or a LoKr's, from its
    header: fewer changed than named is an adapter partly for another model. Raises ``BadLora`` as
    ``check_file`` does (from the header: the numbers are not read)."""
    return _fits(path, sizes, label)


# Verdicts by file: (real path, size, mtime in ns, what it was checked against) → None (fits) or the
# message of its refusal. A file named by many requests (12 joins with one 190 MB LoRA cost +2 GB when
# each join read it) is checked once; a file changed in place gets a new key.
_VERDICTS: collections.OrderedDict[tuple, str | None] = collections.OrderedDict()
_VERDICTS_KEPT = 256
_verdicts_lock = threading.Lock()


_checking: dict[tuple, threading.Lock] = {}


def check_file(path: str, sizes: dict[str, tuple[int, ...]] | None = None, label: str = "", whole: bool = True) -> None:
    """Raise ``BadLora`` unless ``path`` is a LoRA or a LoKr adapter (and, given ``sizes``, one that fits them and
    changes at least one of their layers: ``layers_changed`` counts them): its
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
            _fits(path, sizes, label)
            return None
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


def _fits(path: str, sizes: dict[str, tuple[int, ...]] | None, label: str) -> tuple[int, int] | None:
    name, header = Path(path).name, read_header(path)
    if _kind_of(header[0]) == "lokr":
        layers = read_lokr_header(path, header)
        return None if sizes is None else check_lokr_fits(layers, sizes, label, name)
    shapes = read_lora_header(path, header)
    return None if sizes is None else check_lora_fits(shapes, sizes, label, name)


def _verdict(path: str, sizes: dict[str, tuple[int, ...]] | None, label: str) -> None:
    _fits(path, sizes, label)
    broken = not_finite(path)
    if broken:
        told = error_messages.LOKR_DAMAGED if adapter_kind(path) == "lokr" else error_messages.LORA_DAMAGED
        raise BadLora(told.format(name=Path(path).name, count=len(broken)))


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
