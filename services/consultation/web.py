"""The reports over HTTP, for people: GET /reports/<regulation_id> returns the latest report
on how the consultation's comments were taken into account, as HTML."""

from __future__ import annotations

import asyncpg
from aiohttp import web

_NOT_FOUND = ("<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
              "<title>Chưa có báo cáo</title></head><body><p>Chưa có báo cáo tiếp thu, giải"
              " trình ý kiến cho dự thảo này.</p></body></html>")


class ReportServer:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool
        self._runner: web.AppRunner | None = None

    async def _report(self, request: web.Request) -> web.Response:
        async with self.pool.acquire() as conn:
            html = await conn.fetchval(
                "SELECT report_html FROM consultations WHERE regulation_id = $1",
                request.match_info["regulation_id"])
        return web.Response(text=html or _NOT_FOUND, status=200 if html else 404,
                            content_type="text/html", charset="utf-8")

    async def start(self, port: int) -> int:
        """Serves on 0.0.0.0:port (0 picks a free one); returns the port bound."""
        app = web.Application()
        app.router.add_get("/reports/{regulation_id}", self._report)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "0.0.0.0", port)
        await site.start()
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
