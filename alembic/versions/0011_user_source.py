"""users.source: local accounts, or directory (LDAP) accounts

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'users',
        sa.Column('source', sa.String(length=10), nullable=False, server_default='local'),
    )


def downgrade() -> None:
    op.drop_column('users', 'source')
