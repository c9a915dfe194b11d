"""Tables of the build store (SQLAlchemy Core); Alembic migrations create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ACTIVE_STATES = ("waiting", "queued", "cloning", "planning", "building", "pushing")
_ACTIVE_SQL = "status IN ('waiting', 'queued', 'cloning', 'planning', 'building', 'pushing')"

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("repo_url", sa.Text, nullable=False),
    sa.Column("repo_full_name", sa.String(200), nullable=True, index=True),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("root_dir", sa.Text, nullable=False, server_default=""),
    sa.Column("dockerfile_path", sa.Text, nullable=True),
    sa.Column("watch_paths", sa.JSON, nullable=False),
    sa.Column("cancel_running", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("target", sa.String(128), nullable=True),  # the Dockerfile stage to build
    sa.Column("build_timeout_s", sa.Integer, nullable=True),  # overrides STARFORGE_BUILD_TIMEOUT_S when set
    sa.Column("auto_build", sa.Boolean, nullable=False, server_default=sa.true()),  # false: pushes are only recorded
    sa.Column("wait_for_checks", sa.Boolean, nullable=False, server_default=sa.false()),  # pushes wait for CI
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),  # removed: no builds, history kept
    sa.Column("previews", sa.Boolean, nullable=False, server_default=sa.false()),  # pull requests build previews
    sa.Column("preview_label", sa.String(100), nullable=True),  # a label that approves a held pull request
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("workspace_id", "name", name="uq_apps_workspace_name"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(100), primary_key=True),
    sa.Column("event", sa.String(50), nullable=False),
    sa.Column("build_ids", sa.JSON, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)

builds = sa.Table(
    "builds",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("ref", sa.String(255), nullable=False),
    sa.Column("commit_sha", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("delivery_id", sa.String(100), nullable=True),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("cancel_state", sa.String(20), nullable=True),  # set: stop the run and end in this state
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("error_step", sa.String(200), nullable=True),
    sa.Column("image_ref", sa.Text, nullable=True),
    sa.Column("image_digest", sa.String(100), nullable=True),
    sa.Column("commit_time", sa.DateTime(timezone=True), nullable=True),  # from the push, else from the clone
    sa.Column("commit_message", sa.String(1000), nullable=True),  # the commit's subject line, from the checkout
    sa.Column("commit_author", sa.String(256), nullable=True),
    sa.Column("settings_key", sa.String(64), nullable=True),  # the app's build settings when it was queued
    sa.Column("rewind", sa.Boolean, nullable=False, server_default=sa.false()),  # may move desired state back once
    sa.Column("no_cache", sa.Boolean, nullable=False, server_default=sa.false()),  # build without the build cache
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),  # this attempt began (resets on resume)
    sa.Column("backend_build_id", sa.String(200), nullable=True),  # e.g. the Depot build of the latest attempt
    sa.Column("backend_url", sa.Text, nullable=True),
    sa.Column("held_by_pin", sa.Boolean, nullable=False, server_default=sa.false()),  # succeeded while pinned
    sa.Column("image_deleted_at", sa.DateTime(timezone=True), nullable=True),  # retention deleted its image
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # `production` (the app's branch) or `pr-<number>`, a preview of that pull request
    sa.Column("environment", sa.String(40), nullable=False, server_default="production"),
    sa.Column("pr_number", sa.Integer, nullable=True),
    sa.Column("fork", sa.Boolean, nullable=False, server_default=sa.false()),  # a fork's preview: never secrets
    sa.Index("ix_builds_status_id", "status", "id"),
    sa.Index("ix_builds_app_id", "app_id", "id"),
    sa.Index("ix_builds_app_commit", "app_id", "commit_sha"),
    # One active build per (app, environment, commit): a second push of the same sha joins the first.
    sa.Index(
        "uq_builds_active_app_commit",
        "app_id",
        "environment",
        "commit_sha",
        unique=True,
        postgresql_where=sa.text(_ACTIVE_SQL),
        sqlite_where=sa.text(_ACTIVE_SQL),
    ),
)

build_transitions = sa.Table(
    "build_transitions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("build_id", sa.BigInteger, sa.ForeignKey("builds.id"), nullable=False, index=True),
    sa.Column("from_state", sa.String(20), nullable=True),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

desired_state = sa.Table(
    "desired_state",
    metadata,
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("build_id", sa.BigInteger, sa.ForeignKey("builds.id"), nullable=False),
    sa.Column("image_ref", sa.Text, nullable=False),
    sa.Column("image_digest", sa.String(100), nullable=False),
    sa.Column("commit_sha", sa.String(64), nullable=False),
    sa.Column("commit_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),  # the kind of its last change: build, rewind, rollback, pin, unpin
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("note", sa.Text, nullable=True),  # why, in words
    sa.Column("revision", sa.BigInteger, nullable=True),  # of its last change in desired_changes
    sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("held_build_id", sa.BigInteger, nullable=True),  # where a pin keeps it from going
    sa.Column("high_build_id", sa.BigInteger, nullable=True),  # the newest build automatic advances reached
    sa.Column("high_commit_time", sa.DateTime(timezone=True), nullable=True),
)

# One row: the last revision handed out. Taking the next one locks the row until commit, so revisions commit in
# order and a rolled-back change gives its number back (a sequence would leave gaps and commit out of order).
desired_revision = sa.Table(
    "desired_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

desired_changes = sa.Table(
    "desired_changes",
    metadata,
    sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("workspace", sa.String(100), nullable=False),
    sa.Column("app", sa.String(100), nullable=False),
    sa.Column("build_id", sa.BigInteger, sa.ForeignKey("builds.id"), nullable=True),  # NULL: a teardown
    sa.Column("image_ref", sa.Text, nullable=True),
    sa.Column("image_digest", sa.String(100), nullable=True),
    sa.Column("commit_sha", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("pinned", sa.Boolean, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),  # the build run that materializes it, if any
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("environment", sa.String(40), nullable=False, server_default="production"),
    sa.Index("ix_desired_changes_app", "app_id", "revision"),
)

# One row per pull request of an app with previews: its head, who opened it from where, the gate's verdict and
# what its environment (`pr-<number>`) points at.
previews = sa.Table(
    "previews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # open | closed
    sa.Column("head_sha", sa.String(64), nullable=False),
    sa.Column("head_ref", sa.String(255), nullable=True),
    sa.Column("head_repo_id", sa.BigInteger, nullable=True),
    sa.Column("head_repo_full_name", sa.String(200), nullable=True),
    sa.Column("author", sa.String(200), nullable=True),
    sa.Column("author_association", sa.String(40), nullable=True),
    sa.Column("fork", sa.Boolean, nullable=False),
    sa.Column("held_sha", sa.String(64), nullable=True),  # the head commit waiting for a person's approval
    sa.Column("held_reason", sa.Text, nullable=True),
    sa.Column("approved_sha", sa.String(64), nullable=True),  # approval covers this commit only
    sa.Column("approved_by", sa.String(200), nullable=True),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("build_id", sa.BigInteger, nullable=True),  # the latest preview build queued
    sa.Column("desired_build_id", sa.BigInteger, nullable=True),  # what the environment runs; NULL once torn down
    sa.Column("desired_revision", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("app_id", "number", name="uq_previews_app_number"),
)

build_logs = sa.Table(
    "build_logs",
    metadata,
    sa.Column("build_id", sa.BigInteger, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stream", sa.String(16), nullable=False),
    sa.Column("vertex", sa.Text, nullable=True),
    sa.Column("text", sa.Text, nullable=False),
)

# One Depot project per workspace (its build cache); the primary key makes a second create fail.
depot_projects = sa.Table(
    "depot_projects",
    metadata,
    sa.Column("workspace", sa.String(100), primary_key=True),
    sa.Column("project_id", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region", sa.String(50), nullable=False),
    sa.Column("organization_id", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Build-time variables as immutable versions: a change or a removal adds a row, nothing is updated but the
# ciphertext a key rotation re-encrypts. `app_id` NULL is the workspace's scope.
variables = sa.Table(
    "variables",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("secret", sa.Boolean, nullable=False),
    sa.Column("value", sa.Text, nullable=True),  # plain variables only
    sa.Column("ciphertext", sa.Text, nullable=True),  # secrets only: a Fernet token
    sa.Column("fingerprint", sa.String(64), nullable=True),  # keyed HMAC of the value; NULL once deleted
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("for_previews", sa.Boolean, nullable=False, server_default=sa.false()),  # a secret previews get too
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index(
        "uq_variables_version",
        "workspace_id",
        sa.func.coalesce(sa.column("app_id"), 0),
        "name",
        "version",
        unique=True,
    ),
    sa.Index("ix_variables_scope", "workspace_id", "app_id", "name", "version"),
)

# The variable versions a build was queued with: re-executions resolve exactly these.
build_variables = sa.Table(
    "build_variables",
    metadata,
    sa.Column("build_id", sa.BigInteger, sa.ForeignKey("builds.id"), primary_key=True),
    sa.Column("variable_id", sa.BigInteger, sa.ForeignKey("variables.id"), primary_key=True),
)

# Keys of the secrets store: the fingerprint key, kept encrypted under the secrets key.
secret_keys = sa.Table(
    "secret_keys",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Bearer tokens that reach one workspace; only the SHA-256 of a token is kept, the token is shown once.
workspace_tokens = sa.Table(
    "workspace_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),  # written at most once a minute
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

# Where a workspace's notifications go; the signing secret is sealed like a secret variable.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("secret_ciphertext", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),  # failed deliveries in a row
    sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)

# One message per endpoint subscribed to the event, written in the transaction of the change it tells of; the
# body is made (and kept, so retries send the same bytes) at the first attempt.
notification_outbox = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("message_id", sa.String(64), nullable=False, unique=True),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("build_id", sa.BigInteger, nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=True),  # delivered | dropped; NULL while undelivered
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_notification_outbox_pending", "endpoint_id", "outcome", "id"),
)

# Every attempt to deliver a message: the delivery log the API shows.
notification_attempts = sa.Table(
    "notification_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("outbox_id", sa.BigInteger, sa.ForeignKey("notification_outbox.id"), nullable=False),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index("ix_notification_attempts_endpoint", "endpoint_id", "id"),
)
