"""Python apps: pip, uv, poetry, pdm and pipenv; Django, Flask, FastAPI and FastHTML start commands."""

from __future__ import annotations

import re

from starforge_dag.railpack.context import (
    PLAYWRIGHT_DEPS,
    CommandStepBuilder,
    GenerateContext,
    MiseStepBuilder,
    copy,
    local_layer,
    run,
    step_layer,
)
from starforge_dag.railpack.plan import Layer, PathCommand
from starforge_dag.railpack.providers.base import BaseProvider

DEFAULT_PYTHON_VERSION = "3.13"
UV_CACHE_DIR = "/opt/uv-cache"
PIP_CACHE_DIR = "/opt/pip-cache"
VENV = "/app/.venv"
LOCAL_BIN = "/root/.local/bin"
PLAYWRIGHT_CACHE_DIR = "/root/.cache/ms-playwright"
PY_FILES = "**/*.py"  # searched at the root and one level down (settings modules live there)
MAIN_FILES = ("main.py", "app.py", "start.py", "bot.py", "hello.py", "server.py")
INSTALL_FILES = ("requirements.txt", "pyproject.toml", "Pipfile", "poetry.lock", "uv.lock", "pdm.lock")
RUNTIME_VARIABLES = {
    "PYTHONFAULTHANDLER": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONHASHSEED": "random",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_DEFAULT_TIMEOUT": "100",
}
BUILD_APT = {"pycairo": ["libcairo2-dev"]}
RUNTIME_APT = {
    "pycairo": ["libcairo2"],
    "pdf2image": ["poppler-utils"],
    "pydub": ["ffmpeg"],
    "pymovie": [
        "ffmpeg",
        "qt5-qmake",
        "qtbase5-dev",
        "qtbase5-dev-tools",
        "qttools5-dev-tools",
        "libqt5core5a",
        "python3-pyqt5",
    ],
}
_PIPFILE_FULL = re.compile(r"""python_full_version\s*=\s*['"]([0-9.]*)"?""")
_PIPFILE_SHORT = re.compile(r"""python_version\s*=\s*['"]([0-9.]*)"?""")
_SEMVER = re.compile(r"(\d+(?:\.\d+)?(?:\.\d+)?)")
_WSGI = re.compile(r"""WSGI_APPLICATION = ["'](.*).application["']""")


class PythonProvider(BaseProvider):
    """Apps with requirements.txt, pyproject.toml, a Pipfile or a well-known main file."""

    name = "python"
    looked_for = "requirements.txt, pyproject.toml, Pipfile or main.py/app.py"

    def detect(self, ctx: GenerateContext) -> bool:
        """Any Python manifest or main file at the root."""
        return ctx.source.first_file(*MAIN_FILES, "requirements.txt", "pyproject.toml", "Pipfile") is not None

    def start_command_help(self) -> str:
        """Python's start commands."""
        return (
            "Railpack starts FastHTML and FastAPI apps with uvicorn, Flask apps with gunicorn and Django apps "
            "with gunicorn after migrating; otherwise it runs main.py (or app.py, start.py, bot.py, hello.py, "
            "server.py)."
        )

    def plan(self, ctx: GenerateContext) -> None:
        """mise packages, an install step for the detected tool, build, then the venv and source deployed."""
        source = ctx.source
        mise = ctx.mise
        self._mise_packages(ctx, mise)

        install = ctx.new_command_step("install")
        install.add_input(Layer(step=self._builder_deps(ctx, mise).name))
        install.secrets = []
        install.use_secrets_with_prefixes("PYTHON", "PIP", "PIPX", "UV", "PDM", "POETRY")
        build = ctx.new_command_step("build")

        outputs: list[str] = []
        if source.exists("requirements.txt"):
            outputs = self._pip(ctx, install)
        elif source.exists("pyproject.toml") and source.exists("uv.lock"):
            outputs = self._uv(ctx, install)
            build.add(run("uv sync --locked --no-dev --no-editable"))
        elif source.exists("pyproject.toml") and source.exists("poetry.lock"):
            outputs = self._poetry(ctx, install)
        elif source.exists("pyproject.toml") and source.exists("pdm.lock"):
            outputs = self._pdm(ctx, install)
        elif source.exists("Pipfile"):
            outputs = self._pipenv(ctx, install)

        if ctx.env.is_truthy("PYTHON_PLAYWRIGHT_INSTALL"):
            install.add(run("playwright install --only-shell"))
            outputs.append(PLAYWRIGHT_CACHE_DIR)

        manager = next(
            (m for m, f in (("poetry", "poetry.lock"), ("pdm", "pdm.lock"), ("uv", "uv.lock")) if source.exists(f)),
            "pip",
        )
        ctx.set_metadata("pythonPackageManager", manager)
        ctx.set_metadata("pythonRuntime", self._runtime(ctx))

        build.add_input(Layer(step=install.name))
        build.add_input(local_layer())
        ctx.deploy.start_command = self._start_command(ctx)
        ctx.deploy.variables.update(RUNTIME_VARIABLES)
        self._runtime_deps(ctx)
        ctx.deploy.inputs += [
            mise.layer(),
            step_layer(build.name, include=outputs),
            step_layer(build.name, include=["."], exclude=[".venv"]),
        ]

    # ---- versions and system packages --------------------------------------------------------------------------

    def _mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        source = ctx.source
        python = mise.default("python", DEFAULT_PYTHON_VERSION)
        pipfile = source.read_text("Pipfile") if source.has_file("Pipfile") else None
        if pipfile:
            for regex, key in ((_PIPFILE_FULL, "python_full_version"), (_PIPFILE_SHORT, "python_version")):
                if match := regex.search(pipfile):
                    if match.group(1):
                        mise.version(python, match.group(1), f"Pipfile > {key}")
                    break
        runtime = source.read_text("runtime.txt") if source.has_file("runtime.txt") else None
        if runtime is not None:
            match = _SEMVER.search(runtime.strip())
            mise.version(python, match.group(1) if match else "", "runtime.txt")
        tools = ["python"]
        has_pdm, has_pipfile = source.exists("pdm.lock"), source.exists("Pipfile")
        if has_pdm or has_pipfile:
            mise.default("pipx", "latest")
            mise.add_setting("pipx.uvx", True)
            mise.default("uv", "latest")
            tools += ["pipx", "uv"]
        if source.exists("poetry.lock"):
            mise.default("poetry", "latest")
            tools.append("poetry")
        if has_pdm:
            mise.default("pipx:pdm", "latest")
            tools.append("pipx:pdm")
        if source.exists("uv.lock"):
            mise.default("uv", "latest")
            tools.append("uv")
        if has_pipfile:
            mise.default("pipx:pipenv", "latest")
            tools.append("pipx:pipenv")
        mise.use_mise_versions(tools)
        if version := ctx.env.railpack("PYTHON_VERSION"):
            mise.version(python, version, "RAILPACK_PYTHON_VERSION")
        mise.add_setting("python.compile", False)

    def _builder_deps(self, ctx: GenerateContext, mise: MiseStepBuilder) -> MiseStepBuilder:
        for dep, packages in BUILD_APT.items():
            if self._uses(ctx, dep):
                mise.apt_packages += packages
        if self._uses_postgres(ctx):
            mise.apt_packages.append("libpq-dev")
        if self._uses_mysql(ctx):
            mise.apt_packages.append("default-libmysqlclient-dev")
        return mise

    def _runtime_deps(self, ctx: GenerateContext) -> None:
        for dep, packages in RUNTIME_APT.items():
            if self._uses(ctx, dep):
                ctx.deploy.apt_packages += packages
        if ctx.env.is_truthy("PYTHON_PLAYWRIGHT_INSTALL"):
            ctx.deploy.apt_packages += PLAYWRIGHT_DEPS
        if self._uses_postgres(ctx):
            ctx.deploy.apt_packages.append("libpq5")
        if self._uses_mysql(ctx):
            ctx.deploy.apt_packages.append("default-mysql-client")

    # ---- installers ----------------------------------------------------------------------------------------------

    def _copy_install_files(self, ctx: GenerateContext, install: CommandStepBuilder) -> None:
        if self._needs_all_files(ctx):
            install.add_input(local_layer())
            return
        install.add(*(copy(f) for f in INSTALL_FILES if ctx.source.has_file(f)))

    def _needs_all_files(self, ctx: GenerateContext) -> bool:
        source = ctx.source
        if source.has_file("requirements.txt"):
            return "file://" in (source.read_text("requirements.txt") or "")
        text = source.read_text("pyproject.toml") if source.has_file("pyproject.toml") else None
        if text is None:
            return False
        if "file://" in text or "path = " in text:
            return True
        uv = ((source.read_toml("pyproject.toml") or {}).get("tool") or {}).get("uv")
        return isinstance(uv, dict) and "workspace" in uv

    def _pip(self, ctx: GenerateContext, install: CommandStepBuilder) -> list[str]:
        install.add_cache(ctx.caches.add("pip", PIP_CACHE_DIR))
        install.variables.update({**RUNTIME_VARIABLES, "PIP_CACHE_DIR": PIP_CACHE_DIR, "VIRTUAL_ENV": VENV})
        install.add(run(f"python -m venv {VENV}"), PathCommand(path=f"{VENV}/bin"))
        self._copy_install_files(ctx, install)
        install.add(run("pip install -r requirements.txt"))
        return [VENV]

    def _uv(self, ctx: GenerateContext, install: CommandStepBuilder) -> list[str]:
        install.add_cache(ctx.caches.add("uv", UV_CACHE_DIR))
        install.variables.update(
            {
                "UV_COMPILE_BYTECODE": "1",
                "UV_LINK_MODE": "copy",
                "UV_CACHE_DIR": UV_CACHE_DIR,
                "UV_PYTHON_DOWNLOADS": "never",
                "VIRTUAL_ENV": VENV,
                **RUNTIME_VARIABLES,
            }
        )
        self._copy_install_files(ctx, install)
        install.add_paths(LOCAL_BIN, f"{VENV}/bin")
        install.add(run("uv sync --locked --no-dev --no-install-project"))
        return [VENV]

    def _poetry(self, ctx: GenerateContext, install: CommandStepBuilder) -> list[str]:
        install.variables.update(
            {
                **RUNTIME_VARIABLES,
                "VIRTUAL_ENV": VENV,
                "POETRY_VIRTUALENVS_PATH": VENV,
                "POETRY_VIRTUALENVS_IN_PROJECT": "true",
            }
        )
        self._copy_install_files(ctx, install)
        install.add_paths(LOCAL_BIN, f"{VENV}/bin")
        install.add(run("poetry install --no-interaction --no-ansi --only main --no-root"))
        return [VENV]

    def _pdm(self, ctx: GenerateContext, install: CommandStepBuilder) -> list[str]:
        install.variables.update({**RUNTIME_VARIABLES, "PDM_CHECK_UPDATE": "false"})
        self._copy_install_files(ctx, install)
        install.add_paths(LOCAL_BIN, f"{VENV}/bin")
        install.add(run("pdm install --check --prod --no-editable"))
        return [VENV]

    def _pipenv(self, ctx: GenerateContext, install: CommandStepBuilder) -> list[str]:
        install.variables.update(
            {
                **RUNTIME_VARIABLES,
                "PIPENV_CHECK_UPDATE": "false",
                "PIPENV_VENV_IN_PROJECT": "1",
                "PIPENV_IGNORE_VIRTUALENVS": "1",
            }
        )
        install.add_paths(LOCAL_BIN, f"{VENV}/bin")
        if ctx.source.exists("Pipfile.lock"):
            install.add(copy("Pipfile"), copy("Pipfile.lock"), run("pipenv install --deploy --ignore-pipfile"))
        else:
            install.add(copy("Pipfile"), run("pipenv install --skip-lock"))
        return [VENV]

    # ---- frameworks ------------------------------------------------------------------------------------------

    def _uses(self, ctx: GenerateContext, dep: str) -> bool:
        """Railpack's test: the name appears anywhere in a requirements.txt, pyproject.toml or Pipfile."""
        needle = dep.lower()
        for rel in ctx.source.find_files("**/{requirements.txt,pyproject.toml,Pipfile}", max_depth=1):
            if needle in (ctx.source.read_text(rel) or "").lower():
                return True
        return False

    def _python_files_containing(self, ctx: GenerateContext, text: str) -> bool:
        return any(text in (ctx.source.read_text(rel) or "") for rel in ctx.source.find_files(PY_FILES, max_depth=1))

    def _uses_postgres(self, ctx: GenerateContext) -> bool:
        if self._uses(ctx, "psycopg2-binary") or self._uses(ctx, "psycopg[binary]"):
            return False
        return (
            self._uses(ctx, "psycopg2")
            or self._uses(ctx, "psycopg")
            or self._python_files_containing(ctx, "django.db.backends.postgresql")
        )

    def _uses_mysql(self, ctx: GenerateContext) -> bool:
        return self._uses(ctx, "mysqlclient") or self._python_files_containing(ctx, "django.db.backends.mysql")

    def _is_django(self, ctx: GenerateContext) -> bool:
        return ctx.source.has_file("manage.py") and self._uses(ctx, "django")

    def _runtime(self, ctx: GenerateContext) -> str:
        if self._is_django(ctx):
            return "django"
        for name, dep in (("flask", "flask"), ("fastapi", "fastapi"), ("fasthtml", "python-fasthtml")):
            if self._uses(ctx, dep):
                return name
        return "python"

    def _start_command(self, ctx: GenerateContext) -> str:
        command = ""
        if self._is_django(ctx):
            app = ctx.env.railpack("DJANGO_APP_NAME") or self._django_app(ctx)
            if app:
                command = f"python manage.py migrate && gunicorn --bind 0.0.0.0:${{PORT:-8000}} {app}:application"
        main = ctx.source.first_file(*MAIN_FILES)
        if main and self._uses(ctx, "python-fasthtml") and self._uses(ctx, "uvicorn"):
            command = "uvicorn main:app --host 0.0.0.0 --port ${PORT:-8000}"
        if main and self._uses(ctx, "fastapi") and self._uses(ctx, "uvicorn"):
            command = "uvicorn main:app --host 0.0.0.0 --port ${PORT:-8000}"
        if main and self._uses(ctx, "flask") and self._uses(ctx, "gunicorn"):
            command = "gunicorn --bind 0.0.0.0:${PORT:-8000} main:app"
        if not command and main:
            command = f"python {main}"
        return command

    def _django_app(self, ctx: GenerateContext) -> str:
        for rel in ctx.source.find_files(PY_FILES, max_depth=1):
            if match := _WSGI.search(ctx.source.read_text(rel) or ""):
                return match.group(1)
        return ""
