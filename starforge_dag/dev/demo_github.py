"""The demo's GitHub part: a private repository built through the GitHub App, against the GitHub emulator."""

from __future__ import annotations

import os
import time

from pydantic import SecretStr

from ..settings import Settings


def run_github_demo(settings: Settings, bare_repo_path: str) -> int:
    """Install the App on a private copy of the sample repo, push, build it, and show the commit statuses GitHub got."""
    import dagster as dg

    from ..api import create_app
    from ..core.models import utcnow
    from ..definitions import resources_for
    from ..emulators.github import GitHubEmulator, ServedApp
    from ..github.app import GitHubApp
    from ..github.statuses import StatusStyle, send_statuses
    from ..store import NotFound, open_store
    from .instance import prepare_dagster_home
    from .runner import drain_queue

    secret = settings.github_webhook_secret.get_secret_value()
    with GitHubEmulator(webhook_secret=secret) as emulator:
        os.environ["STARFORGE_GITHUB_APP_PRIVATE_KEY"] = emulator.private_key  # reaches resources as an EnvVar
        settings = settings.model_copy(
            update={
                "github_app_id": emulator.app_id,
                "github_app_private_key": SecretStr(emulator.private_key),
                "github_api_url": emulator.api_url,
                "git_allowed_schemes": "https,file,http",
                "git_allowed_hosts": f"github.com,127.0.0.1:{emulator.port}",
            }
        )
        api = ServedApp(create_app(settings)).start()
        emulator.webhook_url = f"{api.url}/webhooks/github"
        try:
            installation = emulator.add_installation("demo")
            repo = emulator.add_repo("demo", "hello-private", bare_repo_path, installation_id=installation)
            store = open_store(settings.resolved_database_url)
            gh = store.github()
            try:
                app = store.get_app("hello-private", "demo")
            except NotFound:
                app = store.add_app(
                    "demo", "hello-private", emulator.clone_url(repo), "main", repo_full_name=repo.full_name
                )
            if gh.app_repo(app.id) is None:
                gh.link_app(app.id, repo.id, repo.full_name, installation)
            else:
                gh.save_repo(repo.id, repo.full_name, installation)
                gh.relink_app(app.id, repo.id)
            head = GitHubApp(emulator.app_id, emulator.private_key, emulator.api_url)
            sha = head.branch_head(installation, repo.full_name, "main") or ""
            delivery = emulator.push(repo.id, "main", "0" * 40, sha)
            print(f"GitHub App: pushed {sha[:12]} to private {repo.full_name}; webhook answered {delivery.status_code}")
            with dg.DagsterInstance.from_config(str(prepare_dagster_home(settings))) as instance:
                drain_queue(instance, resources_for(settings))
            deadline = time.monotonic() + 30
            while gh.unsent(1) and time.monotonic() < deadline:
                send_statuses(gh, head, StatusStyle(public_url=settings.public_url), utcnow)
            build = store.list_builds(app_id=app.id, limit=1)[0]
            print(f"build {build.id} of demo/hello-private (cloned through the App): {build.status.value}")
            for status in emulator.statuses_for(repo.id, sha):
                print(f"  commit status {status.context}: {status.state:<8} {status.description}")
            return 0 if build.status.value == "succeeded" else 1
        finally:
            api.stop()
