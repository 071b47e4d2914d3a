"""Output capping: keep the last N bytes of a stream and say how much was cut (pure)."""

from collections import deque


class Tail:
    """The last `limit` bytes written, and the total written."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._chunks: deque[bytes] = deque()
        self._kept = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        if len(data) >= self.limit:
            self._chunks.clear()
            self._chunks.append(data[-self.limit :])
            self._kept = self.limit
            return
        self._chunks.append(data)
        self._kept += len(data)
        while self._kept - len(self._chunks[0]) >= self.limit:
            self._kept -= len(self._chunks.popleft())

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def text(self) -> str:
        """The tail as text, led by a note when the start was cut."""
        data = b"".join(self._chunks)[-self.limit :]
        text = data.decode("utf-8", errors="replace")
        if not self.truncated:
            return text
        cut = self.total - len(data)
        return f"[... {cut} earlier bytes cut; the last {len(data)} follow]\n{text}"
