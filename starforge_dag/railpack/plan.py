"""Build plan models in Railpack's plan schema (the JSON written to `railpack-plan.json`)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_serializer
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    """Camel-case JSON names, and empty fields omitted like Railpack's `omitempty`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    keep_empty: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        return {
            k: v
            for k, v in data.items()
            if k in self.keep_empty or (v is not None and v != [] and v != {} and v is not False)
        }


class Layer(_Model):
    """A filesystem source for a step or the deploy image: a step's output, an image, or local files."""

    image: str | None = None
    step: str | None = None
    local: bool = False
    spread: bool = False
    include: list[str] | None = None
    exclude: list[str] | None = None

    def is_empty(self) -> bool:
        """A layer naming no source contributes nothing and is dropped from plans."""
        return not (self.image or self.step or self.local or self.spread)


def _parse_layer(value: Any) -> Any:
    """Accept Railpack's string shorthands: `.` (local files), `...` (spread) and `$step`."""
    if not isinstance(value, str):
        return value
    if value == ".":
        return {"local": True, "include": ["."]}
    if value == "...":
        return {"spread": True}
    if value.startswith("$"):
        return {"step": value[1:]}
    raise ValueError(f"invalid input {value!r}: use '.', '...', '$step' or an object")


LayerInput = Annotated[Layer, BeforeValidator(_parse_layer)]


class ExecCommand(_Model):
    """Run a shell command in the step's filesystem."""

    cmd: str
    custom_name: str | None = None


class PathCommand(_Model):
    """Prepend a directory to PATH for later commands and, via deploy paths, at runtime."""

    path: str


class CopyCommand(_Model):
    """Copy files from the local context (or an image) into the step."""

    image: str | None = None
    src: str
    dest: str


class FileCommand(_Model):
    """Write one of the step's assets to a file."""

    path: str
    name: str
    mode: int | None = None
    custom_name: str | None = None


def _command_kind(value: Any) -> str:
    """Tell commands apart by their fields, as Railpack's JSON does."""
    data = value if isinstance(value, dict) else value.model_dump(by_alias=True)
    if "cmd" in data:
        return "exec"
    if "src" in data:
        return "copy"
    if "name" in data:
        return "file"
    return "path"


def _parse_command(value: Any) -> Any:
    """Accept Railpack's string command forms: `PATH:dir`, `COPY:src dest`, or a shell command."""
    if not isinstance(value, str):
        return value
    if value.startswith("PATH:"):
        return {"path": value[len("PATH:") :].strip()}
    if value.startswith("COPY:"):
        parts = value[len("COPY:") :].split()
        if len(parts) != 2:
            raise ValueError(f"invalid copy command {value!r}: expected 'COPY:src dest'")
        return {"src": parts[0], "dest": parts[1]}
    return {"cmd": value}


Command = Annotated[
    Annotated[ExecCommand, Tag("exec")]
    | Annotated[PathCommand, Tag("path")]
    | Annotated[CopyCommand, Tag("copy")]
    | Annotated[FileCommand, Tag("file")],
    Discriminator(_command_kind),
    BeforeValidator(_parse_command),
]


class Step(_Model):
    """A group of commands run in order on the filesystem assembled from the step's inputs."""

    keep_empty: ClassVar[frozenset[str]] = frozenset({"secrets"})  # [] means "no secrets", unlike the default ["*"]
    name: str
    inputs: list[LayerInput] = Field(default_factory=list)
    commands: list[Command] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=lambda: ["*"])
    assets: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, str] = Field(default_factory=dict)
    caches: list[str] = Field(default_factory=list)

    def exec_commands(self) -> list[str]:
        """The shell commands of this step, in order."""
        return [c.cmd for c in self.commands if isinstance(c, ExecCommand)]


class Cache(_Model):
    """A BuildKit cache mount shared between builds; never part of the image."""

    directory: str
    type: Literal["shared", "locked"] = "shared"


class Deploy(_Model):
    """How the final image is assembled and how its container starts."""

    base: LayerInput = Field(default_factory=Layer)
    inputs: list[LayerInput] = Field(default_factory=list)
    start_command: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    paths: list[str] = Field(default_factory=list)


class BuildPlan(_Model):
    """The whole plan: steps, caches, secret names, the deploy image, and context excludes (.dockerignore)."""

    steps: list[Step] = Field(default_factory=list)
    caches: dict[str, Cache] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)
    deploy: Deploy = Field(default_factory=Deploy)
    exclude: list[str] = Field(default_factory=list)

    def step(self, name: str) -> Step | None:
        """The step called `name`, if the plan has one."""
        return next((s for s in self.steps if s.name == name), None)

    def to_json(self, indent: int | None = 2) -> str:
        """Railpack-style JSON (camelCase, empty fields omitted)."""
        return self.model_dump_json(by_alias=True, indent=indent)
