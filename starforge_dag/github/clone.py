"""Where a build clones from: the app's URL, or, for an app following a GitHub repository, the App's way in."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starforge_dag.core.errors import BuildError, PermanentBuildError, TransientBuildError, UserBuildError
from starforge_dag.store.github import GitHubStore

from .app import GitHubApp, GitHubAppError

T = TypeVar("T")
_AUTH_REFUSED = ("authentication failed", "could not read username", "403", "401")


def clone_access(
    gh: GitHubStore, app: GitHubApp | None, app_id: int, default_url: str
) -> tuple[str, dict[str, str] | None]:
    """(clone URL, git auth config): the repository is looked up by id, so renames and transfers still clone."""
    link = gh.app_repo(app_id)
    if link is None:
        return default_url, None
    if link.paused_reason:
        raise UserBuildError(link.paused_reason, step="clone")
    if link.installation_id is None:
        raise UserBuildError(f"the GitHub App is not installed for repository {link.full_name}", step="clone")
    if app is None:
        raise PermanentBuildError(
            "the app follows a GitHub repository but no GitHub App is configured "
            "(STARFORGE_GITHUB_APP_ID, STARFORGE_GITHUB_APP_PRIVATE_KEY)",
            step="clone",
        )
    try:
        repo = app.repository_by_id(link.installation_id, link.repo_id)
        return repo.clone_url, app.clone_config(link.installation_id, repo.clone_url)
    except GitHubAppError as exc:
        error = TransientBuildError if exc.transient else PermanentBuildError
        raise error(f"GitHub: {exc}", step="clone") from None


def clone_with_app(
    gh: GitHubStore,
    app: GitHubApp | None,
    app_id: int,
    default_url: str,
    clone: Callable[[str, dict[str, str] | None], T],
) -> T:
    """Clone with the App's token; when git says the token was refused (revoked, expired early), renew it once."""
    url, auth = clone_access(gh, app, app_id, default_url)
    try:
        return clone(url, auth)
    except BuildError as exc:
        link = gh.app_repo(app_id)
        refused = any(marker in str(exc).lower() for marker in _AUTH_REFUSED)
        if auth is None or app is None or link is None or link.installation_id is None or not refused:
            raise
        app.forget_token(link.installation_id)
    url, auth = clone_access(gh, app, app_id, default_url)
    return clone(url, auth)
