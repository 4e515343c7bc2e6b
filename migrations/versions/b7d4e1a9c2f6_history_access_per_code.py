"""Who may see a code's live history: the clause_history_access table

Revision ID: b7d4e1a9c2f6
Revises: d5ca8001fb37
Create Date: 2026-12-06 20:15:00.000000

One optional row per code; a code without a row keeps the default (the drafting team only).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d4e1a9c2f6'
down_revision = 'd5ca8001fb37'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('clause_history_access',
    sa.Column('code_id', sa.Integer(), nullable=False),
    sa.Column('audience', sa.String(length=20), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_clause_history_access_changed_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['code_id'], ['codes.id'], name=op.f('fk_clause_history_access_code_id_codes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code_id', name=op.f('pk_clause_history_access'))
    )


def downgrade():
    op.drop_table('clause_history_access')
