"""A take's starting noise mixed with new noise, as upstream ACE-Step's retake mixes it (GPU side).

Upstream (``retake_seeds`` + ``retake_variance``): with the take's noise ``x`` and new noise ``y``
drawn from the retake seed, the variation starts from ``cos(a·π/2)·x + sin(a·π/2)·y``: unit variance
for any amount ``a``, the take itself at 0, all new noise at 1. Here a take's noise is its seed's,
then each step of its ``chain`` (``[retake seed, amount]`` pairs, oldest first), so a variation of a
variation is made again from its record exactly. ``mixing`` lends this to one pipeline call by
wrapping the pipeline's own ``prepare_latents``: the shape, dtype and device stay the pipeline's for
every mode, and the take's own noise is what the pipeline itself draws from the take's generator.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

Chain = list[tuple[int, float]]


def mix(base: Any, chain: Chain, row: int = 0) -> Any:
    """``base`` (one take's noise, ``[1, frames, channels]`` or ``[frames, channels]``) mixed step by
    step with the noise of each ``(seed, amount)`` of ``chain``, drawn like the pipeline's own: a CPU
    generator per take, in the base's dtype, then moved to its device."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    out = base
    for seed, amount in chain:
        if amount <= 0:  # cos(0)·x + sin(0)·y is x: nothing is drawn
            continue
        angle = amount * math.pi / 2
        fresh = randn_tensor(
            tuple(base.shape),
            generator=torch.Generator("cpu").manual_seed(int(seed)),
            device=base.device,
            dtype=base.dtype,
        )
        out = math.cos(angle) * out + math.sin(angle) * fresh
    return out


@contextlib.contextmanager
def mixing(pipe: Any, chains: list[Chain] | None) -> Iterator[None]:
    """For the calls made inside it, ``pipe``'s first noise is each take's ``chains[i]`` mix (latents
    given to ``prepare_latents`` are left as given). Nothing changes without a chain."""
    if not chains or not any(amount > 0 for chain in chains for _, amount in chain):
        yield
        return
    drawn = pipe.prepare_latents

    def prepare(*args: Any, **kwargs: Any) -> Any:
        given = kwargs.get("latents")
        latents = drawn(*args, **kwargs)
        if given is not None:
            return latents
        import torch

        rows = [mix(latents[i : i + 1], chains[i]) for i in range(latents.shape[0])]
        return torch.cat(rows, dim=0)

    pipe.prepare_latents = prepare
    try:
        yield
    finally:
        del pipe.prepare_latents  # the class's own method again
