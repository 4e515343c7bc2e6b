"""Real-time co-editing of clause bodies.

The pure core lives here and imports no web framework: ``core`` (the server replica of a clause's
Yjs document and the y-websocket wire protocol), ``minimal_edit`` (server-side edits as minimal
splices) and ``offsets`` (UTF-16 / code point / UTF-8 index conversions).  The Socket.IO adapter
sits beside it and only authorises, persists and forwards what the core decides.
"""
