"""The Onepin dialect's key tests again, on a `stepline serve` over PostgreSQL: the
contract with seed 002, attempts, paging, filters, the summary and workflow statistics.

The tests are the SQLite ones (imported); this module's `api_server` is the difference."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest
from test_onepin_runs import (  # noqa: F401  (imported to run here too)
    flaky,
    test_a_for_each_lists_each_iteration,
    test_a_retried_step_lists_one_entry_per_attempt,
    test_every_answer_matches_the_documented_model,
    test_runs_page_newest_first_with_next_and_prev_urls,
    test_status_filter_takes_a_comma_separated_list,
    test_steps_answer_in_seed_002s_shape,
    test_summary_counts_runs_by_status,
    test_unknown_run_and_another_organizations_run_are_404,
)
from test_onepin_workflows import (  # noqa: F401
    test_listing_counts_searches_and_pages,
    test_run_statistics_follow_the_runs,
)

from support.databases import serving
from support.server import ServeProcess
from support.server import make_key as mint_key

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, str]]:
    with serving("postgres", tmp_path_factory.mktemp("onepin-pg") / "home") as found:
        yield found


@pytest.fixture
def api_server(served: tuple[ServeProcess, str]) -> ServeProcess:
    return served[0]


@pytest.fixture
def make_key(served: tuple[ServeProcess, str]) -> Callable[..., str]:
    """As tests/api/conftest.py's, on this server's PostgreSQL database."""

    def make(organization: str, scopes: Iterable[str] = ("admin",), **options: object) -> str:
        return mint_key(served[1], organization, scopes, **options)

    return make
