"""Mail through the SMTP server named by ``SMTP_URL`` (off when it is not set).

``send_mail`` sends one message now; ``send_invitation_mail`` is the hook accounts calls when the
Office invites someone. Notifications and their daily digests are mailed by
``codedraft.notifications.operations``.
"""
from codedraft.mail.operations import MailError, mail_enabled, send_invitation_mail, send_mail

__all__ = ["MailError", "mail_enabled", "send_invitation_mail", "send_mail"]
