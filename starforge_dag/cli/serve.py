"""`starforge api`, `up`, `worker`, `dagster-home`: run the platform's processes."""

from __future__ import annotations

import os

import click

from ..settings import get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """Serve the HTTP API (webhook receiver, builds, logs, desired state)."""
    from ..api import serve

    serve(host, port)


@click.command()
@click.option("--api-port", default=8000, show_default=True, type=int)
@click.option("--ui-port", default=3000, show_default=True, type=int)
@click.option(
    "--workers", default=0, show_default=True, type=click.IntRange(min=0), help="Celery run workers to start beside."
)
def up(api_port: int, ui_port: int, workers: int) -> None:
    """Run the API, dagster-daemon and dagster-webserver together until Ctrl-C (Dagster storage in Postgres)."""
    from ..dev.stack import StackError, run_stack_forever

    try:
        run_stack_forever(api_port=api_port, webserver_port=ui_port, workers=workers)
    except StackError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option(
    "--concurrency", type=click.IntRange(min=1), help="Builds at once [default: STARFORGE_WORKER_CONCURRENCY]."
)
@click.option(
    "--hostname", help="Celery node name, unique per worker (%h is this host) [default: starforge-<random>@%h]."
)
def worker(concurrency: int | None, hostname: str | None) -> None:
    """Run build runs from the Celery queue (DAGSTER_HOME from deploy/dagster-celery.yaml) until stopped."""
    from ..workers import WorkerConfigError, run_worker

    settings = get_settings()
    # The instance file names the broker by variable: the default reaches Dagster only through the environment.
    os.environ.setdefault("STARFORGE_CELERY_BROKER_URL", settings.celery_broker_url.get_secret_value())
    try:
        run_worker(concurrency or settings.worker_concurrency, hostname, settings.build_timeout_s)
    except WorkerConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--postgres", is_flag=True, help="Use deploy/dagster-postgres.yaml (STARFORGE_DAGSTER_PG_URL).")
@click.option("--celery", is_flag=True, help="Use deploy/dagster-celery.yaml (Celery run workers; Postgres and Redis).")
def dagster_home(postgres: bool, celery: bool) -> None:
    """Prepare DAGSTER_HOME under STARFORGE_HOME and print it (export it before dagster commands)."""
    from ..dev.instance import prepare_dagster_home

    click.echo(prepare_dagster_home(get_settings(), postgres=postgres, celery=celery))
