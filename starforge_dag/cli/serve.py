"""`starforge api`, `up`, `dagster-home`: run the platform's processes."""

from __future__ import annotations

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
def up(api_port: int, ui_port: int) -> None:
    """Run the API, dagster-daemon and dagster-webserver together until Ctrl-C (Dagster storage in Postgres)."""
    from ..dev.stack import StackError, run_stack_forever

    try:
        run_stack_forever(api_port=api_port, webserver_port=ui_port)
    except StackError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--postgres", is_flag=True, help="Use deploy/dagster-postgres.yaml (STARFORGE_DAGSTER_PG_URL).")
def dagster_home(postgres: bool) -> None:
    """Prepare DAGSTER_HOME under STARFORGE_HOME and print it (export it before dagster commands)."""
    from ..dev.instance import prepare_dagster_home

    click.echo(prepare_dagster_home(get_settings(), postgres=postgres))
