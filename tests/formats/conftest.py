"""Shared fixtures: the real-world corpus, a fixed local zone, and file helpers."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from icalendar.error import GloballyUniqueTZIDGuessed

from carnet.daemon.formats import ParsedFile, parse_file
from carnet.protocol.errors import ImportRejected

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
# Floating iCalendar times and FHIR dates are read in the machine's zone; the tests
# pin one with a summer offset different from winter's, so DST mistakes show.
ZONE = "Europe/Paris"


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


@contextmanager
def quiet_icalendar() -> Iterator[None]:
    # icalendar warns when it guesses a vendor-prefixed TZID; the corpus has several.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        yield


@pytest.fixture(autouse=True)
def _local_zone() -> Iterator[None]:
    with local_zone(ZONE), quiet_icalendar():
        yield


@pytest.fixture
def in_zone() -> Callable[[str], AbstractContextManager[None]]:
    """Run part of a test as if this machine were in another zone."""
    return local_zone


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(
            f"the shared corpus is not at {CORPUS.resolve()}; it sits beside the repository"
            " as shared/corpus (see its README.md)"
        )
    return CORPUS.resolve()


@pytest.fixture(scope="session")
def corpus_results(corpus: Path) -> dict[Path, ParsedFile | ImportRejected]:
    """Every corpus file, parsed once: its ParsedFile or the ImportRejected it raised."""
    results: dict[Path, ParsedFile | ImportRejected] = {}
    with local_zone(ZONE), quiet_icalendar():
        for path in sorted(corpus.rglob("*")):
            if path.is_file() and path.name != "README.md":
                try:
                    results[path] = parse_file(path)
                except ImportRejected as error:
                    results[path] = error
    return results


@pytest.fixture
def parse(tmp_path: Path) -> Callable[..., ParsedFile]:
    """Write content to a file and import it."""

    def run(content: str | bytes, name: str = "input") -> ParsedFile:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return parse_file(path)

    return run


@pytest.fixture
def rejection(parse: Callable[..., ParsedFile]) -> Callable[..., str]:
    """Import content that must be refused; returns the one-line message."""

    def run(content: str | bytes, name: str = "input") -> str:
        with pytest.raises(ImportRejected) as caught:
            parse(content, name)
        message = str(caught.value)
        assert "\n" not in message and "\r" not in message
        assert message.startswith(f"Cannot import file: {name}: ")
        return message

    return run
