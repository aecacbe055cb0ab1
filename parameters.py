"""Each music mode's parameters, declared once (``Param``): name, type and default, and for the declared ones the
range and validation error, the page's label and help, the MCP tools' help, the model call's field it sets and
what a record leaves out.

The preparers' signatures (and so the named API, the MCP schema, the page's inputs and first values, and the
admission check) are made from ``names`` by ``preparer``. A parameter the studio handles alike in every mode
(``DECLARED``) is also built on the page (``form_fields.declared``), checked, put on the model call or the
finish, written to the record and read back from it here, so adding one is its declaration, the model's field
and its use. See docs/design.md, "A new parameter"."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import checks
import mastering
import tooltips as tips
from music_request import Call

MUSIC = ("generate", "cover", "extend", "edit")


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a music mode. A parameter with a ``label`` is a declared one: the page, the checks, the
    model call and the record are all made from these fields.

    - name: the argument's name in the preparer's signature, the named API's and the MCP tool's.
    - default: the signature's default; a record leaves it out (unless ``kept``) and reads a missing one as it.
    - kind: the argument's type annotation, as text ("float | None").
    - label: the field's label on the page and the name a validation error gives it; the page adds ``unit``.
    - help: the field's help on the page (its ``info=``, from ``tooltips``), also the MCP help unless ``mcp_help``.
    - span: (low, high), the slider's range and the check's, in ``unit``; None: a checkbox, or ``choices``.
    - unit: the unit after the label and in a range error (" s": seconds, " dBTP": decibels true peak).
    - step: the slider's step, in ``unit``.
    - call: the ``music_request.Call`` field it sets; None: the finish's (fades, ceiling), the seed (each
      take's), the LoRA strength (the adapter's) or the request's (the output format, *Lock to the grid*).
    - modes: the music modes that take it; any other runs at the call's default or the model's default.
    - shown: the label on the page where it differs from ``label`` ("Step correction (DCW)").
    - group: where the page builds it: "finish" beside the loudness, "sampling" in the output format's row,
      "placed" where its tab puts it (``form_fields.placed``), "" with the mode's other fields.
    - model_default: the ``models.Variant`` attribute whose value None asks for (steps, guidance, shift, DCW).
    - kept: whether every record holds it, even at its default (the sampling, the song's facts, the fades).
    - rule: (value, label, variant) -> the value checked, where ``span`` alone does not say the check.
    - field: "number" for a number box, "radio" for a radio over ``choices``; "": a slider, checkbox or dropdown.
    - page: the tail of its element id (``#gen-steps``) where it is not the name.
    - mcp_help: the MCP tools' help where the page's ``help`` speaks of the page.
    - after: the parameter it may not be below (the guidance interval's end: its start).
    - held: (mode, call) -> whether that call's record holds it at all (a cover's strengths, not a morph's);
      None: every record.
    - choices: a dropdown's (or a radio's) choices, each a value or a (label, value) pair.

    What a request costs is no field: ``music_shape`` reads it from the model call (docs/design.md)."""

    name: str
    default: Any
    kind: str
    label: str = ""  # as a refusal names it; the page adds the unit
    help: str = ""
    span: tuple[float, float] | None = None
    unit: str = ""
    step: float = 0.1
    call: str | None = None
    modes: tuple[str, ...] = ()
    shown: str = ""
    group: str = ""
    model_default: str = ""
    kept: bool = False
    rule: Callable[[Any, str, Any], Any] | None = None  # (value, label, variant) -> the value checked
    field: str = ""
    page: str = ""
    mcp_help: str = ""
    after: str = ""
    held: Callable[[str, Any], bool] | None = None
    choices: tuple[Any, ...] = ()

    def check(self, value: Any, variant: Any = None) -> Any:
        """The value checked as the page's field checks it: in its span or ``choices``, a validation error naming
        its label (or by its ``rule``). None (and an emptied field) asks for the default, or for ``variant``'s
        default where the model decides it (``model_default``). Raises ``checks.InputError``."""
        with checks.about(self.name):
            if value is None and self.model_default:
                value = getattr(variant, self.model_default)
            if self.rule is not None:
                return self.rule(value, self.label, variant)
            if self.choices:  # a choice with no check of its own: one of its values, an emptied field its default
                return checks.one_of(self.default if value is None or value == "" else value, self.label, self.choices)
            if self.span is None:
                return checks.check_switch(value, self.label)
            # An emptied field whose default is the model's is refused (a number is needed there).
            value = self.default if (value is None or value == "") and not self.model_default else value
            return checks.in_range(value, self.label, *self.span, self.unit)


def _p(name: str, default: Any, kind: str) -> Param:
    return Param(name, default, kind)


def _alone(check: Callable[[Any], Any]) -> Callable[[Any, str, Any], Any]:
    """A ``rule`` of a check that reads the value alone, with its own validation error ("Unknown key …")."""
    return lambda value, *_: check(value)


def _adapter_strength(n: int, label: str) -> Param:
    """Adapter ``n``'s strength (``ADAPTER_SLOTS``), declared as the first's (``lora_scale``)."""
    return Param(
        f"lora_{n}_scale",
        1.0,
        "float",
        label=label,
        help=tips.LORA_SCALE,
        mcp_help=tips.ADAPTER_STRENGTH_MCP.format(n=n),
        span=checks.LORA_SCALE_RANGE,
        step=0.05,
        modes=MUSIC,
        group="placed",
    )


# Edit's region as the form first shows it: sent with bars, the region is the bars' (``edit_bars``).
REGION = (0.0, 10.0)
# *Complete the song*'s parts to add until the musician picks others (``part_tasks``).
ADD_FIRST = ("drums", "bass")

# Every parameter a music mode takes but those ``DECLARED`` below; the page fields, help and checks of these
# are each mode's (``modes``, ``preparing``, ``form_fields``, ``tooltips``), as none fits a declaration: the
# length (its check reads Think and *Length: auto*, its record -1 where Think chose), the loop (a whole number's
# enum to the API, the request's ``Loop``), the loudness (a text field, a finish in LUFS, a whole new take's only).
_PLAIN = [
    _p("src_audio", None, "str | None"),
    _p("prompt", "", "str"),
    _p("lyrics", "", "str"),
    _p("audio_duration", 30.0, "float"),
    _p("bpm", 0, "float | None"),
    _p("batch_size", 1, "int"),
    _p("reference_audio", None, "str | None"),
    _p("lora", None, "str | None"),
    _p("think", None, "bool | None"),
    _p("auto_length", False, "bool"),
    _p("rewrite_caption", True, "bool"),
    _p("plan", "", "str | dict[str, Any]"),
    _p("loudness", checks.LOUDNESS_DEFAULT, "float | str"),
    _p("reference_take", None, "str | None"),
    _p("loop_bars", 0, "int"),
    _p("lora_preset", None, "str | None"),
    # The second and third adapter's file and preset, as the first's (``ADAPTER_SLOTS``).
    *(_p(f"lora_{n}{part}", None, "str | None") for n in (2, 3) for part in ("", "_preset")),
    _p("morph", False, "bool"),
    _p("morph_prompt", "", "str"),
    _p("morph_lyrics", "", "str"),
    _p("extend_seconds", 30.0, "float"),
    _p("bars", None, "list[int] | int | str | None"),
    _p("first_downbeat", None, "float | str | None"),
    # Where Extend's new music goes: "end" (after the song), "start" (an intro before it), or a point inside the
    # song ("92.5", "1:32.5", "bar 9"), the song kept up to it and what followed replaced (``extend_where``).
    Param("where", "end", "str", help=tips.EXTEND_WHERE),
    # Extend's new part closes the song: its lyrics end in an [Outro] section (``extend_lyrics``).
    Param("ending", False, "bool", help=tips.EXTEND_ENDING),
    _p("repainting_start", REGION[0], "float"),
    _p("repainting_end", REGION[1], "float"),
    _p("change", "region", "str"),
    _p("part", "vocals", "str"),
    _p("add_parts", ADD_FIRST, "list[str] | tuple[str, ...] | None"),
    _p("repaint_mode", Call.repaint_mode, "str"),
    _p("lines", None, "list[int] | str | None"),
    _p("section", None, "str | int | None"),
]

# The model call's sampling, which every record holds: on the page beside the output format, with element ids
# by the model's names for them (``#gen-steps``, ``#cover-guidance``).
_SAMPLED: dict[str, Any] = {"group": "sampling", "kept": True}
# The guidance interval upstream's call runs by default: the whole schedule.
_WHOLE = (Call.cfg_interval_start, Call.cfg_interval_end)

# The song's facts' fields and their choices: each placed by its tab, held by every record, checked by its rule.
_FACT: dict[str, Any] = {"modes": MUSIC, "group": "placed", "kept": True}
_KEYS = (checks.AUTO, *checks.KEYS)
_FORMAT = {"group": "sampling", "rule": _alone(checks.check_format), "field": "radio", "choices": (*checks.FORMATS,)}
_LANGUAGES = ((tips.LANGUAGE_UNKNOWN, checks.UNKNOWN), *((f"{n} ({c})", c) for c, n in checks.LANGUAGES.items()))

# The parameters every mode handles alike, each wholly here: page field, check, model call or finish, record.
DECLARED = [
    # The song's facts every mode shares (``SONG``), each a choice its tab places, taking any spelling its check
    # reads ("A min", "3/4", "Japanese"); every record holds the call's: the key and metre None where the model
    # chooses (the field's "auto"), the language as sung ("unknown" where nothing is: the preparers').
    Param(
        "key_scale",
        checks.AUTO,
        "str",
        "Key",
        tips.KEY,
        call="keyscale",
        page="key",
        rule=_alone(checks.check_key),
        choices=_KEYS,
        **_FACT,
    ),
    Param(
        "time_signature",
        checks.AUTO,
        "str",
        "Time signature",
        tips.TIME_SIGNATURE,
        call="timesignature",
        page="meter",
        rule=_alone(checks.check_time_signature),
        choices=tuple(checks.TIME_SIGNATURE_CHOICES),
        **_FACT,
    ),
    Param(
        "vocal_language",
        checks.UNKNOWN,
        "str",
        "Vocal language",
        tips.LANGUAGE,
        call="vocal_language",
        page="language",
        rule=_alone(checks.check_language),
        choices=_LANGUAGES,
        **_FACT,
    ),
    Param(
        "seed",
        -1,
        "int",
        label="Seed",
        help=tips.SEED,
        span=(-1, checks.MAX_SEED),
        rule=lambda value, label, _: checks.check_seed(value, label),
        field="number",
        modes=MUSIC,
        group="sampling",
    ),
    Param(
        "inference_steps",
        None,
        "int | None",
        label="Steps",
        help=tips.STEPS,
        span=checks.STEPS_RANGE,
        step=1,
        rule=checks.check_steps,
        call="num_inference_steps",
        model_default="steps",
        modes=MUSIC,
        page="steps",
        **_SAMPLED,
    ),
    *(
        Param(
            name,
            None,
            "float | None",
            label,
            help_,
            span,
            step=0.5,
            call=name,
            model_default=variant_field,
            modes=modes,
            page=variant_field,
            **_SAMPLED,
        )
        for name, label, help_, span, variant_field, modes in (
            ("guidance_scale", "Guidance", tips.GUIDANCE, checks.GUIDANCE_RANGE, "guidance", MUSIC),
            # Cover, Extend and Edit run at the model's default shift (upstream's default, 3 for every model).
            ("shift", "Shift", tips.SHIFT, checks.SHIFT_RANGE, "shift", ("generate",)),
        )
    ),
    # The takes' file format: the request's (``MusicRequest.audio_format``), not the call's, so its use and its
    # record line are the preparers' and ``job_record``'s, as *Lock to the grid*'s; last of the sampling's row.
    Param("audio_format", "wav", "str", "Output format", tips.FORMAT, modes=MUSIC, page="format", **_FORMAT),
    *(
        # Upstream's guidance interval (``cfg_interval_start``, ``_end``), a record holding both ends where it is
        # not the whole schedule (a record without them reads as the whole).
        Param(
            f"cfg_interval_{end}",
            getattr(Call, f"cfg_interval_{end}"),
            "float",
            label,
            tips.GUIDANCE_INTERVAL,
            checks.SHARE_RANGE,
            step=0.05,
            call=f"cfg_interval_{end}",
            modes=("generate",),
            shown=f"{label} t",
            group="placed",
            page=page,
            kept=True,
            held=lambda _, call: (call.cfg_interval_start, call.cfg_interval_end) != _WHOLE,
            after="cfg_interval_start" if end == "end" else "",
        )
        for end, label, page in (("start", "Guidance from", "cfg-from"), ("end", "Guidance until", "cfg-until"))
    ),
    *(
        # Cover's strengths, every cover's record holding both (a morph's neither: it uses neither).
        Param(
            name,
            default,
            "float",
            label,
            help_,
            checks.SHARE_RANGE,
            step=0.05,
            call=name,
            modes=("cover",),
            group="placed",
            page=page,
            kept=True,
            held=lambda mode, call: mode == "cover" and not call.morph,
        )
        for name, default, label, help_, page in (
            ("audio_cover_strength", 0.6, "Cover strength", tips.COVER_STRENGTH, "strength"),
            ("cover_noise_strength", 0.0, "Start from the song", tips.COVER_NOISE, "start"),
        )
    ),
    Param(
        "repaint_strength",
        Call.repaint_strength,
        "float",
        label="Repaint strength",
        help=tips.REPAINT_STRENGTH,
        mcp_help="With repaint_mode balanced: 0 keeps the stretch close to the song around it, 1 lets it go free.",
        span=checks.SHARE_RANGE,
        step=0.05,
        call="repaint_strength",
        modes=("edit",),
        group="placed",
        kept=True,
        # A region's record holds it; a part's, which does not use it, does not (checked all the same).
        held=lambda mode, call: mode == "edit" and call.task_type == "repaint",
    ),
    Param(
        "lock_to_grid",
        False,
        "bool",
        label="Lock to the grid",
        help=tips.LOCK_TO_GRID,
        mcp_help="Warp each take's bars onto bpm (or the planner's, with think on), so every bar lasts exactly a bar at "
        "that tempo from its first downbeat: a take that lines up with a DAW's grid. The take as played is kept "
        "beside it (takes[i].unlocked); its record says what was stretched (takes[i].lock). Needs bpm or think.",
        modes=("generate",),
        page="lock",
        group="placed",  # in the tempo's row (``generate_page``); the request's, not the call's: ``modes._lock``
    ),
    # The LoRA's strength is the adapter's (``preparing.check_lora``), its record the LoRA's (``job_record``).
    Param(
        "lora_scale",
        1.0,
        "float",
        label="LoRA strength",
        help=tips.LORA_SCALE,
        mcp_help="How strongly the LoRA colours the result: 0 not at all, 1 as trained.",
        span=checks.LORA_SCALE_RANGE,
        step=0.05,
        modes=MUSIC,
        group="placed",
    ),
    _adapter_strength(2, "Adapter 2 strength"),
    _adapter_strength(3, "Adapter 3 strength"),
    *(
        Param(name, 0.0, "float", label, help_, checks.FADE_RANGE, " s", 0.5, modes=MUSIC, group="finish", kept=True)
        for name, label, help_ in (("fade_in", "Fade in", tips.FADE_IN), ("fade_out", "Fade out", tips.FADE_OUT))
    ),
    Param(
        "ceiling",
        mastering.CEILING_DBTP,
        "float",
        label="Ceiling",
        help=tips.CEILING,
        span=checks.CEILING_RANGE,
        unit=" dBTP",
        modes=MUSIC,
    ),
    Param(
        "velocity_norm_threshold",
        0.0,
        "float",
        label="Velocity clamp",
        help="Each step's velocity held to at most this many times the latents' own size, so an outlier step "
        "cannot click or crackle (upstream's velocity norm threshold, ACE-Step PR #978 for issue #957). 0: off; "
        "1.5-3 tames artifacts, 2 to start.",
        span=(0.0, 5.0),
        call="velocity_norm_threshold",
        modes=MUSIC,
    ),
    Param(
        "dcw",
        None,
        "bool | None",
        label="DCW (the sampler's correction)",
        shown="Step correction (DCW)",
        help=tips.DCW,
        call="dcw",
        model_default="dcw",  # upstream's main decides it by the model (PR #1273): on for turbo only
        modes=MUSIC,
        held=lambda _, call: not call.morph,  # a morph runs without it (``flow_edit``): its record holds none
    ),
]

PARAMS: dict[str, Param] = {p.name: p for p in [*_PLAIN, *DECLARED]}

# The adapters a request may combine, each slot's (file, strength, preset): the first slot's names are those a
# request with one LoRA always had; each slot takes a LoRA or a LoKr file, or a preset (``preparing.check_adapters``).
ADAPTER_SLOTS = tuple((file, f"{file}_scale", f"{file}_preset") for file in checks.ADAPTER_FILES)
# The record's key for the Hub repo of each slot's preset (``job_record.lora_record`` writes it, ``records`` reads it).
ADAPTER_REPOS = {preset: preset.replace("_preset", "_repo") for _, _, preset in ADAPTER_SLOTS}
# The slots after the first, in every music mode's signature after its own (``names``).
MORE_ADAPTERS = tuple(name for slot in ADAPTER_SLOTS[1:] for name in slot)

# The fields only some ways of a mode use, each with the ways that use it: Edit's by its change (``part_tasks.CHANGES``),
# Cover's by its Morph ("morph", else "cover"), Generate's by Think ("think", else "plain"). Sent (not at its default)
# with a way that does not use it, a field is refused in words naming it and the way (``preparing.check_unused``),
# never passed over; the page sets such a field back to its default where the way hides it (``edit_fields.showing``,
# ``form_fields.morph_controls``, ``generate_page``).
_REGION_ONLY = ("region",)
USED_BY: dict[str, dict[str, tuple[str, ...]]] = {
    "generate": {"rewrite_caption": ("think",)},
    "cover": {
        "morph_prompt": ("morph",),
        "morph_lyrics": ("morph",),
        # A morph moves the song itself from what it is (``flow_edit``): no cover strength, no start from the song.
        "audio_cover_strength": ("cover",),
        "cover_noise_strength": ("cover",),
        # Upstream's flow edit runs without DCW (``flow_edit_pipeline``: forced off, issue #1156), as ``flow_edit``
        # does; the model's own default (the page's checkbox as it is first shown) is no DCW asked (``given``).
        "dcw": ("cover",),
    },
    "edit": {
        # Upstream's page empties the caption and lyrics for Extract and writes the part's name as the caption: a
        # part taken out is told only its name (a caption that names it is that name: ``part_tasks.check_unused``).
        # A part added or a song completed with nothing sung takes no lyrics either (``part_tasks.check_unsung``).
        **{name: ("region", "add", "complete") for name in ("prompt", "lyrics")},
        # Upstream's page sets tempo, key and metre to auto for a part added or taken out; a part is made over the
        # whole song, from its own bar 1.
        **{name: ("region", "complete") for name in ("bpm", "key_scale", "time_signature")},
        **{name: _REGION_ONLY for name in ("repainting_start", "repainting_end", "repaint_mode", "repaint_strength")},
        "first_downbeat": _REGION_ONLY,
        "part": ("add", "extract"),
        "add_parts": ("complete",),
        # A part is made by the XL base's DiT, and a request's adapters go on the SFT one they were made for
        # (``backend.attach_adapters``): every slot's file, preset and strength is a region's alone.
        **{name: _REGION_ONLY for slot in ADAPTER_SLOTS for name in slot},
    },
}


def given(name: str, value: Any, variant: Any = None) -> bool:
    """Whether ``value`` of the parameter ``name`` asks for something other than its default: None and an emptied
    field do not; a number by its value (8, 8.0, "8"), a word by its letters ("Auto", "auto"); a value that is
    neither (a misspelt number) does. Where the model decides the default (``Param.model_default``, the declared
    default None), ``variant``'s own value (``models.Variant``: the page's first value, DCW on for turbo) does not."""
    p = PARAMS[name]
    default = p.default
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return False
    if p.model_default and default is None and variant is not None:
        default = getattr(variant, p.model_default)
    if isinstance(default, bool) or isinstance(value, bool):
        return value != default
    if isinstance(default, int | float):
        try:
            return float(value) != float(default)
        except (TypeError, ValueError):
            return True
    if isinstance(default, str) and isinstance(value, str):
        return value.strip().lower() != default.lower()
    return default is None or value != default


# The settings Cover, Extend and Edit share, first in each one's signature, in this order (``preparing.common``).
SONG = ("src_audio", "prompt", "lyrics", "vocal_language", "bpm", "key_scale", "time_signature")
SAMPLING = ("seed", "inference_steps", "guidance_scale", "audio_format", "lora", "lora_scale")
# Each mode's positional API arguments in order (a named API caller passes them by position, so the order is
# fixed); the declared parameters not listed here and the LoRA preset follow them (``names``).
_API_ORDER = {
    "generate": (
        "prompt",
        "lyrics",
        "audio_duration",
        "bpm",
        "key_scale",
        "time_signature",
        "vocal_language",
        "seed",
        "inference_steps",
        "guidance_scale",
        "shift",
        "batch_size",
        "audio_format",
        "reference_audio",
        "lora",
        "lora_scale",
        "think",
        "auto_length",
        "rewrite_caption",
        "plan",
        "loudness",
        "fade_in",
        "fade_out",
        "dcw",
        "reference_take",
        "cfg_interval_start",
        "cfg_interval_end",
        "loop_bars",
        "lock_to_grid",
    ),
    "cover": (
        *SONG,
        "audio_cover_strength",
        "reference_audio",
        *SAMPLING,
        "loudness",
        "fade_in",
        "fade_out",
        "cover_noise_strength",
        "dcw",
        "morph",
        "morph_prompt",
        "morph_lyrics",
    ),
    "extend": (
        *SONG,
        "extend_seconds",
        *SAMPLING,
        "fade_in",
        "fade_out",
        "dcw",
        "bars",
        "first_downbeat",
        "where",
        "ending",
    ),
    "edit": (
        *SONG,
        "repainting_start",
        "repainting_end",
        *SAMPLING,
        "fade_in",
        "fade_out",
        "dcw",
        "change",
        "part",
        "add_parts",
        "repaint_mode",
        "repaint_strength",
        "lines",
        "section",
        "bars",
        "first_downbeat",
    ),
}


def names(mode: str) -> tuple[str, ...]:
    """``mode``'s parameters in its signature's order (the API's positions): those of ``_API_ORDER``, the
    declared ones it takes after them (``added``), the other adapters' slots, the LoRA preset last (``test_presets``)."""
    return (*_API_ORDER[mode], *added(mode), *MORE_ADAPTERS, "lora_preset")


def added(mode: str) -> tuple[str, ...]:
    """The declared parameters ``mode`` takes that its ``_API_ORDER`` does not list (nor ``MORE_ADAPTERS``), in
    declaration order."""
    listed = {*_API_ORDER[mode], *MORE_ADAPTERS}
    return tuple(p.name for p in DECLARED if mode in p.modes and p.name not in listed)


def declared(mode: str) -> list[Param]:
    """The declared parameters ``mode`` takes, in its signature's order."""
    return [PARAMS[name] for name in names(mode) if PARAMS[name].label]


def signature(mode: str) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    made = [inspect.Parameter(n, kind, default=PARAMS[n].default, annotation=PARAMS[n].kind) for n in names(mode)]
    return inspect.Signature(made, return_annotation="Job")


class Asked:
    """What a request asked of a mode, by attribute (``asked.prompt``), as sent: each preparer checks what it reads.
    A parameter the mode does not take (the Ceiling on a part, say) reads as its default."""

    def __init__(self, mode: str, values: dict[str, Any]) -> None:
        self.mode, self._values = mode, dict(values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in PARAMS:
            raise AttributeError(name)
        return self._values.get(name, PARAMS[name].default)

    def but(self, **changed: Any) -> Asked:
        """The same request with ``changed`` values (a part's caption, Edit's lyrics from the lines chosen)."""
        return Asked(self.mode, {**self._values, **changed})


def preparer(mode: str) -> Callable[[Callable[[Asked], Any]], Callable[..., Any]]:
    """A preparer whose signature is ``mode``'s declaration: the arguments bound to it (defaults filled) and
    handed to the body as one ``Asked``."""
    made = signature(mode)

    def wrap(body: Callable[[Asked], Any]) -> Callable[..., Any]:
        @functools.wraps(body)
        def prepare(*args: Any, **kwargs: Any) -> Any:
            bound = made.bind(*args, **kwargs)
            bound.apply_defaults()
            return body(Asked(mode, bound.arguments))

        prepare.__signature__ = made  # type: ignore[attr-defined]
        return prepare

    return wrap


def to_call(asked: Asked, variant: Any) -> dict[str, Any]:
    """The model call's fields the declared parameters ``asked.mode`` takes set, checked (one that may not be
    below another, ``after``, against it); None asks for ``variant``'s default where the model decides it
    (the model that runs: a part's is the base), as does a field with a model default that the mode does not
    take (Cover's shift). Any other field the mode does not take stays the call's default (Generate's cover
    strength). Raises ``checks.InputError``."""
    values = {
        p.name: p.check(getattr(asked, p.name), variant)
        for p in DECLARED
        if p.call and (asked.mode in p.modes or p.model_default)
    }
    return {PARAMS[name].call: value for name, value in in_order(values).items()}


def in_order(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (checked, by name), each declared parameter that may not be below another (``after``) checked
    against it: in its span from the other's value, its validation error naming it ("Guidance until must be
    between 0.6 and 1")."""
    for p in DECLARED:
        if p.after and p.name in values and p.after in values:
            with checks.about(p.name):
                checks.in_range(values[p.name], p.label, values[p.after], p.span[1], p.unit)
    return values


def seeds(asked: Asked, takes: int) -> list[int]:
    """Each take's seed (the next number for each), from the seed asked, checked (-1: a random first)."""
    return checks.seeds_for(check_seed(asked.seed), takes)


def check_seed(value: Any) -> int:
    """A seed as every one of the studio's is checked (the lyrics', a song's idea's, a variation's and a morph's
    too), its validation error naming it as the page does: a whole number, -1 for random."""
    return PARAMS["seed"].check(value)


def finish(asked: Asked, whole: bool = True) -> mastering.Finish:
    """The finish asked: a ``whole`` new take's loudness target (Edit and Extend keep the source's), and the
    declared parameters of the finish (the fades, the ceiling under which every take's new music is held),
    each checked."""
    with checks.about("loudness"):
        lufs = checks.check_loudness(asked.loudness) if whole else None
    return mastering.Finish(lufs=lufs, **{p.name: p.check(getattr(asked, p.name)) for p in DECLARED if _finishes(p)})


def _finishes(p: Param) -> bool:
    return p.call is None and p.name in {f.name for f in dataclasses.fields(mastering.Finish)}


def recorded(mode: str, call: Call, finish: Any) -> dict[str, Any]:
    """What a ``mode``'s record says of the declared parameters: each its call holds (``held``) not at its usual
    value (a record without it reads as that), and each one records always held (``kept``). The seed is each
    take's, in its entry (and the first's beside the settings: ``job_record``)."""
    said = {
        p.name: getattr(call, p.call) if p.call else getattr(finish, p.name)
        for p in DECLARED
        if (p.call or _finishes(p)) and (p.held is None or p.held(mode, call))
    }
    return {name: value for name, value in said.items() if value != PARAMS[name].default or PARAMS[name].kept}


def ranges() -> dict[str, tuple[Any, ...]]:
    """Each declared parameter's range, as the MCP help gives it: (low, high, unit)."""
    return {p.name: (*p.span, p.unit) for p in DECLARED if p.span}


def mcp_help() -> dict[str, str]:
    """Each declared parameter's MCP help: its ``mcp_help``, else the page's ``help``."""
    return {p.name: p.mcp_help or p.help for p in DECLARED}
