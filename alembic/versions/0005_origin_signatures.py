"""origin signatures: signing key, trust policy, pinned keys, statements

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('server', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signing_key_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column('trust_policy', sa.String(length=8), server_default='any', nullable=False)
        )
        batch_op.add_column(sa.Column('trusted_origins', sa.Text(), nullable=True))
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('statement', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('stage_statement', sa.Text(), nullable=True))
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.add_column(sa.Column('statement', sa.Text(), nullable=True))
    op.create_table(
        'origin_keys',
        sa.Column('iss', sa.String(length=32), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('first_seen', sa.DateTime(), nullable=False),
        sa.Column('via_iss', sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint('iss'),
    )


def downgrade() -> None:
    op.drop_table('origin_keys')
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.drop_column('statement')
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.drop_column('stage_statement')
        batch_op.drop_column('statement')
    with op.batch_alter_table('server', schema=None) as batch_op:
        batch_op.drop_column('trusted_origins')
        batch_op.drop_column('trust_policy')
        batch_op.drop_column('signing_key_encrypted')

