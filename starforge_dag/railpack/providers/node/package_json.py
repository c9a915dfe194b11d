"""The package manifest: the fields of package.json (or package.json5) that decide a plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starforge_dag.railpack.context import GenerateContext

MANIFESTS = ("package.json", "package.json5")


@dataclass
class PackageJson:
    """The fields of a package manifest that decide a plan."""

    name: str = ""
    scripts: dict[str, str] = field(default_factory=dict)
    package_manager: str | None = None
    dependencies: dict[str, str] = field(default_factory=dict)
    dev_dependencies: dict[str, str] = field(default_factory=dict)
    engines: dict[str, str] = field(default_factory=dict)
    main: str = ""
    workspaces: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, data: Any) -> PackageJson:
        """Read a parsed manifest, ignoring fields of the wrong type."""
        if not isinstance(data, dict):
            return cls()

        def strmap(key: str) -> dict[str, str]:
            value = data.get(key)
            return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

        workspaces = data.get("workspaces")
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        pm = data.get("packageManager")
        main = data.get("main")
        return cls(
            name=str(data.get("name") or ""),
            scripts=strmap("scripts"),
            package_manager=pm if isinstance(pm, str) else None,
            dependencies=strmap("dependencies"),
            dev_dependencies=strmap("devDependencies"),
            engines=strmap("engines"),
            main=main if isinstance(main, str) else "",
            workspaces=[w for w in workspaces if isinstance(w, str)] if isinstance(workspaces, list) else [],
        )

    def script(self, name: str) -> str:
        """A script's text, empty when absent."""
        return self.scripts.get(name, "")

    def has_script(self, name: str) -> bool:
        """True when the script exists and is not empty."""
        return bool(self.scripts.get(name))

    def has_dependency(self, name: str) -> bool:
        """A production or development dependency."""
        return name in self.dependencies or name in self.dev_dependencies

    def has_local_dependency(self) -> bool:
        """A `file:` dependency, which needs the whole source at install time."""
        return any(v.startswith("file:") for v in {**self.dependencies, **self.dev_dependencies}.values())

    def package_manager_info(self) -> tuple[str, str]:
        """(name, version) of the packageManager field, without a `+sha` suffix."""
        if not self.package_manager:
            return "", ""
        parts = self.package_manager.strip().split("@")
        if len(parts) != 2:
            return "", ""
        return parts[0].strip(), parts[1].split("+")[0].strip()


def find_manifest(ctx: GenerateContext) -> str | None:
    """package.json, else package.json5."""
    return ctx.source.first_file(*MANIFESTS)
