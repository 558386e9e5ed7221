"""A stand-in for AutoPkg's `autopkglib`, enough to run a processor as AutoPkg does.

AutoPkg runs only on macOS. This module mirrors the parts of it a processor
meets: the `Processor` base class (`env`, `input_variables`,
`output_variables`, `output()`, `inject()` with `%NAME%` substitution,
`process()` applying defaults and refusing a missing required input, then
calling `main()`), `ProcessorError`, and the way `AutoPackager` finds a
processor named in a recipe step (a `Name.py` beside the recipe, or
`identifier/Name` beside the recipe of that identifier in the recipe search
dirs) and runs it on the recipe's environment. The test puts this file's
directory on sys.path, so `from autopkglib import Processor` in a processor
finds it.
"""

from __future__ import annotations

import importlib.util
import plistlib
import re
import sys
from pathlib import Path
from typing import Any

VARIABLE = re.compile(r"%(?P<key>[a-zA-Z_][a-zA-Z_0-9]*)%")


class ProcessorError(Exception):
    pass


def substitute(value: Any, env: dict[str, Any]) -> Any:
    """%NAME% in strings (also inside lists and dicts) replaced by env[NAME]."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda match: str(env[match.group("key")]), value)
    if isinstance(value, list):
        return [substitute(item, env) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, env) for key, item in value.items()}
    return value


class Processor:
    description: str | None = None
    input_variables: dict[str, dict[str, Any]] = {}
    output_variables: dict[str, dict[str, Any]] = {}

    def __init__(self, env: dict[str, Any] | None = None) -> None:
        self.env: dict[str, Any] = env if env is not None else {}
        self.printed: list[str] = []

    def output(self, msg: object, verbose_level: int = 1) -> None:
        if self.env.get("verbose", 0) >= verbose_level:
            line = f"{self.__class__.__name__}: {msg}"
            self.printed.append(line)
            print(line)

    def main(self) -> None:
        raise ProcessorError("Abstract method main() not implemented.")

    def inject(self, arguments: dict[str, Any]) -> None:
        for key, value in arguments.items():
            self.env[key] = substitute(value, self.env)

    def process(self) -> dict[str, Any]:
        for variable, flags in self.input_variables.items():
            if "default" in flags and variable not in self.env:
                self.env[variable] = flags["default"]
            if flags.get("required") and variable not in self.env:
                raise ProcessorError(f"{self.__class__.__name__} requires {variable}")
        self.main()
        return self.env

    def execute_shell(self) -> None:
        """Run as a command, as `python Processor.py NAME=value …` does with AutoPkg:
        the environment as a plist on stdin and stdout; exit status 10 on ProcessorError."""
        data = sys.stdin.buffer.read()
        self.env = plistlib.loads(data) if data else {}
        try:
            for argument in sys.argv[1:]:
                key, equals, value = argument.partition("=")
                if not equals:
                    raise ProcessorError(f"Illegal argument '{argument}'")
                self.env[key] = substitute(value, self.env)
            self.main()
        except ProcessorError as error:
            print(f"ProcessorError: {error}", file=sys.stderr)
            sys.exit(10)
        sys.stdout.buffer.write(plistlib.dumps(self.env))
        sys.exit(0)


def recipe_identifier(path: Path) -> str | None:
    with path.open("rb") as file:
        recipe = plistlib.load(file)
    identifier = recipe.get("Identifier") or recipe.get("Input", {}).get("IDENTIFIER")
    return str(identifier) if identifier else None


def find_processor(name: str, recipe_path: Path, search_dirs: list[Path]) -> type[Processor]:
    """The processor class a recipe step names, loaded from its file as AutoPkg loads it."""
    identifier, slash, processor_name = name.partition("/")
    if not slash:
        identifier, processor_name = "", name
    directories = [recipe_path.parent]
    if identifier:
        # AutoPkg also looks beside the recipe; a step that names an identifier must
        # work from anywhere, so here the identifier has to lead to a recipe.
        shared = [
            candidate.parent
            for directory in search_dirs
            for candidate in [*directory.glob("*.recipe"), *directory.glob("*/*.recipe")]
            if recipe_identifier(candidate) == identifier
        ]
        if not shared:
            raise ProcessorError(f"No recipe in the search dirs has the identifier {identifier}.")
        directories = shared
    for directory in directories:
        source = directory / f"{processor_name}.py"
        if source.is_file():
            spec = importlib.util.spec_from_file_location(processor_name, source)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[processor_name] = module
            spec.loader.exec_module(module)
            found: type[Processor] = getattr(module, processor_name)
            return found
    raise ProcessorError(f"Unknown processor '{name}'.")


def run_step(
    step: dict[str, Any], recipe_path: Path, env: dict[str, Any], search_dirs: list[Path]
) -> tuple[dict[str, Any], dict[str, Any], Processor]:
    """One recipe step as AutoPackager runs it: the new env, the step's outputs as AutoPkg
    reports them (the declared output variables that are set and truthy), the processor."""
    processor = find_processor(step["Processor"], recipe_path, search_dirs)(env)
    processor.inject(step.get("Arguments", {}))
    new_env = processor.process()
    outputs = {key: new_env[key] for key in processor.output_variables if new_env.get(key)}
    return new_env, outputs, processor
