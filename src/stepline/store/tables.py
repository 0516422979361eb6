"""The tables, as SQLAlchemy Core metadata; Alembic migrations must produce exactly this.

Every row carries `organization_id` so that every query can be scoped to a tenant without
a join. Status and enum columns are plain strings: adding a status is then no migration.
"""

from __future__ import annotations

import sqlalchemy as sa

from stepline.store.types import UTCDateTime, json_type

# Stable constraint names, so later migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

ORDER_KEY_TYPE = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
"""A step's `order_key`: compared byte by byte on both databases."""


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _created_updated() -> tuple[sa.Column[object], sa.Column[object]]:
    return (
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


organizations = sa.Table(
    "organizations",
    metadata,
    _id(),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_organizations_name", "name", unique=True),
)

workflows = sa.Table(
    "workflows",
    metadata,
    _id(),
    sa.Column("organization_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("workspace_id", sa.Uuid(), nullable=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("latest_version", sa.Integer(), nullable=False),
    *_created_updated(),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Index("ix_workflows_organization_id_name", "organization_id", "name"),
    sa.Index("ix_workflows_organization_id_created_at", "organization_id", "created_at"),
    # A live workflow's name is unique in its workspace, or among its organization's
    # workflows of no workspace: two partial indexes, as NULL workspace ids never collide
    # in one. A deleted workflow (soft: deleted_at) holds no name.
    sa.Index(
        "ix_workflows_organization_id_name_live",
        "organization_id",
        "name",
        unique=True,
        sqlite_where=sa.text("workspace_id IS NULL AND deleted_at IS NULL"),
        postgresql_where=sa.text("workspace_id IS NULL AND deleted_at IS NULL"),
    ),
    sa.Index(
        "ix_workflows_organization_id_workspace_id_name_live",
        "organization_id",
        "workspace_id",
        "name",
        unique=True,
        sqlite_where=sa.text("workspace_id IS NOT NULL AND deleted_at IS NULL"),
        postgresql_where=sa.text("workspace_id IS NOT NULL AND deleted_at IS NULL"),
    ),
)

workflow_versions = sa.Table(
    "workflow_versions",
    metadata,
    _id(),
    sa.Column(
        "workflow_id",
        sa.Uuid(),
        sa.ForeignKey("workflows.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("organization_id", sa.Uuid(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("definition", json_type(), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_workflow_versions_workflow_id_version", "workflow_id", "version", unique=True),
)

runs = sa.Table(
    "runs",
    metadata,
    _id(),
    sa.Column("workflow_id", sa.Uuid(), sa.ForeignKey("workflows.id"), nullable=False),
    sa.Column("workflow_version", sa.Integer(), nullable=False),
    sa.Column("organization_id", sa.Uuid(), nullable=False),
    sa.Column("workspace_id", sa.Uuid(), nullable=True),
    sa.Column("user_id", sa.Uuid(), nullable=True),
    sa.Column("run_number", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("trigger", sa.String(64), nullable=False),
    sa.Column("inputs", json_type(), nullable=False),
    sa.Column("output", json_type(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("error_details", json_type(), nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("lease_owner", sa.Text(), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("parent_run_id", sa.Uuid(), nullable=True),
    sa.Column("parent_step_id", sa.Uuid(), nullable=True),
    sa.Column("replay_of", sa.Uuid(), nullable=True),
    sa.Column("idempotency_key", sa.Text(), nullable=True),
    sa.Column("concurrency_limit", sa.Integer(), nullable=True),
    sa.Column("total_tokens", sa.BigInteger(), nullable=True),
    sa.Column("total_cost", sa.Float(), nullable=True),
    sa.Column("cancel_requested_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # BigInteger: a run paused for human review can outlast 2**31 ms (24.8 days).
    sa.Column("duration_ms", sa.BigInteger(), nullable=True),
    sa.Index("ix_runs_status_lease_expires_at", "status", "lease_expires_at"),
    sa.Index("ix_runs_workflow_id_created_at", "workflow_id", "created_at"),
    sa.Index("ix_runs_organization_id_created_at", "organization_id", "created_at"),
    sa.Index("ix_runs_lease_owner", "lease_owner"),
    # A claim counts the runs of a workflow with a concurrency limit that are running.
    sa.Index("ix_runs_workflow_id_status", "workflow_id", "status"),
    # A cancel finds the children of a run, and a resumed step its child run, by these.
    sa.Index("ix_runs_parent_run_id_parent_step_id", "parent_run_id", "parent_step_id"),
    # Unique: a repeated Idempotency-Key finds the first run, even under a race (NULLs differ).
    sa.Index(
        "ix_runs_organization_id_idempotency_key",
        "organization_id",
        "idempotency_key",
        unique=True,
    ),
    # Run numbers are 1 + max per workflow; the unique index makes max() a seek and
    # turns a numbering race into an error instead of a duplicate.
    sa.Index("ix_runs_workflow_id_run_number", "workflow_id", "run_number", unique=True),
)

steps = sa.Table(
    "steps",
    metadata,
    _id(),
    sa.Column("run_id", sa.Uuid(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("workflow_id", sa.Uuid(), nullable=False),
    sa.Column("workflow_version", sa.Integer(), nullable=False),
    sa.Column("organization_id", sa.Uuid(), nullable=False),
    sa.Column("user_id", sa.Uuid(), nullable=True),
    sa.Column("node_id", sa.Text(), nullable=False),
    sa.Column("step_id", sa.Text(), nullable=False),
    sa.Column("node_type", sa.Text(), nullable=False),
    sa.Column("node_label", sa.Text(), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    # Byte order on PostgreSQL too (`stepline.step_order`; the keys are ASCII hex anyway).
    # Every insert writes it; the default is only what migration 0006 added it with.
    sa.Column("order_key", ORDER_KEY_TYPE, nullable=False, server_default=""),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("status_reason", sa.Text(), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("duration_ms", sa.BigInteger(), nullable=True),
    sa.Column("inputs", json_type(), nullable=True),
    sa.Column("outputs", json_type(), nullable=True),
    sa.Column("handle_inputs", json_type(), nullable=True),
    sa.Column("handle_outputs", json_type(), nullable=True),
    sa.Column("input_document", json_type(), nullable=True),
    sa.Column("output_document", json_type(), nullable=True),
    sa.Column("split_documents", json_type(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("error_stage", sa.String(32), nullable=True),
    sa.Column("error_category", sa.String(32), nullable=True),
    sa.Column("error_details", json_type(), nullable=True),
    sa.Column("model", sa.Text(), nullable=True),
    sa.Column("tokens", json_type(), nullable=True),
    sa.Column("cost", json_type(), nullable=True),
    sa.Column("retry_count", sa.Integer(), nullable=False),
    sa.Column("attempts", json_type(), nullable=False),
    sa.Column("loop_id", sa.Text(), nullable=True),
    sa.Column("iteration", sa.Integer(), nullable=True),
    sa.Column("iteration_context", json_type(), nullable=True),
    sa.Column("requires_human_review", sa.Boolean(), nullable=True),
    sa.Column("human_reviewed_at", UTCDateTime(), nullable=True),
    sa.Column("human_review_approved", sa.Boolean(), nullable=True),
    sa.Column("human_reviewer", sa.Text(), nullable=True),
    sa.Column("trace_spans", json_type(), nullable=True),
    sa.Column("step_metadata", json_type(), nullable=True),
    *_created_updated(),
    sa.Index("ix_steps_run_id_step_id", "run_id", "step_id", unique=True),
    # The listing order: every steps listing is a range scan of this index.
    sa.Index("ix_steps_run_id_order_key_step_id", "run_id", "order_key", "step_id"),
    sa.Index("ix_steps_run_id_node_id", "run_id", "node_id"),
    sa.Index("ix_steps_run_id_status", "run_id", "status"),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("organization_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("email", sa.Text(), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_users_organization_id_email", "organization_id", "email", unique=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(),
    sa.Column("organization_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("workspace_id", sa.Uuid(), nullable=True),
    sa.Column("name", sa.Text(), nullable=False),
    # The first characters of the key, shown in listings so a user can tell keys apart.
    sa.Column("prefix", sa.String(16), nullable=False),
    # sha256 of the whole key: keys are 256-bit random, so a fast hash is enough.
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("scopes", json_type(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Index("ix_api_keys_key_hash", "key_hash", unique=True),
    sa.Index("ix_api_keys_organization_id_created_at", "organization_id", "created_at"),
)

# Every transition of a run and of its steps, in the order it was committed: the source of
# the SSE stream (`id` is the event id a client resumes from with Last-Event-ID).
run_events = sa.Table(
    "run_events",
    metadata,
    # INTEGER PRIMARY KEY on SQLite is the rowid (autoincrementing); BIGSERIAL-like elsewhere.
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("run_id", sa.Uuid(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("organization_id", sa.Uuid(), nullable=False),
    # run.queued, run.running, run.completed..., step.running, step.completed...
    sa.Column("type", sa.String(48), nullable=False),
    sa.Column("step_uuid", sa.Uuid(), nullable=True),
    sa.Column("data", json_type(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_run_events_run_id_id", "run_id", "id"),
)

# An organization's secrets, encrypted (stepline.secrets.cipher); a name is unique per
# organization among the organization-wide ones (no workspace) and per workspace among a
# workspace's own: two partial indexes, since NULL workspace ids never collide in one.
# (Not `secrets`: that would shadow the standard library module where both are used.)
secrets_table = sa.Table(
    "secrets",
    metadata,
    _id(),
    sa.Column("organization_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("workspace_id", sa.Uuid(), nullable=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
    *_created_updated(),
    sa.Index(
        "ix_secrets_organization_id_name",
        "organization_id",
        "name",
        unique=True,
        sqlite_where=sa.text("workspace_id IS NULL"),
        postgresql_where=sa.text("workspace_id IS NULL"),
    ),
    sa.Index(
        "ix_secrets_organization_id_workspace_id_name",
        "organization_id",
        "workspace_id",
        "name",
        unique=True,
        sqlite_where=sa.text("workspace_id IS NOT NULL"),
        postgresql_where=sa.text("workspace_id IS NOT NULL"),
    ),
)

# An organization's files: a name and a type over a content-addressed blob (the blob is in
# the file storage, `stepline.files`, at `sha256`; organizations storing the same content
# share it). A deleted file (soft: deleted_at) is not found.
files = sa.Table(
    "files",
    metadata,
    _id(),
    sa.Column("organization_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("filename", sa.Text(), nullable=False),
    sa.Column("mime_type", sa.String(128), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Index("ix_files_organization_id_created_at_id", "organization_id", "created_at", "id"),
    sa.Index("ix_files_sha256", "sha256"),
)

# An organization's knowledge collections: named sets of chunked text searched by
# `knowledge_retrieval` steps. A deleted collection (soft: deleted_at) holds no name and
# has no chunks. `embedding_model`: the model its chunks are embedded with, for hybrid
# ranking (None: BM25 only); vectors of different models are never compared.
# `embedding_provider`: the configured provider that embeds them (None: not recorded, for
# collections made before it was, or embedded through an unnamed endpoint).
collections = sa.Table(
    "collections",
    metadata,
    _id(),
    sa.Column("organization_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("embedding_model", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("embedding_provider", sa.Text(), nullable=True),  # migration 0013
    sa.Index("ix_collections_organization_id_created_at_id", "organization_id", "created_at", "id"),
    sa.Index(
        "ix_collections_organization_id_name_live",
        "organization_id",
        "name",
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    ),
)

# A collection's chunks: each a slice of a source (a text, or an organization's file, all
# added at once under one `source_id`). The full-text index over `text` is per database
# and not described here (stepline.store.collections.SEARCH_OBJECTS): on SQLite an FTS5
# table whose rowid is `fts_rowid`, on PostgreSQL a generated tsvector column with a GIN
# index. `embedding` (little-endian float32s) is there when the collection's chunks were
# embedded for hybrid ranking. `token_count`: the words of `text` (BM25's length on
# PostgreSQL; NULL for chunks SQLite stored before it was counted).
chunks = sa.Table(
    "chunks",
    metadata,
    _id(),
    sa.Column("collection_id", sa.Uuid(), sa.ForeignKey("collections.id"), nullable=False),
    sa.Column("organization_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("source_id", sa.Uuid(), nullable=False),
    sa.Column("file_id", sa.Uuid(), nullable=True),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("page", sa.Integer(), nullable=True),
    sa.Column("char_start", sa.Integer(), nullable=False),
    sa.Column("char_end", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("fts_rowid", sa.BigInteger(), nullable=True),
    sa.Column("embedding", sa.LargeBinary(), nullable=True),
    sa.Column("token_count", sa.Integer(), nullable=True),  # migration 0014
    sa.Index(
        "ix_chunks_collection_id_source_id_position", "collection_id", "source_id", "position"
    ),
    sa.Index("ix_chunks_fts_rowid", "fts_rowid"),
)

# The live workers of the fleet: each `stepline worker` (and each `serve` with its worker)
# registers when it starts, beats every few seconds, and leaves when it stops. `id` is the
# lease owner its runs carry. Times are the database's clock on PostgreSQL.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("concurrency", sa.Integer(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Index("ix_workers_heartbeat_at", "heartbeat_at"),
)
