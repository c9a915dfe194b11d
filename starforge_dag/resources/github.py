"""The GitHub App as a resource: configuration only (the key arrives as an EnvVar); clients per call."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
from pydantic import Field

from ..github.app import DEFAULT_API_URL, GitHubApp
from ..github.statuses import StatusStyle
from ..pages.links import page_links


class GitHubAppResource(dg.ConfigurableResource):
    """Installation tokens for private clones, commit statuses, branch heads and webhook redelivery."""

    app_id: int | None = Field(default=None, description="The GitHub App's id; unset: no App (public repos only).")
    private_key: str | None = Field(default=None, description="PEM key or its file path (set through an EnvVar).")
    api_url: str = Field(default=DEFAULT_API_URL, description="GitHub's REST API base URL.")
    status_context: str = Field(default="starforge", description="Prefix of commit status contexts.")
    public_url: str | None = Field(default=None, description="The API's public base URL, for status links.")
    dagster_url: str | None = Field(default=None, description="The Dagster UI's base URL, for status links.")
    page_key: str | None = Field(default=None, description="Key signing build page links (set through an EnvVar).")
    home: str | None = Field(
        default=None, description="STARFORGE_HOME: without a page key, the key file there signs page links."
    )
    page_link_days: float = Field(default=30.0, description="How long the page link of a commit status opens.")

    def app(self) -> GitHubApp | None:
        if self.app_id is None or not self.private_key:
            return None
        return GitHubApp(self.app_id, self.private_key, self.api_url)

    def style(self, explain: Callable[[int], str | None] | None = None) -> StatusStyle:
        """Status links go to the build's page (signed) when the API has a public URL, else to the Dagster run."""
        links = page_links(self.public_url, self.page_key, self.home, self.page_link_days)
        return StatusStyle(self.status_context, self.public_url, self.dagster_url, links, explain)
