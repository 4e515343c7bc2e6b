"""Notifications: the working group told of activity on its chapters, batched per clause; the
unread count in every page's header; each person's mail preference and the daily digest."""
