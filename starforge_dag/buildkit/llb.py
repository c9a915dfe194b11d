"""A small LLB builder: describe a build as a graph of states and marshal it to a pb.Definition.

The Definition lists every op once, inputs before the ops that use them, as the exact bytes
whose sha256 is the op digest; `metadata` is keyed by those digests; the last op has the
result as its only input; every op carries a platform. BuildKit v0.8 has no MergeOp.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .pb import ops_pb2 as pb

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SKIP_OUTPUT = -1
NO_INPUT = -1
_NO_TIMESTAMP = -1
_NO_MODE = -1
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386"}

Network = Literal["none", "host"] | None
_NETWORKS = {None: pb.UNSET, "sandbox": pb.UNSET, "none": pb.NONE, "host": pb.HOST}
_SHARING = {"shared": pb.SHARED, "private": pb.PRIVATE, "locked": pb.LOCKED}


def parse_platform(text: str | None) -> pb.Platform:
    """`os/arch[/variant]`; None means the platform this process runs on."""
    if text is None:
        machine = _platform.machine().lower()
        return pb.Platform(OS="linux", Architecture=_ARCHES.get(machine, machine))
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {text!r} is not os/arch[/variant]")
    return pb.Platform(OS=parts[0], Architecture=parts[1], Variant=parts[2] if len(parts) == 3 else "")


class Vertex:
    """One LLB op; marshalled once, so its digest is stable for the life of the graph."""

    def __init__(self, inputs: Sequence[Output], platform: pb.Platform, name: str | None, ignore_cache: bool):
        self.inputs = list(inputs)
        self.platform = platform
        self.name = name
        self.ignore_cache = ignore_cache
        self._marshalled: tuple[str, bytes] | None = None

    def _fill(self, op: pb.Op) -> None:
        raise NotImplementedError

    def marshal(self) -> tuple[str, bytes]:
        """The op's exact bytes and their digest (sha256:...)."""
        if self._marshalled is None:
            op = pb.Op(inputs=[pb.Input(digest=o.vertex.marshal()[0], index=o.index) for o in self.inputs])
            op.platform.CopyFrom(self.platform)
            self._fill(op)
            data = op.SerializeToString(deterministic=True)
            self._marshalled = ("sha256:" + hashlib.sha256(data).hexdigest(), data)
        return self._marshalled

    def metadata(self) -> pb.OpMetadata:
        meta = pb.OpMetadata(ignore_cache=self.ignore_cache)
        if self.name:
            meta.description["llb.customname"] = self.name
        return meta


@dataclass(frozen=True)
class Output:
    """An output of a vertex: what a State stands for."""

    vertex: Vertex
    index: int = 0


class SourceVertex(Vertex):
    def __init__(self, identifier: str, attrs: Mapping[str, str], platform: pb.Platform, name: str | None):
        super().__init__([], platform, name, ignore_cache=False)
        self.identifier = identifier
        self.attrs = dict(attrs)

    def _fill(self, op: pb.Op) -> None:
        op.source.identifier = self.identifier
        op.source.attrs.update(self.attrs)


@dataclass(frozen=True)
class Mount:
    """A mount of an ExecOp other than the root filesystem."""

    dest: str | None
    type: pb.MountType
    source: State | None = None
    selector: str = ""
    readonly: bool = False
    cache_id: str = ""
    sharing: pb.CacheSharingOpt = pb.SHARED
    secret_id: str = ""
    secret_env: str | None = None
    optional: bool = False
    mode: int = 0o400


def cache_mount(dest: str, id: str, sharing: Literal["shared", "private", "locked"] = "shared") -> Mount:
    """A persistent cache directory shared between builds by id (npm, pip caches)."""
    return Mount(dest=dest, type=pb.CACHE, cache_id=id, sharing=_SHARING[sharing])


def secret_mount(
    dest: str | None = None, *, id: str, env: str | None = None, optional: bool = False, mode: int = 0o400
) -> Mount:
    """A secret by id as a file at dest and/or an env var; the value comes from the session.

    `env` travels as ExecOp.secretenv, which BuildKit v0.8 (dockerd 20.10) silently ignores: use a file there.
    """
    if dest is None and env is None:
        raise ValueError("a secret mount needs a destination path, an env name, or both")
    return Mount(dest=dest, type=pb.SECRET, secret_id=id, secret_env=env, optional=optional, mode=mode)


def bind_mount(state: State, dest: str, *, selector: str | None = None, readonly: bool = True) -> Mount:
    """Another state's filesystem at dest; writable mounts become outputs (ExecState.get_mount)."""
    return Mount(dest=dest, type=pb.BIND, source=state, selector=selector or "", readonly=readonly)


def tmpfs_mount(dest: str) -> Mount:
    """An empty in-memory directory that does not end up in any output."""
    return Mount(dest=dest, type=pb.TMPFS)


class ExecVertex(Vertex):
    def __init__(
        self,
        root: State,
        args: Sequence[str],
        env: Sequence[str],
        cwd: str,
        user: str,
        mounts: Sequence[Mount],
        network: pb.NetMode,
        platform: pb.Platform,
        name: str | None,
        ignore_cache: bool,
    ):
        inputs: list[Output] = []

        def input_index(state: State) -> int:
            if state.output is None:
                return NO_INPUT
            if state.output not in inputs:
                inputs.append(state.output)
            return inputs.index(state.output)

        self.mount_pbs: list[pb.Mount] = [pb.Mount(input=input_index(root), dest="/", output=0)]
        self.secret_envs: list[pb.SecretEnv] = []
        self.outputs_by_dest: dict[str, int] = {"/": 0}
        next_output = 1
        for m in mounts:
            if m.type == pb.SECRET and m.secret_env:
                self.secret_envs.append(pb.SecretEnv(ID=m.secret_id, name=m.secret_env, optional=m.optional))
            if m.dest is None:
                continue
            mp = pb.Mount(dest=m.dest, mountType=pb.MountType.ValueType(m.type), input=NO_INPUT, output=SKIP_OUTPUT)
            if m.type == pb.BIND:
                assert m.source is not None
                mp.input = input_index(m.source)
                mp.selector = m.selector
                mp.readonly = m.readonly
                if not m.readonly:
                    mp.output = next_output
                    self.outputs_by_dest[m.dest] = next_output
                    next_output += 1
            elif m.type == pb.CACHE:
                mp.cacheOpt.ID = m.cache_id
                mp.cacheOpt.sharing = m.sharing
            elif m.type == pb.SECRET:
                mp.secretOpt.ID = m.secret_id
                mp.secretOpt.mode = m.mode
                mp.secretOpt.optional = m.optional
            self.mount_pbs.append(mp)
        super().__init__(inputs, platform, name, ignore_cache)
        self.meta = pb.Meta(args=list(args), env=list(env), cwd=cwd, user=user)
        self.network = network

    def _fill(self, op: pb.Op) -> None:
        op.exec.meta.CopyFrom(self.meta)
        op.exec.mounts.extend(self.mount_pbs)
        op.exec.network = self.network
        op.exec.secretenv.extend(self.secret_envs)


@dataclass(frozen=True)
class FileAction:
    """One step of a FileOp; `source` is the state a copy reads from."""

    kind: Literal["copy", "mkdir", "mkfile", "rm"]
    message: pb.FileActionCopy | pb.FileActionMkDir | pb.FileActionMkFile | pb.FileActionRm
    source: State | None = None


def _abs(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def copy(
    src: State,
    src_path: str,
    dest: str,
    *,
    create_dest_path: bool = False,
    allow_wildcard: bool = False,
    allow_empty_wildcard: bool = False,
    follow_symlinks: bool = True,
    dir_contents_only: bool = True,
    mode: int | None = None,
) -> FileAction:
    """Copy src_path of another state onto dest; a directory's contents by default, like COPY."""
    message = pb.FileActionCopy(
        src=_abs(src_path),
        dest=_abs(dest),
        followSymlink=follow_symlinks,
        dirCopyContents=dir_contents_only,
        createDestPath=create_dest_path,
        allowWildcard=allow_wildcard,
        allowEmptyWildcard=allow_empty_wildcard,
        mode=_NO_MODE if mode is None else mode,
        timestamp=_NO_TIMESTAMP,
    )
    return FileAction("copy", message, src)


def mkdir(path: str, mode: int = 0o755, *, make_parents: bool = False) -> FileAction:
    """Create a directory."""
    return FileAction(
        "mkdir", pb.FileActionMkDir(path=_abs(path), mode=mode, makeParents=make_parents, timestamp=_NO_TIMESTAMP)
    )


def mkfile(path: str, data: bytes | str, mode: int = 0o644) -> FileAction:
    """Create a file with the given content (never a secret: it is part of the definition)."""
    content = data.encode() if isinstance(data, str) else data
    return FileAction("mkfile", pb.FileActionMkFile(path=_abs(path), data=content, mode=mode, timestamp=_NO_TIMESTAMP))


def rm(path: str, *, allow_not_found: bool = False, allow_wildcard: bool = False) -> FileAction:
    """Remove a path."""
    return FileAction(
        "rm", pb.FileActionRm(path=_abs(path), allowNotFound=allow_not_found, allowWildcard=allow_wildcard)
    )


class FileVertex(Vertex):
    def __init__(self, base: State, actions: Sequence[FileAction], platform: pb.Platform, name: str | None):
        inputs: list[Output] = []

        def input_index(state: State | None) -> int:
            if state is None or state.output is None:
                return NO_INPUT
            if state.output not in inputs:
                inputs.append(state.output)
            return inputs.index(state.output)

        base_index = input_index(base)
        secondaries = [input_index(a.source) if a.kind == "copy" else NO_INPUT for a in actions]
        super().__init__(inputs, platform, name, ignore_cache=False)
        self.actions: list[pb.FileAction] = []
        for i, (action, secondary) in enumerate(zip(actions, secondaries)):
            # Action i works on the previous action's result, addressed as len(inputs) + (i - 1).
            target = base_index if i == 0 else len(inputs) + i - 1
            last = i == len(actions) - 1
            fa = pb.FileAction(input=target, secondaryInput=secondary, output=0 if last else SKIP_OUTPUT)
            getattr(fa, action.kind).CopyFrom(action.message)
            self.actions.append(fa)

    def _fill(self, op: pb.Op) -> None:
        op.file.actions.extend(self.actions)


@dataclass(frozen=True)
class State:
    """A filesystem at some point of the build; None output is scratch (empty)."""

    output: Output | None
    platform: pb.Platform = field(compare=False)
    env: tuple[tuple[str, str], ...] = ()

    def with_env(self, key: str, value: str) -> State:
        """The same filesystem with an env var set for later run() calls."""
        return State(self.output, self.platform, tuple((k, v) for k, v in self.env if k != key) + ((key, value),))

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: str = "/",
        env: Mapping[str, str] | None = None,
        mounts: Iterable[Mount] = (),
        network: Network | Literal["sandbox"] = None,
        user: str = "",
        name: str | None = None,
        ignore_cache: bool = False,
    ) -> ExecState:
        """Run a command on this filesystem; the local dockerd needs network "none" or "host"."""
        if not args:
            raise ValueError("run() needs a command")
        merged = dict(self.env)
        merged.update(env or {})
        vertex = ExecVertex(
            self,
            args,
            [f"{k}={v}" for k, v in merged.items()],
            _abs(cwd),
            user,
            list(mounts),
            _NETWORKS[network],
            self.platform,
            name,
            ignore_cache,
        )
        return ExecState(vertex, self)

    def file(self, *actions: FileAction, name: str | None = None) -> State:
        """Apply file actions (copy, mkdir, mkfile, rm) in order as one FileOp."""
        if not actions:
            raise ValueError("file() needs at least one action")
        return State(Output(FileVertex(self, actions, self.platform, name)), self.platform, self.env)


@dataclass(frozen=True)
class ExecState:
    """The result of State.run: the root filesystem and any writable bind mounts."""

    vertex: ExecVertex
    base: State

    def root(self) -> State:
        return State(Output(self.vertex, 0), self.base.platform, self.base.env)

    def get_mount(self, dest: str) -> State:
        if dest not in self.vertex.outputs_by_dest:
            raise KeyError(f"{dest} is not a writable bind mount of this run")
        return State(Output(self.vertex, self.vertex.outputs_by_dest[dest]), self.base.platform, self.base.env)


def _normalize_image(ref: str) -> str:
    """Docker's reference normalization: docker.io/library for bare names, :latest when untagged."""
    name, _, digest = ref.partition("@")
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + (name if rest else "library/" + name)
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def scratch(platform: str | None = None) -> State:
    """The empty filesystem."""
    return State(None, parse_platform(platform))


def image(ref: str, platform: str | None = None, *, name: str | None = None) -> State:
    """A registry image as the base filesystem; its config is not applied (PATH is set to DEFAULT_PATH)."""
    plat = parse_platform(platform)
    vertex = SourceVertex(f"docker-image://{_normalize_image(ref)}", {}, plat, name)
    return State(Output(vertex), plat, (("PATH", DEFAULT_PATH),))


def local(
    name: str,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    shared_key: str | None = None,
    *,
    session_id: str | None = None,
    platform: str | None = None,
) -> State:
    """Files the client sends through its session under `name` (the build context)."""
    attrs: dict[str, str] = {}
    if include:
        attrs["local.includepattern"] = json.dumps(list(include))
    if exclude:
        attrs["local.excludepatterns"] = json.dumps(list(exclude))
    if shared_key:
        attrs["local.sharedkeyhint"] = shared_key
    if session_id:
        attrs["local.session"] = session_id
    plat = parse_platform(platform)
    return State(Output(SourceVertex(f"local://{name}", attrs, plat, None)), plat, (("PATH", DEFAULT_PATH),))


def definition(state: State) -> pb.Definition:
    """The graph behind a state, inputs first, closed by an op whose only input is the result."""
    if state.output is None:
        raise ValueError("cannot marshal scratch: the result has no op")
    result = pb.Definition()
    ops = getattr(result, "def")  # `def` is a Python keyword
    seen: set[str] = set()

    def visit(vertex: Vertex) -> None:
        digest, data = vertex.marshal()
        if digest in seen:
            return
        for inp in vertex.inputs:
            visit(inp.vertex)
        seen.add(digest)
        ops.append(data)
        result.metadata[digest].CopyFrom(vertex.metadata())

    visit(state.output.vertex)
    final = pb.Op(inputs=[pb.Input(digest=state.output.vertex.marshal()[0], index=state.output.index)])
    final.platform.CopyFrom(state.platform)
    ops.append(final.SerializeToString(deterministic=True))
    return result


def marshal(state: State) -> bytes:
    """The serialized pb.Definition, ready for SolveRequest.Definition or BuildSpec.llb_definition."""
    return definition(state).SerializeToString(deterministic=True)


def without_cache(data: bytes) -> bytes:
    """A serialized Definition whose ops all ignore the cache (`--no-cache`); op digests stay the same."""
    result = pb.Definition.FromString(data)
    ops = list(getattr(result, "def"))
    for op in ops[:-1]:  # the last op only names the result
        result.metadata["sha256:" + hashlib.sha256(op).hexdigest()].ignore_cache = True
    return result.SerializeToString(deterministic=True)
