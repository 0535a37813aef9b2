"""A command line of a flow's parameters: one ``--<section>.<field>`` option per field of a
pydantic parameter model, with its description, type and default in ``--help``.

Scalars are given as they are (``--training.max_steps 2000``); lists, dicts and optional
sections as JSON (``--training.eval_sets '[{"name": "heldout", "split": "eval"}]'``);
``--params FILE`` reads the whole set from a JSON file (the same object ``prefect deployment
run --params`` takes); options given beside it override its values. Unknown options are
refused (argparse's usage error, exit status 2), and the parameters are validated before any
flow run starts, so a refused value never reaches Prefect or MLflow.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError


def _sections(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted name, pydantic FieldInfo) of every leaf field; nested models are walked. A
    field that is one of several models (``training.model``: model code or a premade
    estimator) is an option of its own (JSON) and its default's model is walked too."""
    leaves = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        nested = _nested_model(info)
        if nested is None or nested is not info.annotation:
            leaves.append((f"{prefix}{key}", info))
        if nested is not None:
            leaves += _sections(nested, f"{prefix}{key}.")
    return leaves


def _nested_model(info: Any) -> type[BaseModel] | None:
    """The model whose fields are options under this field: its own model class, or, for a
    union of models, the model of its default."""
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        default = info.default_factory() if info.default_factory is not None else info.default
        if isinstance(default, BaseModel):
            return type(default)
    return None


def _is_plain_string(annotation: Any) -> bool:
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation)) <= {str, type(None)}
    return False


def _is_structured(annotation: Any) -> bool:
    """A list, dict or model (possibly optional, or one of several): given as JSON."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_structured(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_structured(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return typing.get_origin(annotation) in (list, dict) or annotation in (list, dict)


def _shown_default(info: Any) -> str:
    if info.default_factory is not None:
        return json.dumps(info.default_factory(), default=lambda o: o.model_dump())
    return json.dumps(info.default)


def parser(model: type[BaseModel], prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of ``model``'s fields (see the module doc)."""
    cli = argparse.ArgumentParser(
        prog=prog,
        usage=f"{prog} [--params FILE] [--<section>.<field> VALUE ...]",
        description=description,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_argument(
        "--params", metavar="FILE", help="a JSON file of the parameters (options override it)"
    )
    for name, info in _sections(model):
        about = info.description or ""
        cli.add_argument(
            f"--{name}",
            dest=name,
            metavar="JSON" if _is_structured(info.annotation) else "VALUE",
            default=argparse.SUPPRESS,
            help=f"{about}{'; ' if about else ''}default {_shown_default(info)}",
        )
    return cli


def _field(model: type[BaseModel], dotted: str) -> Any:
    info = None
    for part in dotted.split("."):
        info = next(i for n, i in model.model_fields.items() if (i.alias or n) == part)
        model = _nested_model(info) or model
    return info


def parse(
    model: type[BaseModel], argv: Sequence[str] | None, prog: str, description: str
) -> BaseModel:
    """``model`` from the command line ``argv`` (default ``sys.argv[1:]``); exits with a usage
    error (status 2) naming the option or field at fault."""
    cli = parser(model, prog, description)
    given = vars(cli.parse_args(argv))
    values: dict[str, Any] = {}
    file = given.pop("params", None)
    if file:
        try:
            with open(file, encoding="utf-8") as f:
                values = json.load(f)
        except (OSError, ValueError) as err:
            cli.error(f"--params {file}: {err}")
    for dotted, text in given.items():
        if _is_plain_string(_field(model, dotted).annotation):
            value: Any = text
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = text  # pydantic reads "2000", "true" and dates itself
        *parents, leaf = dotted.split(".")
        section = values
        for part in parents:
            section = section.setdefault(part, {})
        section[leaf] = value
    try:
        return model.model_validate(values)
    except ValidationError as err:
        cli.error(f"invalid parameters:\n{err}")
    raise AssertionError("unreachable")  # cli.error exits
