"""A raw CSV played back as if it were live."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dorsimeter.io.rawcsv import RawStream
from dorsimeter.sources.base import Pacer, Source
from dorsimeter.types import ImuBatch


class ReplaySource(Source):
    """Replays a raw CSV in batches of ``batch_n`` samples at ``speed`` × real time, read chunk
    by chunk (a 10 h recording is not held in memory; the file is checked before the first)."""

    def __init__(self, path: str, speed: float = 1.0, side: str = "left",
                 batch_n: int = 10) -> None:
        super().__init__()
        self.rec = RawStream(path, default_side=side)
        self.rate_hz = self.rec.rate_hz
        self.knows_side = self.rec.has_side
        self.batch_n = batch_n
        self.pacer = Pacer(speed)
        self.name = f"replay of {path}"

    async def stream(self) -> AsyncIterator[ImuBatch]:
        for stretch in self.rec.batches():
            for i in range(0, len(stretch), self.batch_n):
                b = stretch.slice(i, i + self.batch_n)
                await self.pacer.wait_until(float(b.t_s[-1]))
                yield b
