"""`stepline collections create|list|add|search|delete`: knowledge collections, which the
`knowledge_retrieval` kind searches.

With a server (`--server` or STEPLINE_SERVER) they go through the SDK with the API key, to
the key's organization; without one through the service verbs on the configured database,
in the organization `--org`. A collection is named by its id or its name.

`add` takes a text (`--text` with `--source`), a file of the organization (`--file-id`),
or a PATH: the file is stored (uploaded, on a server) and parsed as any file of the
organization is (PDF, HTML, text...), labelled with its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from stepline.cli import local, remote
from stepline.cli.console import out, print_json, say
from stepline.cli.failures import fail
from stepline.cli.ids import as_uuid, parse_uuid
from stepline.cli.options import json_flag, org_option, server_option

if TYPE_CHECKING:
    from rich.table import Table

    from stepline.runtime import Runtime
    from stepline.sdk import Client
    from stepline.service import Caller


@click.group(no_args_is_help=True)
def collections() -> None:
    """Knowledge collections: create, list, add sources, search, delete.

    On a server with --server or STEPLINE_SERVER, else on the database directly.
    """


async def _caller(runtime: Runtime, org: str, *, create: bool = False) -> Caller:
    from stepline.service import Caller

    return Caller(await local.organization_id(runtime.store, org, create=create))


def _remote_id(client: Client, ref: str) -> UUID:
    """The id of the collection `ref` names (its id, else its name) on the server."""
    found = as_uuid(ref)
    if found is not None:
        return found
    for collection in client.collections.list():
        if collection.name == ref:
            return collection.id
    fail(f"no collection named {ref!r} on {client.base_url}")


@collections.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the collection holds.")
@org_option("Without a server: the organization (created if missing).")
@server_option
@json_flag
def create_collection(
    name: str, description: str, org: str, server: str | None, as_json: bool
) -> None:
    """Create a collection NAME."""
    document: dict[str, Any]
    if server:
        with remote.connect(server) as client:
            document = client.collections.create(name, description=description).model_dump(
                mode="json"
            )
    else:
        from stepline.service import collections as verbs

        async def main() -> dict[str, Any]:
            async with local.open_local() as runtime:
                caller = await _caller(runtime, org, create=True)
                record = await verbs.create_collection(runtime.service, caller, name, description)
                return record.model_dump(mode="json")

        document = local.run_async(main)
    if as_json:
        print_json(document)
    else:
        say(f"Collection {document['name']} created ({document['id']}).")


@collections.command("list")
@org_option()
@server_option
@json_flag
def list_collections(org: str, server: str | None, as_json: bool) -> None:
    """List the collections, newest first."""
    documents: list[dict[str, Any]]
    if server:
        with remote.connect(server) as client:
            documents = [c.model_dump(mode="json") for c in client.collections.list()]
    else:
        from stepline.service import collections as verbs

        async def main() -> list[dict[str, Any]]:
            async with local.open_local() as runtime:
                caller = await _caller(runtime, org)
                found: list[dict[str, Any]] = []
                after = None
                while True:
                    page = await verbs.list_collections(
                        runtime.service, caller, limit=200, after=after
                    )
                    found += [c.model_dump(mode="json") for c in page.items]
                    if not page.next_cursor:
                        return found
                    after = page.next_cursor

        documents = local.run_async(main)
    if as_json:
        print_json(documents)
    else:
        out().print(_collections_table(documents))


@collections.command("add")
@click.argument("collection", metavar="NAME_OR_ID")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--text", help="A text to add (with --source).")
@click.option("--source", help="The source's label (required with --text).")
@click.option("--file-id", help="A file of the organization, by its id.")
@org_option()
@server_option
@json_flag
def add_source(
    collection: str,
    path: str | None,
    text: str | None,
    source: str | None,
    file_id: str | None,
    org: str,
    server: str | None,
    as_json: bool,
) -> None:
    """Add a source to a collection: --text TEXT --source LABEL, --file-id ID, or PATH."""
    if sum(x is not None for x in (path, text, file_id)) != 1:
        fail("give one of --text (with --source), --file-id or a PATH")
    if text is not None and not source:
        fail("--text needs --source LABEL")
    file_uuid = parse_uuid(file_id, "--file-id") if file_id is not None else None
    document: dict[str, Any]
    if server:
        with remote.connect(server) as client:
            cid = _remote_id(client, collection)
            if path is not None:
                # Uploaded as a file, so the server parses it as any other (PDF included).
                file_uuid = client.files.upload(Path(path)).id
            if file_uuid is not None:
                added = client.collections.add_file(cid, file_uuid, source=source)
            else:
                added = client.collections.add_text(cid, text or "", source=source or "")
            document = added.model_dump(mode="json")
    else:
        document = local.run_async(
            lambda: _add_local(org, collection, path, text, source, file_uuid)
        )
    if as_json:
        print_json(document)
    else:
        chunks = document["chunk_count"]
        say(f"Added {document['source']} ({chunks} chunks, source {document['source_id']}).")


async def _add_local(
    org: str,
    collection: str,
    path: str | None,
    text: str | None,
    source: str | None,
    file_id: UUID | None,
) -> dict[str, Any]:
    from stepline.service import collections as verbs
    from stepline.service import files as file_verbs

    async with local.open_local() as runtime:
        caller = await _caller(runtime, org)
        found = await verbs.get_collection(runtime.service, caller, collection)
        if text is not None:
            added = await verbs.add_text(
                runtime.service, caller, found.id, text, source=source or ""
            )
        else:
            if path is not None:
                saved = await file_verbs.upload_file(
                    runtime.service, caller, Path(path).read_bytes(), Path(path).name
                )
                file_id = saved.id
            assert file_id is not None
            added = await verbs.add_file(runtime.service, caller, found.id, file_id, source=source)
        return added.model_dump(mode="json")


@collections.command("search")
@click.argument("collection", metavar="NAME_OR_ID")
@click.argument("query")
@click.option("--top-k", type=int, default=5, show_default=True, help="How many chunks.")
@org_option()
@server_option
@json_flag
def search_collection(
    collection: str, query: str, top_k: int, org: str, server: str | None, as_json: bool
) -> None:
    """The chunks of a collection that best match QUERY, best first."""
    document: dict[str, Any]
    if server:
        with remote.connect(server) as client:
            cid = _remote_id(client, collection)
            document = client.collections.search(cid, query, top_k=top_k).model_dump(mode="json")
    else:
        from stepline.service import collections as verbs

        async def main() -> dict[str, Any]:
            async with local.open_local() as runtime:
                caller = await _caller(runtime, org)
                found = await verbs.search(runtime.service, caller, collection, query, top_k=top_k)
                return verbs.search_output(query, found)

        document = local.run_async(main)
    if as_json:
        print_json(document)
        return
    say(f"{document['count']} chunks of {document['collection']} ({document['ranking']}):")
    for rank, hit in enumerate(document["results"], start=1):
        where = hit["source"] + (f" p.{hit['page']}" if hit.get("page") else "")
        out().print(f"{rank}. [{hit['score']:.3f}] {where}: {hit['text'][:200]}", markup=False)


@collections.command("delete")
@click.argument("collection", metavar="NAME_OR_ID")
@org_option()
@server_option
def delete_collection(collection: str, org: str, server: str | None) -> None:
    """Delete a collection and its chunks."""
    if server:
        with remote.connect(server) as client:
            client.collections.delete(_remote_id(client, collection))
    else:
        from stepline.service import collections as verbs

        async def main() -> None:
            async with local.open_local() as runtime:
                caller = await _caller(runtime, org)
                await verbs.delete_collection(runtime.service, caller, collection)

        local.run_async(main)
    say(f"Collection {collection} deleted.")


def _collections_table(documents: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(title="Collections", title_justify="left")
    for column in ("id", "name", "embeddings", "created"):
        table.add_column(column)
    for doc in documents:
        table.add_row(
            doc["id"],
            doc["name"],
            "/".join(filter(None, (doc.get("embedding_provider"), doc.get("embedding_model")))),
            str(doc.get("created_at") or "")[:19],
        )
    return table
