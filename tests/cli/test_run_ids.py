"""Run ids as a user types them: whole, or a unique prefix; and `runs list` prints them
whole, so that they can be copied, even at 80 columns."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from uuid import UUID

import yaml

from stepline.records import RunRecord
from stepline.store import Store
from support.cli import stepline, stepline_json

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TWINS = [UUID("abcd0000-0000-4000-8000-000000000001"), UUID("abcd0000-0000-4000-8000-000000000002")]
LONE = UUID("ef012345-6789-4abc-8def-0123456789ab")


async def seed_runs(store: Store, ids: list[UUID]) -> None:
    org = await store.organizations.ensure()
    definition = yaml.safe_load((EXAMPLES / "order-triage.yaml").read_text())
    saved = await store.workflows.save(org, definition)
    for run_id in ids:
        await store.runs.create(
            RunRecord(
                id=run_id,
                workflow_id=saved.workflow.id,
                workflow_version=saved.version.version,
                organization_id=org,
                inputs={"amount": 1, "customer": "Ada"},
            )
        )


def seed_home(home: Path) -> None:
    async def main() -> None:
        store = await Store.connect(f"sqlite+aiosqlite:///{home / 'stepline.db'}")
        try:
            await store.upgrade()
            await seed_runs(store, [*TWINS, LONE])
        finally:
            await store.close()

    home.mkdir(parents=True, exist_ok=True)
    asyncio.run(main())


async def test_run_ids_between_finds_the_runs_of_a_prefix(store: Store) -> None:
    await seed_runs(store, [*TWINS, LONE])
    low, high = UUID("abcd" + "0" * 28), UUID("abcd" + "f" * 28)
    assert await store.runs.ids_between(low, high) == TWINS
    assert await store.runs.ids_between(low, high, limit=1) == TWINS[:1]
    low, high = UUID("ef" + "0" * 30), UUID("ef" + "f" * 30)
    assert await store.runs.ids_between(low, high) == [LONE]
    low, high = UUID("99" + "0" * 30), UUID("99" + "f" * 30)
    assert await store.runs.ids_between(low, high) == []


def test_a_unique_prefix_names_the_run(tmp_path: Path) -> None:
    seed_home(tmp_path)
    for prefix in ("ef", "EF0123", "ef012345-67", str(LONE)):
        shown = stepline_json("runs", "show", prefix, home=tmp_path)
        assert shown["id"] == str(LONE), prefix
    twin = stepline_json("steps", TWINS[1].hex, home=tmp_path)  # whole, without dashes
    assert twin == []  # the run is queued: no steps yet, but it was found


def test_an_ambiguous_prefix_is_exit_2_listing_the_candidates(tmp_path: Path) -> None:
    seed_home(tmp_path)
    done = stepline("runs", "show", "abcd", home=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "ambiguous" in done.stderr and "type more of it" in done.stderr
    assert all(str(twin) in done.stderr for twin in TWINS)
    assert str(LONE) not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_prefix_of_no_run_is_exit_2(tmp_path: Path) -> None:
    seed_home(tmp_path)
    done = stepline("runs", "show", "99", home=tmp_path)
    assert done.returncode == 2 and "no run with id 99" in done.stderr
    done = stepline("steps", "not-hex", home=tmp_path)
    assert done.returncode == 2 and "is not a UUID, nor the start of one" in done.stderr


def test_runs_list_at_80_columns_shows_whole_ids_and_workflow_names(tmp_path: Path) -> None:
    failing = str(EXAMPLES / "failing-step.json")
    rows = '{"rows": [{"qty": 1}, {"qty": "two"}]}'
    assert stepline("run", failing, "--inputs-json", rows, home=tmp_path).returncode == 1
    triage = str(EXAMPLES / "order-triage.yaml")
    done = stepline("run", triage, "-i", "amount=1", "-i", "customer=Ada", home=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = json.loads(stepline("runs", "list", "--json", home=tmp_path).stdout)

    table = stepline("runs", "list", home=tmp_path, COLUMNS="80")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for run in runs:
        assert any(run["id"] in line for line in lines), table.stdout
    assert "failing-step" in table.stdout and "order-triage" in table.stdout
    # What is copied from the table is what `runs show` takes.
    copied = next(line for line in lines if "order-triage" in line).split()[0]
    assert stepline_json("runs", "show", copied, home=tmp_path)["status"] == "completed"
