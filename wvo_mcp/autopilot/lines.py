"""A worker's output cut into lines of bounded size, a longer line dropped (pure).

Each line at most `limit` bytes (`Lines.feed`), a longer one dropped up to its newline and
counted, never held whole. Whatever arrives, in whatever pieces, costs at most `limit` bytes of
buffer. What the lines say (usage, the outcome): worker_output.py."""


class Lines:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0  # lines over the limit, dropped
        self.ended = 0  # lines that ended (kept or dropped): signs of life
        self._held = bytearray()  # the line so far, while it is within the limit
        self._dropping = False  # inside a line over the limit: skipped up to its newline

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines `chunk` completes, without their newlines."""
        found = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start:end]
            if self._dropping:
                self._dropping = False
            elif len(self._held) + len(piece) > self.limit:
                self.dropped += 1
            else:
                found.append(bytes(self._held + piece))
            self._held.clear()
            self.ended += 1
            start = end + 1
        rest = chunk[start:]
        if rest and not self._dropping:
            if len(self._held) + len(rest) > self.limit:
                self._held.clear()
                self._dropping = True
                self.dropped += 1
            else:
                self._held += rest
        return found

    def end(self) -> bytes | None:
        """The last line, when the stream ended without a newline after it."""
        last = bytes(self._held) if self._held and not self._dropping else None
        self._held.clear()
        return last
