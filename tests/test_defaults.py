"""Every page field starts at its endpoint's default, on every tab and every row with its own endpoint.

Gradio serves a field's initial value as the API's ``parameter_default`` (a client that leaves the field
out sends that), while the endpoint's own function has its own defaults (the ``modes`` preparers',
``lyrics.make_request``'s …: what a call in this process, and the API's documentation, go by). A page
that showed 0.6 where the preparer says 0.5 would make one song in the browser and another through the
API. This test serves the page and holds the two to each other, field by field.
"""

from __future__ import annotations

import inspect
from typing import Any

from gradio_client import Client

# The music endpoints' fields left to the model that runs: served as None, the preparers' own (as
# ``handlers.MODEL_DEFAULTS`` makes them), each with the loaded variant's figure the page shows for it.
MODEL_DEFAULTS = {"inference_steps": "steps", "guidance_scale": "guidance", "shift": "shift", "dcw": "dcw"}
# Every public endpoint a page field feeds: the music tabs (Cover's morph among its fields), Lyrics,
# and the rows with their own (each tab's variations, Describe and stems share one public endpoint).
ENDPOINTS = (
    *("generate", "cover", "extend", "edit", "lyrics", "use_in_generate"),
    *("variations", "write_song", "describe", "stems"),
)


def _own_default(fn: Any, name: str, variant: Any) -> tuple[bool, Any]:
    """The endpoint function's default for ``name`` (False when it has none), "the model's own" read
    from the loaded variant, and Think's None ("when a planner is set up") as the studio resolves it."""
    import planner

    parameter = inspect.signature(fn).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return False, None
    if parameter.default is None and name in MODEL_DEFAULTS:
        return True, getattr(variant, MODEL_DEFAULTS[name])
    if parameter.default is None and name == "think":
        return True, planner.enabled()
    return True, parameter.default


def _plain(value: Any) -> Any:
    """A tuple default (no mutable list in a signature) as the list the page and the API carry."""
    return list(value) if isinstance(value, tuple) else value


def differences(demo: Any, served: dict[str, Any], variant: Any) -> list[str]:
    """Each field whose page value, served default and endpoint default are not one, in words: a
    field the model decides is served as None and shows the model's figure; any other is served as
    the page shows it, and that is its endpoint's own default (an empty field for a default of None)."""
    import handlers

    # The music endpoints (``handlers.preparer``): a tab's mode, variations of a take, a take's morph.
    music = (*handlers.modes.PREPARE, "variations", "morph")
    components = {c["id"]: c for c in demo.get_config_file()["components"]}
    found, seen = [], set()
    for fn in demo.fns.values():
        endpoint = served["named_endpoints"].get(f"/{fn.api_name}")
        if endpoint is None or fn.fn is None or fn.api_name not in ENDPOINTS:
            continue
        seen.add(fn.api_name)
        for block, parameter in zip(fn.inputs, endpoint["parameters"], strict=True):
            name = parameter["parameter_name"]
            shown, default = components[block._id]["props"].get("value"), parameter["parameter_default"]
            has, own = _own_default(fn.fn, name, variant)
            said = f"/{fn.api_name} {name}: the page shows {shown!r}"
            if name in MODEL_DEFAULTS and fn.api_name in music:
                if default is not None or shown != own:
                    found.append(f"{said}, the API serves {default!r} (None: the model decides), its own {own!r}")
                continue
            if default != shown:
                found.append(f"{said}, the API serves {default!r}")
            if has and shown != _plain(own) and not (own is None and shown in ("", [])):
                found.append(f"{said}, the endpoint's default is {own!r}")
    missing = set(ENDPOINTS) - seen
    return found + [f"/{name}: no such endpoint on the page" for name in sorted(missing)]


def test_every_page_field_starts_at_its_endpoints_default(studio_env):
    import models
    from conftest import page_here

    with page_here() as (url, demo):
        served = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
        found = differences(demo, served, models.active_variant())
    assert found == [], "page and API disagree:\n" + "\n".join(found)
