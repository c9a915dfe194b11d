"""`starforge demo`, `depot-emulator`: try the pipeline on this machine."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..settings import get_settings

if TYPE_CHECKING:
    from ..emulators.depot import DepotEmulator


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["auto", "buildkit", "depot", "fake"]),
    default=None,
    help="Build backend (default: STARFORGE_BUILD_BACKEND, else buildkit when dockerd is reachable).",
)
def demo(backend: str | None) -> None:
    """Carry a sample app from a signed push webhook to desired state, on embedded defaults."""
    from ..dev.demo import run_demo

    settings = get_settings()
    sys.exit(run_demo(settings.model_copy(update={"build_backend": backend}) if backend else settings))


@click.command("depot-emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=int, help="0 picks a free port.")
@click.option("--token", default=None, help="Organization token to accept (default: a fresh random one).")
@click.option("--organization", default="org-emulator", show_default=True)
@click.option(
    "--pending", default=1, show_default=True, type=int, help="Pending messages before an endpoint is active."
)
@click.option("--pending-delay", default=0.0, show_default=True, type=float, help="Seconds between pending messages.")
@click.option(
    "--health-timeout",
    default=300.0,
    show_default=True,
    type=float,
    help="Seconds without health reports before a build expires.",
)
def depot_emulator(
    host: str,
    port: int,
    token: str | None,
    organization: str,
    pending: int,
    pending_delay: float,
    health_timeout: float,
) -> None:
    """Serve a Depot emulator in front of the local dockerd until Ctrl-C, printing each build's lifecycle."""
    import signal
    import threading

    from ..builders.wiring import registry_auth
    from ..emulators.depot import DepotEmulator, Faults

    settings = get_settings()
    auth = registry_auth(settings)
    emulator = DepotEmulator(
        token=token,
        organization_id=organization,
        host=host,
        port=port,
        docker_addr=settings.buildkit_addr,
        registry_auth=auth,
        health_timeout_s=health_timeout,
        faults=Faults(pending_messages=pending, pending_delay_s=pending_delay),
    )
    try:
        url = emulator.start()
    except (OSError, RuntimeError, ValueError) as exc:
        raise click.ClickException(f"cannot start the Depot emulator: {exc}") from None
    click.echo(f"Depot emulator for organization {organization}, builds on {settings.buildkit_addr}")
    click.echo(
        f"  export STARFORGE_BUILD_BACKEND=depot STARFORGE_DEPOT_API_URL={url} STARFORGE_DEPOT_TOKEN={emulator.token}"
    )
    click.echo("  each project and build is printed below as it changes; Ctrl-C stops the emulator")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    seen: dict[str, str] = {}
    try:
        while not stopping.is_set():
            emulator.wait_for(lambda emu: stopping.is_set() or _depot_lines(emu) != seen, timeout=0.5)
            for key, line in _depot_lines(emulator).items():
                if seen.get(key) != line:
                    click.echo(line)
                    seen[key] = line
    finally:
        emulator.stop()


def _depot_lines(emulator: DepotEmulator) -> dict[str, str]:
    """One summary line per project and build of the emulator."""
    lines = {
        p.project_id: f"project {p.project_id} {p.name!r} region={p.region_id}{' deleted' if p.deleted else ''}"
        for p in emulator.projects()
    }
    for b in emulator.builds():
        state = b.result or ("expired" if b.expired else "running")
        images = ", ".join(f"{s.images[0] if s.images else s.ref}@{s.digest or '-'}" for s in b.solves)
        lines[b.build_id] = (
            f"build {b.build_id} project={b.project_id} {state}{': ' + b.error if b.error else ''}"
            f" health={b.health_reports} endpoint={'released' if b.released else b.endpoint or '-'}"
            f" solves=[{images}]"
        )
    return lines
