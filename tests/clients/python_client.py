"""Drives flowgate with the official MCP Python SDK, as tests/it/clients.rs asks.

usage: python_client.py URL TOKEN MODE NAME
MODE is the SDK's protocol mode: "legacy" (2025-11-25 sessions) or "2026-07-28".
Lists every tool (following next_cursor), calls a read tool (list_classes) and a write tool
(create_class named NAME), and prints one JSON object with what it saw. The SDK checks each
call's structuredContent against the outputSchema it listed, so a mismatch fails the call.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, token: str, mode: str, name: str) -> None:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30, read=60),
    )
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        tools, without_output_schema, cursor = [], [], None
        while True:
            page = await client.list_tools(cursor=cursor)
            tools += [t.name for t in page.tools]
            without_output_schema += [t.name for t in page.tools if not t.output_schema]
            cursor = page.next_cursor
            if not cursor:
                break
        read = await client.call_tool("list_classes", {"limit": 5})
        write = await client.call_tool(
            "create_class",
            {"name": name, "duration_minutes": 45, "capacity": 8, "price_cents": 1500},
        )
        print(
            json.dumps(
                {
                    "protocol": getattr(client, "protocol_version", None),
                    "tools": tools,
                    "without_output_schema": without_output_schema,
                    "read_error": read.is_error,
                    "read": read.structured_content,
                    "write_error": write.is_error,
                    "write": write.structured_content,
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
