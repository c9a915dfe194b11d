"""Where a build clones from: the app's URL, or, for an app following a GitHub repository, the App's way in."""

from __future__ import annotations

from starforge_dag.core.errors import PermanentBuildError, TransientBuildError, UserBuildError
from starforge_dag.store.github import GitHubStore

from .app import GitHubApp, GitHubAppError


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
