"""Rust apps: Cargo packages, workspaces and named binaries."""

from __future__ import annotations

from typing import Any

from starforge_dag.railpack.plan import Cache
from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, build_layer, sh

DEFAULT_RUST_VERSION = "1.89"


class RustProvider(StepLayoutProvider):
    """Apps with a Cargo.toml."""

    name = "rust"
    looked_for = "Cargo.toml"

    def detect_app(self, ctx: Context) -> bool:
        """A Cargo.toml at the root."""
        return ctx.app.has_file("Cargo.toml")

    def start_command_help(self) -> str:
        """Rust's ways to name the binary."""
        return "add src/main.rs, a [[bin]] target, or set RAILPACK_CARGO_WORKSPACE for a workspace"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """cargo build --release, copy the binary to bin/, run it."""
        cargo = ctx.app.read_toml("Cargo.toml") or {}
        package = cargo.get("package") or {}
        toolchain = (
            (ctx.app.read_toml("rust-toolchain.toml") or {}).get("toolchain", {}).get("channel")
            if ctx.app.has_file("rust-toolchain.toml")
            else None
        )
        version = ctx.resolve(
            "rust",
            DEFAULT_RUST_VERSION,
            ctx.mise_version("rust"),
            (toolchain, "rust-toolchain.toml"),
            (
                package.get("rust-version") if isinstance(package.get("rust-version"), str) else None,
                "Cargo.toml > package.rust-version",
            ),
            ctx.version_file(".rust-version"),
            ctx.version_file("rust-version.txt"),
            ctx.env_version("rust"),
        )
        plan = ProviderPlan(
            packages={"rust": version},
            runtime_packages=False,
            variables={"ROCKET_ADDRESS": "0.0.0.0", "CARGO_HOME": "/root/.cargo"},
            deploy_variables={"ROCKET_ADDRESS": "0.0.0.0"},
            caches={
                "cargo_registry": Cache(directory="/root/.cargo/registry"),
                "cargo_git": Cache(directory="/root/.cargo/git"),
                "cargo_target": Cache(directory="/app/target", type="locked"),
            },
            build_caches=["cargo_registry", "cargo_git", "cargo_target"],
        )
        member, binary = _binary(ctx, cargo)
        if binary is None:
            ctx.warn("no Rust binary target found")
            plan.build = [sh("cargo build --release")]
            return plan
        ctx.metadata["binary"] = binary
        package_flag = f" --package {member}" if member else ""
        plan.build = [
            sh("mkdir -p bin"),
            sh(f"cargo build --release{package_flag} --bin {binary}"),
            sh(f"cp target/release/{binary} bin/{binary}"),
        ]
        plan.start_command = f"./bin/{binary}"
        plan.deploy_inputs = [build_layer(".", exclude=["target"])]
        return plan


def _binary(ctx: Context, cargo: dict[str, Any]) -> tuple[str | None, str | None]:
    """(workspace member or None, binary name) for the app to run."""
    workspace = cargo.get("workspace") or {}
    if workspace and not cargo.get("package"):
        members: list[str] = []
        for pattern in workspace.get("members") or []:
            members += [m.rsplit("/", 1)[0] for m in ctx.app.glob(f"{pattern}/Cargo.toml")]
        wanted = ctx.env.railpack("CARGO_WORKSPACE")
        for member in members:
            manifest = ctx.app.read_toml(f"{member}/Cargo.toml") or {}
            name = (manifest.get("package") or {}).get("name")
            if wanted and name != wanted and member != wanted:
                continue
            binary = _package_binary(ctx, manifest, member)
            if binary:
                return name, binary
        return None, None
    return None, _package_binary(ctx, cargo, "")


def _package_binary(ctx: Context, manifest: dict[str, Any], base: str) -> str | None:
    prefix = f"{base}/" if base else ""
    if wanted := ctx.env.railpack("RUST_BIN"):
        return wanted
    bins = manifest.get("bin") or []
    if bins and isinstance(bins[0], dict) and bins[0].get("name"):
        return str(bins[0]["name"])
    if ctx.app.has_file(f"{prefix}src/main.rs"):
        return (manifest.get("package") or {}).get("name")
    extra = ctx.app.glob(f"{prefix}src/bin/*.rs")
    if extra:
        return extra[0].rsplit("/", 1)[1][: -len(".rs")]
    return None
