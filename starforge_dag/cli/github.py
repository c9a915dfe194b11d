"""`starforge github …`: resolve `owner/name` through the GitHub App, and check the App's settings."""

from __future__ import annotations

from dataclasses import dataclass

import click

from ..github.app import GitHubApp, GitHubAppError
from ..github.check import CheckReport, check_app
from ..settings import Settings, get_settings


@dataclass(frozen=True)
class GitHubLink:
    repo_id: int
    full_name: str
    clone_url: str
    installation_id: int


def _app(settings: Settings) -> GitHubApp:
    if not settings.github_app_configured:
        raise click.ClickException(
            "no GitHub App configured: set STARFORGE_GITHUB_APP_ID and STARFORGE_GITHUB_APP_PRIVATE_KEY "
            "(`starforge github check` says what is missing)"
        )
    try:
        return GitHubApp(
            settings.github_app_id or 0, settings.github_app_private_key.get_secret_value(), settings.github_api_url
        )
    except GitHubAppError as exc:
        raise click.ClickException(str(exc)) from None


def resolve_github_repo(settings: Settings, full_name: str) -> GitHubLink:
    """The repository's id, clone URL and the installation serving it, asked of GitHub as the App."""
    app = _app(settings)
    try:
        installation_id = app.repo_installation(full_name)
        repo = app.repository(installation_id, full_name)
    except GitHubAppError as exc:
        if exc.status == 404:
            raise click.ClickException(
                f"the GitHub App is not installed on {full_name} (or the repository does not exist): "
                "install the App on it, then try again"
            ) from None
        raise click.ClickException(f"GitHub: {exc}") from None
    return GitHubLink(repo.id, repo.full_name, repo.clone_url, installation_id)


def run_check(settings: Settings) -> CheckReport:
    from ..store import open_store

    store = open_store(settings.resolved_database_url)
    names = {a.id: f"{a.workspace}/{a.name}" for a in store.list_apps()}
    linked = [(names.get(x.app_id, str(x.app_id)), x.repo_id, x.paused_reason) for x in store.github().app_repos()]
    return check_app(
        settings.github_app_id,
        settings.github_app_private_key.get_secret_value(),
        settings.github_api_url,
        bool(settings.github_webhook_secret.get_secret_value()),
        linked,
    )


@click.group()
def github() -> None:
    """The GitHub App: check its settings and what it reaches."""


@github.command("check")
def github_check() -> None:
    """Verify the App's settings with GitHub, list installations and reachable repositories, name what is wrong."""
    report = run_check(get_settings())
    for line in report.lines:
        click.echo(line)
    if report.problems:
        raise click.ClickException(f"{len(report.problems)} problem(s): " + "; ".join(report.problems))
