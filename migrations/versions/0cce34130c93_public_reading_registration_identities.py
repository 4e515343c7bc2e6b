"""public reading, registration applications, OpenID Connect identities

New tables only: which codes and rounds are public, stakeholders' applications for an account,
and the identity-provider subjects bound to accounts.

Revision ID: 0cce34130c93
Revises: 9a105476cfe0
Create Date: 2026-12-06 19:50:34.696636

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0cce34130c93'
down_revision = '9a105476cfe0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('external_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=300), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_external_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_identities')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_external_identities_issuer'))
    )
    with op.batch_alter_table('external_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_external_identities_user_id'), ['user_id'], unique=False)

    op.create_table('public_codes',
    sa.Column('code_id', sa.Integer(), nullable=False),
    sa.Column('data_licence', sa.String(length=100), nullable=False),
    sa.Column('made_public_at', sa.DateTime(), nullable=False),
    sa.Column('made_public_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['code_id'], ['codes.id'], name=op.f('fk_public_codes_code_id_codes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['made_public_by_id'], ['users.id'], name=op.f('fk_public_codes_made_public_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('code_id', name=op.f('pk_public_codes'))
    )
    op.create_table('registration_applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_id', sa.Integer(), nullable=False),
    sa.Column('organisation_name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['code_id'], ['codes.id'], name=op.f('fk_registration_applications_code_id_codes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_registration_applications_decided_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_registration_applications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration_applications')),
    sa.UniqueConstraint('user_id', name=op.f('uq_registration_applications_user_id'))
    )
    with op.batch_alter_table('registration_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_applications_code_id'), ['code_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_registration_applications_status'), ['status'], unique=False)

    op.create_table('published_rounds',
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_published_rounds_published_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['round_id'], ['feedback_rounds.id'], name=op.f('fk_published_rounds_round_id_feedback_rounds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('round_id', name=op.f('pk_published_rounds'))
    )


def downgrade():
    op.drop_table('published_rounds')
    with op.batch_alter_table('registration_applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_applications_status'))
        batch_op.drop_index(batch_op.f('ix_registration_applications_code_id'))

    op.drop_table('registration_applications')
    op.drop_table('public_codes')
    with op.batch_alter_table('external_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_external_identities_user_id'))

    op.drop_table('external_identities')
