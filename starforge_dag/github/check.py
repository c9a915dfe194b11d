"""`starforge github check`: is the App configured, does GitHub accept it, what can it reach, and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization

from .app import GitHubApp, GitHubAppError, Repository, load_private_key


@dataclass
class CheckReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"ok    {text}")

    def bad(self, text: str) -> None:
        self.lines.append(f"FAIL  {text}")
        self.problems.append(text)


def check_app(
    app_id: int | None,
    private_key: str,
    api_url: str,
    webhook_secret_set: bool,
    linked: Sequence[tuple[str, int, str | None]] = (),
) -> CheckReport:
    """Each setting, then GitHub's own answer, then every installation and the repositories it opens."""
    report = CheckReport()
    if app_id is None:
        report.bad("STARFORGE_GITHUB_APP_ID is not set (the App's numeric id, from its settings page)")
    else:
        report.ok(f"App id {app_id}")
    if not private_key:
        report.bad("STARFORGE_GITHUB_APP_PRIVATE_KEY is not set (the App's PEM key, or the path of the .pem file)")
    else:
        try:
            serialization.load_pem_private_key(load_private_key(private_key).encode(), None)
            report.ok("private key is a readable PEM key")
        except (GitHubAppError, ValueError, TypeError) as exc:
            report.bad(f"private key: {exc if isinstance(exc, GitHubAppError) else 'not a valid unencrypted PEM key'}")
            private_key = ""
    if webhook_secret_set:
        report.ok("webhook secret is set")
    else:
        report.bad("STARFORGE_GITHUB_WEBHOOK_SECRET is not set: webhooks are refused (503)")
    if app_id is None or not private_key:
        return report
    app = GitHubApp(app_id, private_key, api_url)
    try:
        info = app.app_info()
    except GitHubAppError as exc:
        if exc.status == 401:
            report.bad(
                f"GitHub refused the App's token at {api_url}: app id {app_id} and private key do not match ({exc})"
            )
        else:
            report.bad(f"GitHub at {api_url} did not answer as expected: {exc}")
        return report
    report.ok(f"GitHub accepts the App: {info.get('name') or info.get('slug')} (id {info.get('id')}) at {api_url}")
    try:
        installations = app.installations()
    except GitHubAppError as exc:
        report.bad(f"could not list installations: {exc}")
        return report
    if not installations:
        report.bad("the App is installed nowhere: install it on the accounts whose repositories should build")
    reachable: dict[int, Repository] = {}
    for inst in installations:
        try:
            repos = app.installation_repositories(inst.id)
        except GitHubAppError as exc:
            report.bad(
                f"installation {inst.id} ({inst.account.login}): cannot mint a token or list repositories: {exc}"
            )
            continue
        reachable.update({r.id: r for r in repos})
        names = ", ".join(r.full_name for r in repos[:20]) + (" …" if len(repos) > 20 else "")
        suspended = " (SUSPENDED)" if inst.suspended_at else ""
        report.ok(f"installation {inst.id} on {inst.account.login}{suspended}: {len(repos)} repositories: {names}")
    for app_name, repo_id, paused in linked:
        if paused:
            report.bad(f"app {app_name} is {paused}")
        elif repo_id not in reachable:
            report.bad(f"app {app_name} follows repository id {repo_id}, which no installation of the App reaches")
        else:
            report.ok(f"app {app_name} → {reachable[repo_id].full_name}")
    return report
