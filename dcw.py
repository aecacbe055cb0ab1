"""DCW, upstream ACE-Step's sampler correction (``on_by_default``: turbo models only), GPU side.

DCW ("Elucidating the SNR-t Bias of Diffusion Probabilistic Models", CVPR 2026) splits the latent
after each sampler step and the step's predicted clean latent (``x - v·t``) into wavelet bands along
time and pushes the latent's bands away from the prediction's. Upstream's defaults: ``double`` mode,
the low band by ``0.05·t`` and the high band by ``0.02·(1 − t)``, one level of the Haar wavelet, with
zero padding for an odd frame count (``acestep/models/common/dcw_*.py``).

Upstream gets the transform from ``pytorch_wavelets``, which imports ``pkg_resources`` (gone from
setuptools 81) and which upstream disables with a warning where it is missing. One Haar level is a
pair sum and difference, so it is written here with the library's float32 filter bank (taps c = 1/√2
in float32): the analysis as the same grouped convolution, since a convolution may fuse its two
products into one rounding (oneDNN on an AVX-512 CPU does: written as ``a·c + b·c`` the low band
differed from the library's by one float32 step in about half its values), and the synthesis as
its products and one sum each (its transposed convolutions' taps do not overlap, so each output is
a single product). Equal to the library bit for bit (tests/test_sampler.py holds the rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def on_by_default(turbo: bool) -> bool:
    """Whether a run corrects its steps when nobody says: upstream's main decides by the model, on
    for turbo checkpoints only, off for SFT and base (PR #1273, its resolver: an explicit value wins,
    otherwise ``config.is_turbo``; PR #1282 the same for its API and CLI). From 2026-04-23 it had been
    on for every model, and XL SFT made noise with it (upstream's #1206, #1220, #1259, #1288, #1299).
    The one place the studio's default is decided: the form, the API, the records and the sampler
    all ask it."""
    return bool(turbo)


def resolve(value: Any, turbo: bool) -> bool:
    """``value`` where one is given, else the model's default (``on_by_default``)."""
    return on_by_default(turbo) if value is None else bool(value)


# 1/√2 as pywt writes the Haar taps; times a float32 tensor it is rounded to float32, as the library's filter is.
_HAAR = 0.7071067811865476


@dataclass(frozen=True)
class Dcw:
    """One run's correction: ``low`` scales the low band by ``low·t``, ``high`` the high band by
    ``high·(1 − t)`` (upstream's ``double`` mode); off does nothing."""

    on: bool
    low: float = 0.05
    high: float = 0.02

    def correct(self, latents: Any, denoised: Any, t: float) -> Any:
        """``latents`` (after the step, ``[batch, frames, channels]``) with its bands pushed away from
        ``denoised``'s at the step's time ``t``; the same tensor when off."""
        if not self.on or (self.low == 0.0 and self.high == 0.0):
            return latents
        return correct(latents, denoised, t * self.low, (1.0 - t) * self.high)


def haar(x: Any) -> tuple[Any, Any]:
    """One Haar level along the last axis of ``x`` (``[batch, channels, n]``): (low, high), each
    ``ceil(n / 2)`` long (an odd ``n`` is padded with one zero), in float32, computed as the
    library's analysis bank: one convolution per channel with the taps (c, c) and (c, −c), stride 2."""
    import torch

    x = x.to(torch.float32)
    if x.shape[-1] % 2:
        x = torch.nn.functional.pad(x, (0, 1))
    channels = x.shape[1]
    # Made on x's device (no copy from the host): rows alternate low and high taps per channel.
    taps = torch.full((2 * channels, 1, 1, 2), _HAAR, dtype=torch.float32, device=x.device)
    taps[1::2, ..., 1] = -_HAAR
    bands = torch.nn.functional.conv2d(x.contiguous()[:, :, None, :], taps, stride=(1, 2), groups=channels)
    return bands[:, 0::2, 0].contiguous(), bands[:, 1::2, 0].contiguous()


def inverse_haar(low: Any, high: Any, length: int) -> Any:
    """The signal of ``length`` samples whose Haar level is (``low``, ``high``)."""
    import torch

    even, odd = low * _HAAR + high * _HAAR, low * _HAAR - high * _HAAR
    return torch.stack([even, odd], dim=-1).flatten(-2)[..., :length]


def correct(latents: Any, denoised: Any, low: float, high: float) -> Any:
    """Upstream's ``double`` correction with the step's two strengths: each band of ``latents``
    moved away from ``denoised``'s by its strength, in float32, back in the latents' dtype."""
    frames = latents.shape[1]
    x_low, x_high = haar(latents.transpose(1, 2))
    y_low, y_high = haar(denoised.transpose(1, 2))
    if low != 0.0:
        x_low = x_low + low * (x_low - y_low)
    if high != 0.0:
        x_high = x_high + high * (x_high - y_high)
    return inverse_haar(x_low, x_high, frames).transpose(1, 2).contiguous().to(latents.dtype)
