"""Session → (user turn, backend) memory: the second line of stickiness.

Why: the first line is the backend tag inside our tool_use ids (router.ids). When a tool_result's
id carries no tag (history written by another gateway, ids rewritten by a client), the gateway asks
this memory which backend served the same user turn of the same session. One entry per session
(only the latest turn matters: a new prompt starts a new turn), LRU-bounded so a long-running
gateway does not grow, and lock-protected because requests of one session arrive concurrently
(title generation runs beside the first turn, parallel subagents share a session).
"""

from __future__ import annotations

from turnroute.router.features import Features, TurnKind
from turnroute.router.lru import LRU

__all__ = ["TurnMemory", "sticky_key"]

# Turns that belong to a user turn's tool loop; side calls (title, count_tokens, …) never
# overwrite what the turn itself was routed to.
_LOOP_TURNS = (TurnKind.PROMPT, TurnKind.TOOL_RESULT, TurnKind.SUBAGENT)


def sticky_key(f: Features) -> tuple[str, int] | None:
    """(session key, user_turn) for a request that takes part in a tool loop, else None.

    Subagent calls live in their own conversation (their user_turn restarts at 1), so they get a
    separate session key and never collide with the main conversation's turn numbers.
    """
    if not f.session_id or f.turn not in _LOOP_TURNS:
        return None
    session = f.session_id + "#subagent" if f.turn is TurnKind.SUBAGENT else f.session_id
    return session, f.user_turn


class TurnMemory:
    """Bounded, thread-safe memory of which backend serves each session's current user turn."""

    def __init__(self, max_sessions: int = 1024):
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.max_sessions = max_sessions
        self._data: LRU[str, tuple[int, str]] = LRU(max_sessions)

    def remember(self, session_id: str | None, user_turn: int, backend: str) -> None:
        """Record that `backend` serves `user_turn` of `session_id` (evicts the oldest session)."""
        if session_id:
            self._data.put(session_id, (user_turn, backend))

    def recall(self, session_id: str | None, user_turn: int) -> str | None:
        """The backend that served this exact user turn, or None (other turn, unknown session)."""
        hit = self._data.get(session_id) if session_id else None
        return hit[1] if hit is not None and hit[0] == user_turn else None

    def remember_features(self, f: Features, backend: str) -> None:
        """Gateway helper: remember the backend that actually served the request `f` (after fallback)."""
        key = sticky_key(f)
        if key is not None:
            self.remember(key[0], key[1], backend)

    def recall_features(self, f: Features) -> str | None:
        """Gateway helper: the remembered backend for `f`'s user turn, if any."""
        key = sticky_key(f)
        return self.recall(key[0], key[1]) if key is not None else None

    def __len__(self) -> int:
        return len(self._data)
