"""Python runner of the cross-language suite: a command interpreter over `stan_client`.

Reads one JSON command per line on stdin and answers one JSON line on stdout (see
integration/README.md, "Runner protocol"). Every scenario's logic lives in integration/run.py;
this file only maps commands onto the public API of the installed `stan_client` package.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import stan_client
from stan_client import StanError, StartPosition


class Sub:
    """A subscription plus the task that pulls its messages into a local queue."""

    def __init__(self, sub: stan_client.Subscription) -> None:
        self.sub = sub
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.unacked: dict[int, stan_client.Message] = {}
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for msg in self.sub:
                self.unacked[msg.sequence] = msg
                await self.queue.put(
                    {
                        "seq": msg.sequence,
                        "subject": msg.subject,
                        "data": base64.b64encode(msg.data).decode(),
                        "redelivered": msg.redelivered,
                        "ts_ns": msg.timestamp_nanos,
                    }
                )
            await self.queue.put({"end": True})
        except StanError as e:
            await self.queue.put({"end": True, "code": e.code})


class Conn:
    """A client plus the events seen since it connected."""

    def __init__(self, client: stan_client.Client) -> None:
        self.client = client
        self.events: list[str] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        try:
            async for ev in self.client.events():
                self.events.append(type(ev).__name__)
                self.changed.set()
        except StanError:
            pass


conns: dict[str, Conn] = {}
subs: dict[str, Sub] = {}


def start_position(spec: dict[str, Any] | None) -> Any:
    """The ``start_at=`` value of a protocol start object (``None``: the default)."""
    if spec is None:
        return None
    kind = spec["kind"]
    if kind == "new_only":
        return StartPosition.NEW_ONLY
    if kind == "last_received":
        return StartPosition.LAST_RECEIVED
    if kind == "first":
        return StartPosition.FIRST
    if kind == "sequence":
        return int(spec["value"])
    if kind == "time_ms":
        return datetime.fromtimestamp(spec["value"] / 1000, tz=UTC)
    if kind == "time_delta_ms":
        return timedelta(milliseconds=spec["value"])
    raise ValueError(f"unknown start kind {kind}")


def ms(value: Any) -> timedelta | None:
    """Milliseconds of the protocol as a ``timedelta`` (``None`` stays ``None``)."""
    return None if value is None else timedelta(milliseconds=value)


async def next_item(sub: Sub, timeout_ms: int) -> dict[str, Any] | None:
    """The next queued item of ``sub``, or ``None`` after ``timeout_ms``."""
    try:
        return await asyncio.wait_for(sub.queue.get(), timeout_ms / 1000)
    except TimeoutError:
        return None


async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
    """Carry out one command; returns the result fields of its answer."""
    op = cmd["op"]
    if op == "hello":
        return {"language": "python"}
    if op == "connect":
        client = await stan_client.connect(
            cmd["cluster"],
            cmd["client_id"],
            url=cmd["url"],
            auto_resume=cmd.get("auto_resume"),
            connect_wait=ms(cmd.get("connect_wait_ms")),
        )
        conns[cmd["conn"]] = Conn(client)
        return {}
    if op == "publish":
        data = base64.b64decode(cmd["data"])
        guid = await conns[cmd["conn"]].client.publish(cmd["subject"], data)
        return {"guid": guid}
    if op == "subscribe":
        sub = await conns[cmd["conn"]].client.subscribe(
            cmd["subject"],
            queue_group=cmd.get("queue"),
            durable_name=cmd.get("durable"),
            start_at=start_position(cmd.get("start")),
            max_in_flight=cmd.get("max_in_flight"),
            ack_wait=ms(cmd.get("ack_wait_ms")),
            manual_acks=bool(cmd.get("manual_acks", False)),
        )
        subs[cmd["sub"]] = Sub(sub)
        return {}
    if op == "next":
        item = await next_item(subs[cmd["sub"]], cmd["timeout_ms"])
        if item is None:
            return {"msg": None}
        if item.get("end"):
            return {"msg": None, "end": True, "end_code": item.get("code")}
        return {"msg": item}
    if op == "drain":
        msgs: list[dict[str, Any]] = []
        end = False
        while cmd.get("max") is None or len(msgs) < cmd["max"]:
            item = await next_item(subs[cmd["sub"]], cmd["idle_ms"])
            if item is None:
                break
            if item.get("end"):
                end = True
                break
            msgs.append(item)
        return {"msgs": msgs, "end": end}
    if op == "ack":
        await subs[cmd["sub"]].unacked.pop(cmd["seq"]).ack()
        return {}
    if op == "close_sub":
        await subs[cmd["sub"]].sub.close()
        return {}
    if op == "unsubscribe":
        await subs[cmd["sub"]].sub.unsubscribe()
        return {}
    if op == "close":
        await conns[cmd["conn"]].client.close()
        return {}
    if op == "wait_event":
        conn = conns[cmd["conn"]]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cmd["timeout_ms"] / 1000
        while cmd["kind"] not in conn.events:
            conn.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(conn.changed.wait(), remaining)
            except TimeoutError:
                break
        return {"found": cmd["kind"] in conn.events, "events": list(conn.events)}
    raise ValueError(f"unknown op {op!r}")


async def main() -> None:
    """Answer commands from standard input until ``exit`` or its end."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if not line.strip():
            continue
        cmd = json.loads(line)
        reply: dict[str, Any] = {"id": cmd.get("id")}
        if cmd["op"] == "exit":
            reply["ok"] = True
            print(json.dumps(reply), flush=True)
            break
        try:
            reply.update(await handle(cmd))
            reply["ok"] = True
        except StanError as e:
            reply.update(ok=False, code=e.code, error=str(e))
        except Exception as e:  # every failure goes back to the orchestrator
            reply.update(ok=False, code="RUNNER", error=f"{type(e).__name__}: {e}")
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
