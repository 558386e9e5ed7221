"""SHA-512 of every package version; the Jamf Pro integration and the records it keeps

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILENAME = sa.String(length=255).with_variant(
    mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mysql'
)


def upgrade() -> None:
    # Null for versions stored before: `ods.packages.sha512` computes them after start.
    with op.batch_alter_table('packages') as batch:
        batch.add_column(sa.Column('sha512', sa.String(length=128), nullable=True))
    op.create_table(
        'jamf_settings',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('url', sa.String(length=2048), nullable=False),
        sa.Column('client_id', sa.String(length=255), nullable=False),
        sa.Column('client_secret_encrypted', sa.Text(), nullable=False),
        sa.Column('stages', sa.Text(), nullable=False),
        sa.Column('category', sa.String(length=255), nullable=True),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('last_event_id', sa.BigInteger(), nullable=False),
        sa.Column('last_sync', sa.DateTime(), nullable=True),
        sa.Column('last_outcome', sa.String(length=16), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('updated', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'jamf_records',
        sa.Column('filename', FILENAME, nullable=False),
        sa.Column('package_uuid', sa.String(length=36), nullable=False),
        sa.Column('jamf_id', sa.String(length=32), nullable=False),
        sa.Column('made_by_ods', sa.Boolean(), nullable=False),
        sa.Column('sha512', sa.String(length=128), nullable=False),
        sa.Column('synced', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('filename'),
    )


def downgrade() -> None:
    op.drop_table('jamf_records')
    op.drop_table('jamf_settings')
    with op.batch_alter_table('packages') as batch:
        batch.drop_column('sha512')
