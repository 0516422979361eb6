"""A Server-Sent Events decoder (the WHATWG event-stream format), fed one line at a time."""

from __future__ import annotations

import json
from typing import Any

from stepline.sdk.models import Event


class SseDecoder:
    """Collects `event:`, `id:` and `data:` fields until a blank line ends the event.

    Comments (lines starting with `:`, used as keep-alives) and `retry:` are ignored; an
    event without data is dropped, as the format says.
    """

    def __init__(self) -> None:
        self._type = ""
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._type = ""
            return None
        raw = "\n".join(self._data)
        event_type, event_id = self._type or "message", self._id
        self._type, self._data = "", []
        data: Any
        try:
            data = json.loads(raw)
        except ValueError:
            data = raw
        number = int(event_id) if event_id and event_id.isdigit() else None
        if isinstance(data, dict) and data.get("type") == event_type and "data" in data:
            # stepline sends the whole event record; its `data` is the transition's payload.
            return Event(
                id=number,
                type=event_type,
                data=data["data"],
                run_id=data.get("run_id"),
                step_record_id=data.get("step_id"),
                created_at=data.get("created_at"),
            )
        return Event(id=number, type=event_type, data=data)
