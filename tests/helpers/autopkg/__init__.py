"""contrib/autopkg's processor run as AutoPkg runs it, with the `autopkglib` stand-in
(stand_in/autopkglib.py, put on sys.path here) in place of AutoPkg, which runs only
on macOS."""

from __future__ import annotations

import plistlib
import sys
from pathlib import Path
from typing import Any

STAND_IN = Path(__file__).resolve().parent / "stand_in"
CONTRIB = Path(__file__).resolve().parents[3] / "contrib" / "autopkg"
EXAMPLE_RECIPE = CONTRIB / "Example.ods.recipe"

if str(STAND_IN) not in sys.path:
    sys.path.insert(0, str(STAND_IN))

import autopkglib  # noqa: E402

ProcessorError = autopkglib.ProcessorError


def run_example_recipe(env: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The ODSUploader step of Example.ods.recipe, on its Input and `env` (AutoPkg's
    preferences and what the parent recipe left, such as pkg_path), at verbosity 2.

    Returns the environment after the step, the outputs AutoPkg would report, and the
    lines the processor printed."""
    with EXAMPLE_RECIPE.open("rb") as file:
        recipe = plistlib.load(file)
    (step,) = [step for step in recipe["Process"] if step["Processor"].endswith("/ODSUploader")]
    run_env: dict[str, Any] = {
        "verbose": 2,
        "RECIPE_SEARCH_DIRS": [str(CONTRIB)],
        **recipe["Input"],
        **env,
    }
    new_env, outputs, processor = autopkglib.run_step(step, EXAMPLE_RECIPE, run_env, [CONTRIB])
    return new_env, outputs, processor.printed
