"""email notifications: subscriptions, their pending events and their deliveries

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-27 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'email_subscriptions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('address', sa.String(length=254), nullable=False),
        sa.Column('events', sa.Text(), nullable=False),
        sa.Column('digest_minutes', sa.Integer(), nullable=False),
        sa.Column('last_event_id', sa.BigInteger(), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'email_deliveries',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('subscription_id', sa.Integer(), nullable=False),
        sa.Column('event', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('next_attempt', sa.DateTime(), nullable=True),
        sa.Column('owner', sa.String(length=96), nullable=True),
        sa.Column('claimed', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['subscription_id'], ['email_subscriptions.id'], ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_email_deliveries_subscription_id', 'email_deliveries', ['subscription_id']
    )
    op.create_index('ix_email_deliveries_status', 'email_deliveries', ['status'])
    op.create_index('ix_email_deliveries_next_attempt', 'email_deliveries', ['next_attempt'])
    op.create_table(
        'email_items',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('subscription_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=True),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['subscription_id'], ['email_subscriptions.id'], ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(['delivery_id'], ['email_deliveries.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('subscription_id', 'event_id', name='uq_email_items'),
    )
    op.create_index('ix_email_items_event_id', 'email_items', ['event_id'])
    op.create_index('ix_email_items_delivery_id', 'email_items', ['delivery_id'])


def downgrade() -> None:
    # Dropping a table drops its indexes; MariaDB refuses to drop an index alone
    # while a foreign key needs it.
    op.drop_table('email_items')
    op.drop_table('email_deliveries')
    op.drop_table('email_subscriptions')
