"""The claim book of awareness client ids, shared by every process through Redis.

With several processes, a socket on one may name a client id introduced through another; the
owner must be known to all of them (codedraft.collab.presence.ClaimBook).
"""
from __future__ import annotations

import redis

#: A claim outlives its socket at most this long when a process dies without releasing it.
CLAIM_SECONDS = 24 * 3600
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


class RedisClaimBook:
    def __init__(self, url: str, prefix: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=5)
        self._prefix = prefix
        self._release = self._redis.register_script(_RELEASE)

    def _key(self, clause: str) -> str:
        return f"{self._prefix}:presence:{clause}"

    def claim(self, clause: str, client_id: int, user_id: int) -> bool:
        key = self._key(clause)
        pipe = self._redis.pipeline()
        pipe.hsetnx(key, str(client_id), str(user_id))
        pipe.hget(key, str(client_id))
        pipe.expire(key, CLAIM_SECONDS)
        _created, owner, _expiry = pipe.execute()
        return owner is not None and owner.decode() == str(user_id)

    def release(self, clause: str, client_id: int, user_id: int) -> None:
        self._release(keys=[self._key(clause)], args=[str(client_id), str(user_id)])

    def owner(self, clause: str, client_id: int) -> int | None:
        found = self._redis.hget(self._key(clause), str(client_id))
        return int(found) if found is not None else None
