"""`starforge apps …`: register and list apps."""

from __future__ import annotations

import json

import click

from ..settings import get_settings
from .common import open_build_store


@click.group()
def apps() -> None:
    """Register and list apps."""


@apps.command("add")
@click.argument("name")
@click.option(
    "--repo",
    default=None,
    help="Clone URL; its scheme and host must be allowed (STARFORGE_GIT_ALLOWED_SCHEMES/_HOSTS).",
)
@click.option(
    "--github-repo",
    default=None,
    help="owner/name of a GitHub repository reached through the GitHub App (private ones too); followed by id.",
)
@click.option("--branch", default="main", show_default=True, help="Branch whose pushes are built.")
@click.option("--workspace", default="default", show_default=True)
@click.option("--root-dir", default="", help="The app's directory inside the repository.")
@click.option("--dockerfile", default=None, help="Dockerfile path relative to the root dir.")
@click.option("--watch", multiple=True, help="Only pushes touching these globs build (repeatable).")
@click.option("--repo-name", default=None, help="GitHub owner/repo, when the URL does not show it.")
@click.option("--cancel-running/--no-cancel-running", default=False, help="A new push stops the running build.")
def apps_add(
    name, repo, github_repo, branch, workspace, root_dir, dockerfile, watch, repo_name, cancel_running
) -> None:
    """Register an app so pushes to its repository build it."""
    from ..core.inputs import InvalidInput, check_branch, check_repo_url, check_text

    if (repo is None) == (github_repo is None):
        raise click.ClickException("give exactly one of --repo URL and --github-repo owner/name")
    link = None
    if github_repo is not None:
        from .github import resolve_github_repo

        link = resolve_github_repo(get_settings(), github_repo)
        repo, repo_name = link.clone_url, link.full_name
    try:
        check_repo_url(repo, get_settings().git_policy)
        check_branch(branch)
        for what, value in (("name", name), ("workspace", workspace), ("root dir", root_dir)):
            check_text(value, what, max_chars=100 if what != "root dir" else 1000)
        for what, value in (("dockerfile", dockerfile), ("repo name", repo_name), *(("watch", w) for w in watch)):
            if value is not None:
                check_text(value, what)
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from None
    try:
        app = open_build_store().add_app(
            workspace,
            name,
            repo,
            branch,
            repo_full_name=repo_name,
            root_dir=root_dir,
            dockerfile_path=dockerfile,
            watch_paths=list(watch),
            cancel_running=cancel_running,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    out = app.model_dump(mode="json")
    if link is not None:
        from ..store.github import GitHubStore

        GitHubStore(open_build_store().engine).link_app(app.id, link.repo_id, link.full_name, link.installation_id)
        out.update(github_repo_id=link.repo_id, github_installation_id=link.installation_id)
    click.echo(json.dumps(out))


@apps.command("list")
def apps_list() -> None:
    """List registered apps."""
    for app in open_build_store().list_apps():
        click.echo(f"{app.workspace}/{app.name}\t{app.repo_url}\t{app.branch}")
