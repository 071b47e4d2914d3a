"""http_server.OneSendPerTurn: what uvicorn writes in one turn of the event loop (a response's
head, then its body) leaves in one send, in order; closing sends what is pending first."""

import asyncio

from wvo_mcp.edge.http_server import OneSendPerTurn


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def test_writes_of_one_turn_leave_together_and_in_order() -> None:
    async def run() -> list[bytes]:
        recording = Recording()
        transport = OneSendPerTurn(recording)
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")  # nothing to send adds no send
        transport.write(b'{"result":{}}')
        assert recording.sent == []  # not before the turn ends
        await asyncio.sleep(0)  # the loop's next turn
        transport.write(b"next")
        await asyncio.sleep(0)
        return recording.sent

    assert asyncio.run(run()) == [b'HTTP/1.1 200 OK\r\n\r\n{"result":{}}', b"next"]


def test_close_sends_what_is_pending_and_the_rest_passes_through() -> None:
    async def run() -> Recording:
        recording = Recording()
        transport = OneSendPerTurn(recording)
        transport.write(b"last words")
        transport.close()
        assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
        await asyncio.sleep(0)  # the flush already scheduled finds nothing more to send
        return recording

    recording = asyncio.run(run())
    assert recording.sent == [b"last words"] and recording.closed
