"""Webhook notifications as a resource: configuration only (the secrets key arrives as an EnvVar)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from ..core.links import PageLinks
from ..core.notifications import DeliveryPolicy
from ..notify import AddressPolicy
from ..pages.links import page_links
from ..variables.crypto import SecretBox, secret_box


class NotificationsResource(dg.ConfigurableResource):
    """What the sender needs beside the store: the keys that open endpoint secrets, and the address rules."""

    home: str = Field(description="STARFORGE_HOME: where the embedded secrets key file lives.")
    secrets_key: str = Field(default="", description="Comma-separated Fernet keys (set through an EnvVar).")
    allow_private: bool = Field(default=False, description="Endpoints may have non-public addresses.")
    allowed_cidrs: str = Field(default="", description="Comma-separated non-public networks endpoints may have.")
    timeout_s: float = Field(default=15.0, description="Seconds an endpoint has to answer a delivery.")
    public_url: str | None = Field(default=None, description="The API's public base URL, for build page links.")
    page_key: str | None = Field(default=None, description="Key signing build page links (set through an EnvVar).")
    page_link_days: float = Field(default=30.0, description="How long a notification's page link opens.")

    def box(self) -> SecretBox:
        return secret_box(self.secrets_key, Path(self.home))

    def addresses(self) -> AddressPolicy:
        return AddressPolicy.parse(self.allow_private, self.allowed_cidrs)

    def links(self) -> PageLinks | None:
        return page_links(self.public_url, self.page_key, self.home, self.page_link_days)

    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(timeout_s=self.timeout_s)
