"""login failures: the throttle's counts, shared by every process of a site

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('at_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_login_failures_key', 'login_failures', ['key'])
    op.create_index('ix_login_failures_at_ms', 'login_failures', ['at_ms'])


def downgrade() -> None:
    op.drop_index('ix_login_failures_at_ms', table_name='login_failures')
    op.drop_index('ix_login_failures_key', table_name='login_failures')
    op.drop_table('login_failures')
