"""`stepline files upload|list|get|delete`: an organization's stored files, which a run's
inputs refer to as `{"file_id": "<id>"}` (`stepline run WORKFLOW --file NAME=PATH`).

With a server (`--server` or STEPLINE_SERVER) they go over HTTP with the API key, to the
key's organization (through the SDK); without one they work on the configured database
and file storage directly, through the service verbs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from stepline.cli import local, remote
from stepline.cli.console import out, print_json, say
from stepline.cli.ids import parse_uuid
from stepline.cli.options import json_flag, limit_option, org_option, server_option

if TYPE_CHECKING:
    from rich.table import Table

    from stepline.runtime import Runtime
    from stepline.service import Caller

FILE_ID = "FILE_ID"


@click.group("files", no_args_is_help=True)
def files() -> None:
    """Stored files that runs' inputs refer to: upload, list, get, delete.

    On a server with --server or STEPLINE_SERVER, else on the database directly.
    """


async def _caller(runtime: Runtime, org: str, *, create: bool = False) -> Caller:
    from stepline.service import Caller

    return Caller(await local.organization_id(runtime.store, org, create=create), actor="cli")


def _document(record: Any) -> dict[str, Any]:
    keys = ("id", "filename", "mime_type", "size", "sha256", "created_at")
    return {key: v for key, v in record.model_dump(mode="json").items() if key in keys}


def file_inputs(pairs: tuple[str, ...]) -> dict[str, Path]:
    """`--file NAME=PATH` pairs: each input's name and the file to upload for it."""
    found: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path:
            raise click.BadParameter(f"{pair!r} is not NAME=PATH", param_hint="--file")
        file = Path(path).expanduser()
        if not file.is_file():
            raise click.BadParameter(f"{path} is not a readable file", param_hint="--file")
        found[name.strip()] = file
    return found


def file_option(command: Any) -> Any:
    """`--file NAME=PATH` (repeatable): upload PATH and pass `{"file_id": ...}` as input NAME."""
    return click.option(
        "--file",
        "file_pairs",
        metavar="NAME=PATH",
        multiple=True,
        help='Upload PATH and pass {"file_id": ...} as the input NAME; repeatable.',
    )(command)


async def upload_local(runtime: Runtime, caller: Caller, path: Path) -> dict[str, Any]:
    """Upload `path` through the service verbs: its document (id, name, type...)."""
    from stepline.service import files as verbs

    with path.open("rb") as stream:
        chunks = iter(lambda: stream.read(verbs.CHUNK), b"")
        record = await verbs.upload_file(runtime.service, caller, chunks, path.name)
    return _document(record)


@files.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@org_option("Without a server: the organization (created if missing).")
@server_option
@json_flag
def upload(path: Path, org: str, server: str | None, as_json: bool) -> None:
    """Upload the file at PATH; prints its id (pass it to a run as {"file_id": ID})."""
    if server:
        with remote.connect(server) as client:
            document = client.files.upload(path).model_dump(mode="json")
    else:

        async def main() -> dict[str, Any]:
            async with local.open_local() as runtime:
                caller = await _caller(runtime, org, create=True)
                return await upload_local(runtime, caller, path)

        document = local.run_async(main)
    if as_json:
        print_json(document)
    else:
        say(str(document["id"]))


@files.command("list")
@limit_option(50, "How many files to show, newest first.")
@org_option()
@server_option
@json_flag
def list_files(limit: int, org: str, server: str | None, as_json: bool) -> None:
    """List the stored files, newest first."""
    documents: list[dict[str, Any]] = []
    if server:
        with remote.connect(server) as client:
            for found in client.files.list(page_size=min(limit, 200)):
                documents.append(found.model_dump(mode="json"))
                if len(documents) >= limit:
                    break
    else:

        async def main() -> list[dict[str, Any]]:
            from stepline.service import files as verbs

            async with local.open_local() as runtime:
                caller = await _caller(runtime, org)
                page = await verbs.list_files(runtime.service, caller, limit=min(limit, 200))
                return [_document(record) for record in page.items]

        documents = local.run_async(main)
    if as_json:
        print_json(documents)
    else:
        out().print(files_table(documents))


@files.command("get")
@click.argument("file_id", metavar=FILE_ID)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the file's bytes to this path ('-' for stdout) instead of showing its details.",
)
@org_option()
@server_option
def get_file(file_id: str, output: Path | None, org: str, server: str | None) -> None:
    """Show a stored file's details, or with -o save its bytes."""
    ident: UUID = parse_uuid(file_id, FILE_ID)
    data: bytes | None = None
    if server:
        with remote.connect(server) as client:
            document = client.files.get(ident).model_dump(mode="json")
            if output is not None:
                data = client.files.download(ident)
    else:

        async def main() -> tuple[dict[str, Any], bytes | None]:
            from stepline.service import files as verbs

            async with local.open_local() as runtime:
                caller = await _caller(runtime, org)
                if output is None:
                    return _document(await verbs.get_file(runtime.service, caller, ident)), None
                record, content = await verbs.read_file(runtime.service, caller, ident)
                return _document(record), content

        document, data = local.run_async(main)
    if output is None:
        print_json(document)
        return
    assert data is not None
    if str(output) == "-":
        import sys

        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
        say(f"Saved {document['filename']} ({len(data)} bytes) to {output}.")


@files.command("delete")
@click.argument("file_id", metavar=FILE_ID)
@org_option()
@server_option
def delete_file(file_id: str, org: str, server: str | None) -> None:
    """Delete a stored file; runs that refer to it can no longer start."""
    ident: UUID = parse_uuid(file_id, FILE_ID)
    if server:
        with remote.connect(server) as client:
            client.files.delete(ident)
    else:

        async def main() -> None:
            from stepline.service import files as verbs

            async with local.open_local() as runtime:
                await verbs.delete_file(runtime.service, await _caller(runtime, org), ident)

        local.run_async(main)
    say(f"File {ident} deleted.")


def files_table(documents: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(title="Files", title_justify="left")
    for column in ("id", "filename", "type", "size", "created"):
        table.add_column(column)
    for doc in documents:
        table.add_row(
            str(doc["id"]),
            doc["filename"],
            doc["mime_type"],
            str(doc["size"]),
            str(doc.get("created_at") or "")[:19],
        )
    return table
