"""notifications said in each reader's language: message keys, parameters, mail language

Revision ID: c20d4e5f6a7b
Revises: f17b2c3d4e5a
Create Date: 2026-12-06 23:10:00

A notification keeps its English text (the fallback) and gains a message key (an English msgid
of codedraft.notifications.messages) and its parameters as JSON. Existing rows get a key where
their text is one the application wrote (activity batches, and the English sentences of replies,
dispositions, moderation, amendments and published responses); any other row keeps no key and
shows its text as written. The keys are copied here as text: a migration does not import the
application, whose messages may change later.
"""
import json
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c20d4e5f6a7b'
down_revision = 'f17b2c3d4e5a'
branch_labels = None
depends_on = None

ACTIVITY = "%(what)s on %(clause)s"
DISPOSITIONS = {"accepted": "accepted", "partly accepted": "partly_accepted", "rejected": "rejected",
                "addressed elsewhere": "addressed_elsewhere", "out of scope": "out_of_scope"}
# (English text as written before, key, how the parameters are read from the text)
SENTENCES = (
    (re.compile(r"(?P<author>.+) replied to your comment\.", re.S), "%(author)s replied to your comment."),
    (re.compile(r"Your comment on (?P<clause>.+?) was (?P<disposition>" + "|".join(DISPOSITIONS) + r"): (?P<reason>.*)",
                re.S),
     "Your comment on %(clause)s received the disposition “%(disposition)s”: %(reason)s"),
    (re.compile(r"Your comment was hidden by the Office: (?P<reason>.*)", re.S),
     "Your comment was hidden by the Office: %(reason)s"),
    (re.compile(r"Your comment is visible again\."), "Your comment is visible again."),
    (re.compile(r"Your amendment to (?P<clause>.+) was accepted and applied\.", re.S),
     "Your amendment to %(clause)s was accepted and applied."),
    (re.compile(r"Your amendment to (?P<clause>.+?) was rejected: (?P<reason>.*)", re.S),
     "Your amendment to %(clause)s was rejected: %(reason)s"),
    (re.compile(r"The responses to (?P<round>.+) are published\.", re.S), "The responses to %(round)s are published."),
)


def keyed(message):
    """(key, params) for a sentence the application wrote, else (None, None)."""
    for pattern, key in SENTENCES:
        found = pattern.fullmatch(message or "")
        if found:
            params = found.groupdict()
            if "disposition" in params:
                params["disposition"] = DISPOSITIONS[params["disposition"]]
            return key, params
    return None, None


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('message_params', sa.Text(), nullable=True))
    with op.batch_alter_table('notification_preferences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=20), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT n.id, n.kind, n.message, c.number, c.title, c.uid FROM notifications n "
        "LEFT JOIN clauses c ON c.id = n.clause_id")).fetchall()
    update = sa.text("UPDATE notifications SET message_key = :key, message_params = :params WHERE id = :id")
    for note_id, kind, message, number, title, uid in rows:
        if kind == "activity":
            heading = " ".join(part for part in (number, title) if part) or uid or ""
            key, params = ACTIVITY, {"clause": heading}
        else:
            key, params = keyed(message)
        if key is not None:
            connection.execute(update, {"key": key, "params": json.dumps(params, ensure_ascii=False, sort_keys=True),
                                        "id": note_id})


def downgrade():
    with op.batch_alter_table('notification_preferences', schema=None) as batch_op:
        batch_op.drop_column('language')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('message_params')
        batch_op.drop_column('message_key')
