"""Settings from the environment (STARFORGE_*), read lazily; defaults are the embedded, local set-up."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from .core.inputs import RepoUrlPolicy

ENV_PREFIX = "STARFORGE_"
BUILD_SECRET_PREFIX = "STARFORGE_BUILD_SECRET_"


class _EnvironSource(EnvSettingsSource):
    """STARFORGE_* variables from a given mapping instead of this process's environment."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key if self.case_sensitive else key.lower(): value for key, value in self._environ.items()}


_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("starforge_settings_environ", default=None)


class Settings(BaseSettings):
    """Every STARFORGE_* variable; the one reader of the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Field(
        default=Path(".starforge"), description="Where embedded state lives (SQLite, clones, Dagster home)."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the build store; default SQLite under home."
    )
    github_webhook_secret: SecretStr = Field(default=SecretStr(""), description="Shared secret of the GitHub webhook.")
    api_token: SecretStr = Field(default=SecretStr(""), description="Bearer token for the non-webhook API endpoints.")
    build_backend: str = Field(default="auto", description="buildkit | depot | fake | auto (buildkit if reachable).")
    buildkit_addr: str = Field(default="docker:///run/starforge/docker.sock", description="BuildKit endpoint.")
    buildkit_tls_ca: str | None = None
    buildkit_tls_cert: str | None = None
    buildkit_tls_key: str | None = None
    buildkit_tls_server_name: str | None = None
    depot_token: SecretStr = Field(default=SecretStr(""), description="Depot organization token (depot backend).")
    depot_api_url: str = Field(
        default="https://api.depot.dev", description="Depot API: https://host or http://host:port."
    )
    depot_region: str = Field(default="us-east-1", description="Region of the Depot projects created for workspaces.")
    depot_platform: str = Field(default="amd64", description="Depot builder platform: amd64 | arm64.")
    depot_endpoint_timeout_s: float = Field(default=300.0, description="Longest wait for a Depot builder.")
    depot_org: str | None = Field(default=None, description="Depot organization id, for dashboard links.")
    depot_cache_keep_gb: int | None = Field(default=None, description="Cache size of new Depot projects (GB).")
    default_workspace: str = Field(default="default", description="Workspace of one-off builds (build-dir).")
    registry: str = Field(default="127.0.0.1:5000/apps", description="Registry and prefix for pushed images.")
    registry_username: str | None = None
    registry_password: SecretStr = Field(default=SecretStr(""))
    log_store_dsn: str = Field(
        default="sql", description="sql (the build store's database) | chdb:///path | http(s)://clickhouse"
    )
    builder_image: str = Field(
        default="127.0.0.1:5000/base/busybox:latest", description="Builder base image for planned builds."
    )
    runtime_image: str = Field(
        default="127.0.0.1:5000/base/busybox:latest", description="Runtime base image for planned builds."
    )
    build_network: Literal["none", "host"] = Field(
        default="none", description="Network of build steps: none | host (needs the network.host entitlement)."
    )
    build_timeout_s: int = Field(default=3600, description="A build running longer than this is timed out.")
    fake_outcome: str = Field(
        default="succeed", description="fake backend: succeed | user_error | transient_error | permanent_error"
    )
    fake_fail_until_file: str | None = Field(
        default=None, description="fake backend: fail builds until this file exists."
    )
    fake_step_delay_s: float = Field(default=0.0, description="fake backend: pause per build step.")
    max_body_bytes: int = Field(default=25 * 1024 * 1024, description="Largest webhook body accepted.")
    github_app_id: int | None = Field(default=None, description="The GitHub App's id (private repos, statuses).")
    github_app_private_key: SecretStr = Field(
        default=SecretStr(""), description="The GitHub App's private key: PEM text or the path of a PEM file."
    )
    github_api_url: str = Field(default="https://api.github.com", description="GitHub's REST API base URL.")
    github_status_context: str = Field(default="starforge", description="Prefix of the commit status context.")
    github_reconcile_interval_s: int = Field(
        default=60, description="How often branch heads are compared with builds (missed pushes)."
    )
    public_url: str | None = Field(default=None, description="The API's public base URL (commit status links).")
    dagster_url: str | None = Field(default=None, description="The Dagster UI's base URL (commit status links).")
    git_allowed_schemes: str = Field(
        default="https", description="Comma-separated URL schemes git may use: https, http, ssh, git, file."
    )
    git_allowed_hosts: str = Field(
        default="github.com", description="Comma-separated hosts git may reach: name, *.domain, host:port, or *."
    )
    git_timeout_s: float = Field(default=30.0, description="Deadline of a branch lookup (git ls-remote).")
    git_checkout_timeout_s: float = Field(default=900.0, description="Deadline of one build's checkout.")
    celery_broker_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL of the Celery run workers' broker and result backend (deploy/dagster-celery.yaml).",
    )
    worker_concurrency: int = Field(
        default=2, ge=1, description="Build runs one `starforge worker` executes at once (one process each)."
    )
    retain_builds: int = Field(default=10, ge=1, description="Image retention keeps the newest N successful builds.")
    retain_desired_days: float = Field(
        default=7.0, ge=0, description="Image retention never deletes an image desired in the last M days."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is None:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        return init_settings, _EnvironSource(settings_cls, environ)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """The Settings a process started with exactly `environ` reads, whatever this process's environment holds."""
        token = _ENVIRON.set(environ)
        try:
            return cls()
        finally:
            _ENVIRON.reset(token)

    def env_var(self, field: str) -> str | None:
        """The variable `field` came from, if the environment holds its value: resources take it by name (EnvVar)."""
        name = ENV_PREFIX + field.upper()
        value = getattr(self, field)
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return name if raw and os.environ.get(name) == str(raw) else None

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_home / 'starforge.db'}"

    @property
    def github_app_configured(self) -> bool:
        return self.github_app_id is not None and bool(self.github_app_private_key.get_secret_value())

    @property
    def git_policy(self) -> RepoUrlPolicy:
        """Which repository and submodule URLs git may talk to (InvalidInput names a scheme that cannot be allowed)."""
        return RepoUrlPolicy.parse(self.git_allowed_schemes, self.git_allowed_hosts)

    @property
    def workdir(self) -> Path:
        return self.resolved_home / "work"


def get_settings() -> Settings:
    """A fresh read of the environment on every call, so tests and CLIs can change it."""
    return Settings()


def build_secret(name: str, prefix: str = BUILD_SECRET_PREFIX) -> str | None:
    """A build secret's value, read when the build needs it: only its name travels in specs and config."""
    return os.environ.get(prefix + name)


def environ_value(name: str) -> str | None:
    """A variable the user named explicitly (e.g. `--secret id=x,env=NAME`), read where it is used."""
    return os.environ.get(name)


def railpack_environ() -> dict[str, str]:
    """Railpack's RAILPACK_* options from this process's environment: the only host variables a plan reads."""
    from .railpack.config import railpack_options

    return railpack_options(os.environ)


def environ_subset(names: Iterable[str]) -> dict[str, str]:
    """The named variables that are set, to hand to a child process that needs them (PATH, HOME, proxies)."""
    return {name: os.environ[name] for name in names if name in os.environ}


def starforge_environ() -> dict[str, str]:
    """This process's STARFORGE_* variables, to hand to processes it starts."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


def child_environ(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its STARFORGE_* settings and DAGSTER_HOME, then `env` on top."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "DAGSTER_HOME"}
    return {**inherited, **env}
