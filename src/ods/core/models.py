"""Database tables. Migrations in alembic/ follow every change here."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    """Now in UTC, naive, to the second: how every time is stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


# Filenames compare byte for byte on every database (MySQL's default is case-blind).
FilenameType = String(255).with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql")


class Base(DeclarativeBase):
    pass


class Server(Base):
    """This instance's identity and settings: exactly one row, id 1."""

    __tablename__ = "server"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    iss: Mapped[str] = mapped_column(String(32), unique=True)
    key_encrypted: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255), default="")
    url: Mapped[str] = mapped_column(String(1024), default="")
    stage: Mapped[str] = mapped_column(String(8), default="Prod")
    firewalled_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The Ed25519 key this server signs statements with; made at first start.
    signing_key_encrypted: Mapped[str | None] = mapped_column(Text)
    # Whose packages this server takes: "any" origin in the mesh, or only "listed" ones.
    trust_policy: Mapped[str] = mapped_column(String(8), default="any", server_default="any")
    trusted_origins: Mapped[str | None] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="admin")
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # "local": ODS holds the password; "ldap": the directory checks it, and the role
    # comes from the user's directory groups at every login.
    source: Mapped[str] = mapped_column(String(10), default="local", server_default="local")


class Token(Base):
    """A bearer token: a login session or a long-lived API token. Only its hash is kept."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Package(Base):
    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    filename: Mapped[str] = mapped_column(FilenameType, unique=True)
    file_size: Mapped[int] = mapped_column(BigInteger)
    sha1: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    # The origin's SHA-512 (Jamf Pro's checksum); null until worked out for older versions.
    sha512: Mapped[str | None] = mapped_column(String(128))
    stage: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # Where this version was first uploaded, and the peer it is being fetched from.
    origin_iss: Mapped[str | None] = mapped_column(String(32))
    source_peer_id: Mapped[int | None] = mapped_column(
        ForeignKey("peers.id", ondelete="SET NULL", name="fk_packages_source_peer_id")
    )
    chunks_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The version this one replaced where it was uploaded (replace=true).
    replaces: Mapped[str | None] = mapped_column(String(36))
    # The origin's signed statement of this version, and the latest signed stage change.
    statement: Mapped[str | None] = mapped_column(Text)
    stage_statement: Mapped[str | None] = mapped_column(Text)


class Chunk(Base):
    """The digests of one 1 MiB chunk of a package."""

    __tablename__ = "chunks"

    package_id: Mapped[int] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha1: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))


class Event(Base):
    """Something that happened, for the audit log and, later, webhooks and email."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(150))
    package_uuid: Mapped[str | None] = mapped_column(String(36))
    # The kind's data (ods.events.catalogue) as JSON; NULL for events recorded before it.
    data: Mapped[str | None] = mapped_column(Text)


class Job(Base):
    """A unit of background work. The row is the truth; the queue only carries its key."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(190), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # The process running it (`Process.id`) while it is running; its lease is `updated`.
    owner: Mapped[str | None] = mapped_column(String(96), index=True)


class Process(Base):
    """A running `ods serve` or `ods worker`: who owns work in flight, and its lease."""

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    machine: Mapped[str] = mapped_column(String(160))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    started: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Peer(Base):
    """Another ODS this one is registered with, and the state of the link."""

    __tablename__ = "peers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    iss: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(1024))
    stage: Mapped[str] = mapped_column(String(8))
    firewalled_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    registered_on: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_contact: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)


class Nonce(Base):
    """A signed request's nonce, kept past the signature window so it cannot be replayed."""

    __tablename__ = "nonces"

    sender: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Tombstone(Base):
    """A package version that was deleted or replaced, so the mesh does not bring it back."""

    __tablename__ = "tombstones"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    filename: Mapped[str] = mapped_column(FilenameType)
    reason: Mapped[str] = mapped_column(String(16))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # Who vouches for the delete: a signed delete, or the successor's package statement.
    statement: Mapped[str | None] = mapped_column(Text)


class OriginKey(Base):
    """Another server's public signing key, pinned the first time it was seen."""

    __tablename__ = "origin_keys"

    iss: Mapped[str] = mapped_column(String(32), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The peer it came from: the server itself at registration, or a relay.
    via_iss: Mapped[str | None] = mapped_column(String(32))


class LoginFailure(Base):
    """One failed password check (or one in progress), kept for the throttle's window.

    Kept in the database so that every process of a site counts the same tries. `key`
    is a digest of what is limited (an account from an address, an address, an account's
    password), so the table holds no usernames or addresses.
    """

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)  # wall clock, milliseconds


class Webhook(Base):
    """An address events are posted to, in one of the formats (`ods.notifications.webhooks`)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    # Encrypted with DATABASE_KEY; empty for an unsigned webhook.
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # The event kinds it takes, as a JSON list; empty: every kind.
    events: Mapped[str] = mapped_column(Text, default="[]")
    format: Mapped[str] = mapped_column(String(8), default="ods")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why it was disabled by the server (a 410 answer); null when a user disabled it.
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # The newest event when it was made: it gets no event before that one.
    first_event_id: Mapped[int] = mapped_column(Integer, default=0)
    # The newest event considered for it: deliveries are made for events after this one.
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook: pending until delivered or given up on."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("webhook_id", "event_id", name="uq_webhook_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    # The event it delivers; null for a test ping and for a redelivery.
    event_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text, default="{}")
    message: Mapped[str] = mapped_column(Text, default="")
    event_created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    next_attempt: Mapped[dt.datetime | None] = mapped_column(DateTime)


class EmailSubscription(Base):
    """An address that is mailed about events of the kinds it names (none named: all)."""

    __tablename__ = "email_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(254))
    # JSON list of event kinds; [] means every kind.
    events: Mapped[str] = mapped_column(Text, default="[]")
    # 0: one mail per event; more: one mail gathering the events of each interval.
    digest_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # The newest event id already turned into email_items for this subscription.
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class EmailDelivery(Base):
    """One mail to one subscription: a single event, a digest of several, or a test."""

    __tablename__ = "email_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("email_subscriptions.id", ondelete="CASCADE"), index=True
    )
    # The kind of its one event, `digest` for several, `ping` for a test mail.
    event: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    next_attempt: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    # The process sending it now and since when (a claim that lapses, see email.deliver).
    owner: Mapped[str | None] = mapped_column(String(96))
    claimed: Mapped[dt.datetime | None] = mapped_column(DateTime)


class EmailItem(Base):
    """An event due to a subscription: waiting for its digest, or in its delivery.

    Unique per (subscription, event) so that processes dispatching at once agree.
    """

    __tablename__ = "email_items"
    __table_args__ = (UniqueConstraint("subscription_id", "event_id", name="uq_email_items"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("email_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(BigInteger, index=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("email_deliveries.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class JamfSettings(Base):
    """The Jamf Pro integration of this server: one row (`ods.integrations.jamf`)."""

    __tablename__ = "jamf_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    url: Mapped[str] = mapped_column(String(2048))
    client_id: Mapped[str] = mapped_column(String(255))
    # Encrypted with DATABASE_KEY; never shown.
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    # The stages whose Public packages get a record, as a JSON list.
    stages: Mapped[str] = mapped_column(Text, default="[]")
    category: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The newest event read for the integration: package events after it are synced.
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_sync: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class JamfRecord(Base):
    """A package record in Jamf Pro that ODS keeps: which package, and whether ODS made it
    (only a record ODS made is ever deleted by ODS)."""

    __tablename__ = "jamf_records"

    filename: Mapped[str] = mapped_column(FilenameType, primary_key=True)
    package_uuid: Mapped[str] = mapped_column(String(36))
    jamf_id: Mapped[str] = mapped_column(String(32))
    made_by_ods: Mapped[bool] = mapped_column(Boolean, default=True)
    sha512: Mapped[str] = mapped_column(String(128))
    synced: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
