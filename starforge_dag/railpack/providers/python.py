"""Python apps: pip, uv, poetry, pdm and pipenv; Django, Flask, FastAPI and FastHTML start commands."""

from __future__ import annotations

import re
from typing import Any

from starforge_dag.railpack.plan import Cache, Command
from starforge_dag.railpack.providers.base import Context, ProviderPlan, build_layer, copy, loose_version, path, sh

DEFAULT_PYTHON_VERSION = "3.13.2"
MAIN_FILES = ("main.py", "app.py", "start.py", "bot.py", "hello.py", "server.py")
VENV = "/app/.venv"

RUNTIME_VARIABLES = {
    "PYTHONFAULTHANDLER": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONHASHSEED": "random",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_DEFAULT_TIMEOUT": "100",
}

# Python packages that need system libraries: (build-time apt, runtime apt).
SYSTEM_DEPS: dict[str, tuple[list[str], list[str]]] = {
    "psycopg2": (["libpq-dev"], ["libpq5"]),
    "mysqlclient": (["default-libmysqlclient-dev"], ["default-mysql-client"]),
    "pycairo": (["libcairo2-dev"], ["libcairo2"]),
    "pdf2image": ([], ["poppler-utils"]),
    "pydub": ([], ["ffmpeg"]),
    "pymovie": ([], ["ffmpeg", "qt5-qmake", "qtbase5-dev"]),
}


class PythonProvider:
    """Apps with requirements.txt, pyproject.toml, a Pipfile or a well-known main file."""

    name = "python"

    def detect(self, ctx: Context) -> bool:
        """Any Python manifest or main file at the root."""
        return ctx.app.has_any(*MAIN_FILES, "requirements.txt", "pyproject.toml", "Pipfile")

    def start_command_help(self) -> str:
        """Python's ways to name a start command."""
        return "add a main.py (or app.py), a Django manage.py, or a Procfile"

    def plan(self, ctx: Context) -> ProviderPlan:
        """Create a venv, install with the detected manager, start with the framework's server."""
        version = ctx.resolve(
            "python",
            DEFAULT_PYTHON_VERSION,
            ctx.env_version("python"),
            ctx.version_file(".python-version"),
            ctx.mise_version("python"),
            (_runtime_txt(ctx), "runtime.txt"),
            (_pipfile_version(ctx), "Pipfile"),
            (loose_version(_pyproject(ctx).get("project", {}).get("requires-python")), "pyproject.toml"),
        )
        plan = ProviderPlan(
            packages={"python": version},
            variables={**RUNTIME_VARIABLES, "VIRTUAL_ENV": VENV, "PIP_CACHE_DIR": "/opt/pip-cache"},
            paths=[f"{VENV}/bin"],
            caches={"pip": Cache(directory="/opt/pip-cache")},
            install_caches=["pip"],
        )
        manager = _manager(ctx)
        ctx.metadata["packageManager"] = manager
        plan.install = [path(f"{VENV}/bin")]
        plan.install += _install(ctx, manager, plan)

        deps = _dependency_names(ctx)
        for dep, (build_apt, deploy_apt) in SYSTEM_DEPS.items():
            if dep in deps:
                plan.build_apt += build_apt
                plan.deploy_apt += deploy_apt

        plan.start_command = _start_command(ctx, deps)
        plan.deploy_variables = dict(RUNTIME_VARIABLES)
        plan.deploy_inputs = [build_layer(VENV), build_layer(".", exclude=[".venv"])]
        return plan


def _pyproject(ctx: Context) -> dict[str, Any]:
    return ctx.app.read_toml("pyproject.toml") or {}


def _runtime_txt(ctx: Context) -> str | None:
    text = ctx.app.read_text("runtime.txt")
    return loose_version(text) if text else None


def _pipfile_version(ctx: Context) -> str | None:
    pipfile = ctx.app.read_toml("Pipfile") if ctx.app.has_file("Pipfile") else None
    requires = (pipfile or {}).get("requires") or {}
    return requires.get("python_full_version") or requires.get("python_version")


def _manager(ctx: Context) -> str:
    """requirements.txt first, then the lockfile's tool, then pyproject, then Pipfile."""
    app = ctx.app
    if app.has_file("requirements.txt"):
        return "pip"
    if app.has_file("pyproject.toml"):
        tool = _pyproject(ctx).get("tool", {})
        if app.has_file("poetry.lock") or ("poetry" in tool and not app.has_file("uv.lock")):
            return "poetry"
        if app.has_file("pdm.lock"):
            return "pdm"
        if app.has_file("uv.lock") or "uv" in tool:
            return "uv"
    if app.has_file("Pipfile"):
        return "pipenv"
    if app.has_file("pyproject.toml"):
        return "pip-pyproject"
    return "none"


def _install(ctx: Context, manager: str, plan: ProviderPlan) -> list[Command]:
    app = ctx.app
    venv = sh(f"python -m venv {VENV}")
    if manager == "pip":
        return [venv, *copy("requirements.txt"), sh("pip install -r requirements.txt")]
    if manager == "pip-pyproject":
        plan.install_needs_source = True
        return [venv, sh("pip install --upgrade pip && pip install .")]
    if manager == "uv":
        plan.packages["uv"] = ctx.resolve("uv", "latest", ctx.env_version("uv"), ctx.mise_version("uv"))
        plan.caches["uv"] = Cache(directory="/opt/uv-cache")
        plan.install_caches = ["uv"]
        plan.build_caches = ["uv"]
        plan.variables.update(
            {
                "UV_COMPILE_BYTECODE": "1",
                "UV_LINK_MODE": "copy",
                "UV_CACHE_DIR": "/opt/uv-cache",
                "UV_PYTHON_DOWNLOADS": "never",
            }
        )
        files = [f for f in ("pyproject.toml", "uv.lock", ".python-version") if app.has_file(f)]
        plan.build.append(sh("uv sync --locked --no-dev --no-editable"))
        return [*copy(*files), sh("uv sync --locked --no-dev --no-install-project")]
    if manager == "poetry":
        plan.packages["pipx:poetry"] = ctx.resolve("poetry", "latest", ctx.env_version("poetry"))
        plan.variables["POETRY_VIRTUALENVS_IN_PROJECT"] = "true"
        files = [f for f in ("pyproject.toml", "poetry.lock") if app.has_file(f)]
        return [venv, *copy(*files), sh("poetry install --no-interaction --no-ansi --only main --no-root")]
    if manager == "pdm":
        plan.packages["pipx:pdm"] = ctx.resolve("pdm", "latest", ctx.env_version("pdm"))
        plan.variables["PDM_CHECK_UPDATE"] = "false"
        files = [f for f in ("pyproject.toml", "pdm.lock") if app.has_file(f)]
        return [venv, *copy(*files), sh("pdm install --check --prod --no-editable")]
    if manager == "pipenv":
        plan.packages["pipx:pipenv"] = ctx.resolve("pipenv", "latest", ctx.env_version("pipenv"))
        plan.variables["PIPENV_VENV_IN_PROJECT"] = "1"
        if app.has_file("Pipfile.lock"):
            return [venv, *copy("Pipfile", "Pipfile.lock"), sh("pipenv install --deploy --ignore-pipfile")]
        return [venv, *copy("Pipfile"), sh("pipenv install --skip-lock")]
    return [venv]


def _dependency_names(ctx: Context) -> set[str]:
    """Normalised names of all declared dependencies (requirements.txt, pyproject, Pipfile)."""
    specs: list[str] = []
    text = ctx.app.read_text("requirements.txt")
    if text:
        specs += text.splitlines()
    pyproject = _pyproject(ctx)
    specs += [str(d) for d in pyproject.get("project", {}).get("dependencies", [])]
    specs += list((pyproject.get("tool", {}).get("poetry", {}).get("dependencies") or {}).keys())
    if ctx.app.has_file("Pipfile"):
        specs += list(((ctx.app.read_toml("Pipfile") or {}).get("packages") or {}).keys())
    names = set()
    for spec in specs:
        match = _DEP_NAME.match(spec.strip().lower())
        if match:
            names.add(match.group(0).replace("_", "-").replace(".", "-"))
    return names


_DEP_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def _main_module(ctx: Context) -> str:
    main = ctx.app.first_file(*MAIN_FILES)
    return main[: -len(".py")] if main else "main"


def _start_command(ctx: Context, deps: set[str]) -> str | None:
    """Framework server first, then the first well-known main file."""
    if ctx.app.has_file("manage.py") and "django" in deps:
        ctx.metadata["framework"] = "django"
        app_name = ctx.env.railpack("DJANGO_APP_NAME") or _django_wsgi(ctx)
        if app_name:
            return f"python manage.py migrate && gunicorn {app_name}:application"
        ctx.warn("Django app found but no WSGI_APPLICATION setting; set RAILPACK_DJANGO_APP_NAME")
    module = _main_module(ctx)
    if "python-fasthtml" in deps and "uvicorn" in deps:
        ctx.metadata["framework"] = "fasthtml"
        return f"uvicorn {module}:app --host 0.0.0.0 --port ${{PORT:-8000}}"
    if "fastapi" in deps and "uvicorn" in deps:
        ctx.metadata["framework"] = "fastapi"
        return f"uvicorn {module}:app --host 0.0.0.0 --port ${{PORT:-8000}}"
    if "flask" in deps and "gunicorn" in deps:
        ctx.metadata["framework"] = "flask"
        return f"gunicorn --bind 0.0.0.0:${{PORT:-8000}} {module}:app"
    main = ctx.app.first_file(*MAIN_FILES)
    return f"python {main}" if main else None


def _django_wsgi(ctx: Context) -> str | None:
    """The module of WSGI_APPLICATION, found in settings files a level or two below the root."""
    for candidate in ctx.app.glob("*/settings.py") + ctx.app.glob("*/settings/*.py"):
        match = re.search(r"WSGI_APPLICATION\s*=\s*['\"]([\w.]+)\.application['\"]", ctx.app.read_text(candidate) or "")
        if match:
            return match.group(1)
    return None
