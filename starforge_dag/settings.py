"""Settings from the environment (STARFORGE_*), read lazily; defaults are the embedded, local set-up."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from .core.inputs import RepoUrlPolicy

if TYPE_CHECKING:
    from .core.links import PageLinks
    from .notify.addresses import AddressPolicy
    from .variables.crypto import SecretBox

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
        default=Path(".starforge"),
        description="Where embedded state lives: SQLite database, checkouts, `DAGSTER_HOME` for the demo.",
    )
    database_url: str | None = Field(
        default=None,
        description="Build store (SQLAlchemy URL; `postgresql://…` uses psycopg2); unset: SQLite under `STARFORGE_HOME`.",
    )
    github_webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="The webhook's shared secret; webhooks are refused (503) until set."
    )
    api_token: SecretStr = Field(
        default=SecretStr(""),
        description="The platform's bearer token: every non-webhook endpoint, all workspaces; they answer 503 until "
        "set. Workspace tokens (`sfw_…`, `POST /workspaces/{workspace}/tokens`) reach one workspace.",
    )
    secrets_key: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated Fernet keys sealing secret variables: the first encrypts, all decrypt "
        "(`starforge secrets rotate-key` moves every secret to the first); unset: a key file "
        "`STARFORGE_HOME/secrets.key` (0600), made on first use. Webhook endpoints' signing secrets are sealed with "
        "it too.",
    )
    build_backend: str = Field(
        default="auto", description="`depot`, `buildkit`, `fake`, or `auto` (BuildKit when the Docker socket answers)."
    )
    buildkit_addr: str = Field(
        default="docker:///run/starforge/docker.sock",
        description="BuildKit endpoint: `docker://SOCKET`, `unix://SOCKET`, `tcp://HOST:PORT`.",
    )
    buildkit_tls_ca: str | None = Field(
        default=None, description="mTLS for `tcp://` endpoints: the CA file that verifies BuildKit's certificate."
    )
    buildkit_tls_cert: str | None = Field(
        default=None, description="mTLS for `tcp://` endpoints: our certificate file."
    )
    buildkit_tls_key: str | None = Field(default=None, description="mTLS for `tcp://` endpoints: our key file.")
    buildkit_tls_server_name: str | None = Field(
        default=None, description="mTLS for `tcp://` endpoints: the server name to verify instead of the host."
    )
    depot_token: SecretStr = Field(
        default=SecretStr(""), description="Depot organization token (reaches the resource as an `EnvVar`)."
    )
    depot_api_url: str = Field(
        default="https://api.depot.dev",
        description="Depot's API: `https://…` (TLS), or `http://host:port` (the emulator).",
    )
    depot_region: str = Field(default="us-east-1", description="Region of the Depot projects created for workspaces.")
    depot_platform: str = Field(default="amd64", description="Depot builder platform: `amd64`, `arm64`.")
    depot_endpoint_timeout_s: float = Field(
        default=300.0,
        description="Longest wait for a Depot builder, in seconds; after it the attempt fails as transient.",
    )
    depot_org: str | None = Field(
        default=None, description="Depot organization id for dashboard links (else the project's)."
    )
    depot_cache_keep_gb: int | None = Field(default=None, description="Cache size of new Depot projects, in GB.")
    default_workspace: str = Field(
        default="default",
        description="Workspace (and so Depot project) of `starforge build-dir` without `--workspace`.",
    )
    registry: str = Field(
        default="127.0.0.1:5000/apps", description="Images are pushed as `<registry>/<workspace>/<app>:<commit>`."
    )
    registry_username: str | None = Field(default=None, description="Registry user name.")
    registry_password: SecretStr = Field(
        default=SecretStr(""), description="Registry password (reaches resources as an `EnvVar`)."
    )
    log_store_dsn: str = Field(
        default="sql",
        description="Log store: `sql` (the build store's database), `chdb:///abs/path`, "
        "`http(s)://user:pass@host:8123` (ClickHouse).",
    )
    builder_image: str = Field(
        default="127.0.0.1:5000/base/busybox:latest",
        description="Base image of the build steps of planned (no-Dockerfile) builds.",
    )
    runtime_image: str = Field(
        default="127.0.0.1:5000/base/busybox:latest",
        description="Base image of the image planned (no-Dockerfile) builds deploy.",
    )
    build_network: Literal["none", "host"] = Field(
        default="none",
        description="Network of build steps: `none`, or `host` (the daemon must grant `network.host`).",
    )
    build_timeout_s: int = Field(
        default=3600,
        description="A build attempt (from its first phase, or its resumption by a re-execution) running longer, "
        "in seconds, is `timed_out`.",
    )
    fake_outcome: str = Field(
        default="succeed",
        description="Fake backend only: what every build does: `succeed`, `user_error`, `transient_error`, "
        "`permanent_error`.",
    )
    fake_fail_until_file: str | None = Field(
        default=None, description="Fake backend only: builds fail with a user error until this file exists."
    )
    fake_step_delay_s: float = Field(
        default=0.0, description="Fake backend only: pause per build step, in seconds, to watch or cancel builds."
    )
    max_body_bytes: int = Field(
        default=25 * 1024 * 1024, description="Largest webhook body accepted, in bytes (25 MiB; 413 above)."
    )
    github_app_id: int | None = Field(
        default=None, description="The GitHub App's id: private repos, commit statuses, redelivery, reconciler."
    )
    github_app_private_key: SecretStr = Field(
        default=SecretStr(""),
        description="The App's private key, PEM text or a `.pem` path (reaches resources as an `EnvVar`).",
    )
    github_api_url: str = Field(
        default="https://api.github.com", description="GitHub's REST API (GitHub Enterprise, or the emulator)."
    )
    github_status_context: str = Field(
        default="starforge", description="Commit status contexts are `<this>/<workspace>/<app>`."
    )
    github_reconcile_interval_s: int = Field(
        default=60,
        description="How often, in seconds, failed deliveries are redelivered and branch heads compared with builds.",
    )
    checks_timeout_s: int = Field(
        default=7200,
        gt=0,
        description="Apps with `wait_for_checks`: a push whose check suites have not all completed this many seconds "
        "after it arrived is `timed_out`, never built.",
    )
    checks_grace_s: int = Field(
        default=60,
        ge=0,
        description="Apps with `wait_for_checks`: a commit with no check suite at all this many seconds after its push "
        "is taken to have no CI, and builds.",
    )
    public_url: str | None = Field(
        default=None,
        description="The API's public base URL: build page links start with it, and commit status links go to the "
        "build's page.",
    )
    page_key: SecretStr = Field(
        default=SecretStr(""),
        description="Key (16 characters or more) signing build page links, so a link opens one build's page "
        "until it expires; unset: derived from a key file `STARFORGE_HOME/page.key` (0600), made on first use.",
    )
    page_link_days: float = Field(
        default=30.0, gt=0, description="How long a build page link (in `GET /builds/{id}`, commit statuses) opens."
    )
    dagster_url: str | None = Field(
        default=None,
        description="The Dagster UI's base URL: without `STARFORGE_PUBLIC_URL`, commit status links go to the run.",
    )
    git_allowed_schemes: str = Field(
        default="https",
        description="Comma-separated URL schemes git may use for app repositories and their submodules: `https`, "
        "`http`, `ssh` (also `user@host:path`), `git`, `file`; transport helpers (`ext::`, `fd::`) can never be "
        "allowed.",
    )
    git_allowed_hosts: str = Field(
        default="github.com",
        description="Comma-separated hosts git may reach: `name`, `*.domain` (its subdomains), `host:port`, or `*` "
        "for any; `file://` URLs have no host.",
    )
    git_timeout_s: float = Field(
        default=30.0, description="Deadline, in seconds, of a branch lookup (`git ls-remote`, manual builds)."
    )
    git_checkout_timeout_s: float = Field(default=900.0, description="Deadline, in seconds, of one build's checkout.")
    webhook_allow_private: bool = Field(
        default=False,
        description="Let workspace webhook endpoints have loopback, link-local, private and other non-public "
        "addresses (checked when registered and at every send); for closed networks and tests only.",
    )
    webhook_allowed_cidrs: str = Field(
        default="",
        description="Comma-separated networks (`10.1.0.0/16`, `fd00::/8`) webhook endpoints may have although they "
        "are not public.",
    )
    webhook_timeout_s: float = Field(
        default=15.0, gt=0, description="How long, in seconds, a webhook endpoint has to answer a delivery."
    )
    retain_builds: int = Field(
        default=10, ge=1, description="Image retention keeps the images of each app's newest N successful builds."
    )
    celery_broker_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL of the Celery run workers' broker and result backend (deploy/dagster-celery.yaml).",
    )
    worker_concurrency: int = Field(
        default=2, ge=1, description="Build runs one `starforge worker` executes at once (one process each)."
    )
    sensor_wait_s: float = Field(
        default=3.0,
        ge=0,
        le=4.0,
        description="How long a tick of the build-queue sensor, when the daemon evaluates it and no build is queued, "
        "keeps looking for one; 0: answer at once. The daemon starts the next tick about 5 s after the last one "
        "started, but skips it while that one is still running: keep a margin below 5 s.",
    )
    retain_desired_days: float = Field(
        default=7.0,
        ge=0,
        description="Image retention never deletes an image that is, or was in the last M days, desired.",
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
    def webhook_addresses(self) -> AddressPolicy:
        """Which addresses webhook endpoints may have (ValueError names a malformed network)."""
        from .notify.addresses import AddressPolicy

        return AddressPolicy.parse(self.webhook_allow_private, self.webhook_allowed_cidrs)

    def secret_box(self) -> SecretBox:
        """The keys that seal and open secret variables (the key file under home is made on first use)."""
        from .variables.crypto import secret_box

        return secret_box(self.secrets_key.get_secret_value(), self.resolved_home)

    def page_links(self, base_url: str | None = None) -> PageLinks:
        """Signer of build page links under `STARFORGE_PUBLIC_URL` (or `base_url`, the address a request came to)."""
        from datetime import timedelta

        from .core.links import PageLinks
        from .variables.crypto import page_key

        key = page_key(self.page_key.get_secret_value(), self.resolved_home)
        return PageLinks(key, self.public_url or base_url or "", timedelta(days=self.page_link_days))

    @property
    def git_host_env(self) -> dict[str, str]:
        """The host's variables git needs (PATH, HOME, proxies); nothing else of this process reaches git."""
        from .git.command import HOST_VARIABLES

        return environ_subset(HOST_VARIABLES)

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


# Variables read outside Settings, listed on the configuration page beside its fields.
OTHER_VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        f"{BUILD_SECRET_PREFIX}<NAME>",
        "none",
        "The value of build secret NAME, read when the build that names it runs: only the name travels.",
    ),
    (
        "STARFORGE_DAGSTER_PG_URL",
        "none",
        "Dagster's own storage in Postgres (`deploy/dagster-postgres.yaml`, `starforge up`); read by Dagster.",
    ),
    ("RAILPACK_*", "none", "The planner honours Railpack's variables (`RAILPACK_BUILD_CMD`, `RAILPACK_START_CMD`, …)."),
)

_PAGE_HEAD = """\
# Configuration

<!-- Generated from the field descriptions of starforge_dag.settings.Settings:
     python -m starforge_dag.settings --docs docs/configuration.md (./dev check fails when this page differs). -->

All settings come from the environment, read when used. Defaults are the embedded set-up: SQLite and files
under `STARFORGE_HOME`, the local registry on 127.0.0.1:5000 and the local dockerd's BuildKit.

Secrets never go into run config or run tags: runs carry the build id, and resources read secrets from the
environment (as a `dg.EnvVar` naming the variable; a secret given as a value is refused).
Production set-ups (Postgres, ClickHouse, Dagster's storage) are in [operating.md](operating.md).

| variable | default | meaning |
| --- | --- | --- |
"""

_PAGE_TAIL = """
Read elsewhere:

| variable | default | meaning |
| --- | --- | --- |
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default_text(field: FieldInfo) -> str:
    """The default as an operator types it: `none` when unset, no `.0` on whole seconds."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == "":
        return "none"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def configuration_page(settings_cls: type[BaseSettings] = Settings) -> str:
    """docs/configuration.md from the fields' descriptions, so the table cannot disagree with the code."""
    rows = []
    for name, field in settings_cls.model_fields.items():
        if not field.description:
            raise ValueError(f"Settings.{name} has no description: the configuration page needs one")
        variable = ENV_PREFIX + name.upper()
        rows.append(f"| `{variable}` | {_default_text(field)} | {_cell(field.description)} |")
    others = [f"| `{name}` | {default} | {_cell(meaning)} |" for name, default, meaning in OTHER_VARIABLES]
    return _PAGE_HEAD + "\n".join(rows) + "\n" + _PAGE_TAIL + "\n".join(others) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the configuration page, or with --check fail when the checked-in page is not the generated one."""
    parser = argparse.ArgumentParser(prog="python -m starforge_dag.settings")
    parser.add_argument("--docs", metavar="PATH", type=Path, required=True, help="the configuration page")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when it differs")
    args = parser.parse_args(argv)
    page = configuration_page()
    path: Path = args.docs
    if not args.check:
        path.write_text(page)
        return 0
    if not path.is_file() or path.read_text() != page:
        print(
            f"{path} is not what Settings describes: regenerate it with python -m starforge_dag.settings --docs {path}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
