"""`keyscan audit`'s host options: repositories named by GitHub and GitLab, not by URL."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from keyscan.audit.client import Source
    from keyscan.hosts import HostQuery
    from keyscan.progress import Progress

F = TypeVar("F", bound=Callable[..., Any])
LOUD_WAIT = 30.0  # seconds: a wait this long is said on stderr when no progress line shows it


def host_options(func: F) -> F:
    decorators = [
        click.option("--github-org", "github_orgs", multiple=True, metavar="ORG",
                     help="Every repository of a GitHub organisation (GITHUB_TOKEN if set: "
                          "private ones too)."),
        click.option("--github-user", "github_users", multiple=True, metavar="USER",
                     help="Every repository a GitHub user owns."),
        click.option("--github-api-url", metavar="URL",
                     help="GitHub Enterprise Server's API, e.g. https://ghe.example.com/api/v3 "
                          "(default: https://api.github.com)."),
        click.option("--gitlab-group", "gitlab_groups", multiple=True, metavar="GROUP",
                     help="Every project of a GitLab group and its subgroups (GITLAB_TOKEN "
                          "if set)."),
        click.option("--gitlab-api-url", metavar="URL",
                     help="A self-managed GitLab, e.g. https://gitlab.example.com "
                          "(default: https://gitlab.com)."),
        click.option("--include-forks", is_flag=True, help="Also audit forks hosts list."),
        click.option("--include-archived", is_flag=True,
                     help="Also audit archived repositories hosts list."),
        click.option("--rate-limit-wait", type=click.FloatRange(min=0), default=3600.0,
                     show_default=True, metavar="SECONDS",
                     help="Longest time to wait, in all, for hosts' API rate limits."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@dataclass
class HostListing:
    sources: list[Source] = field(default_factory=list)
    failed: int = 0  # could not be listed (warned)


@dataclass
class HostArgs:
    github_orgs: tuple[str, ...]
    github_users: tuple[str, ...]
    github_api_url: str | None
    gitlab_groups: tuple[str, ...]
    gitlab_api_url: str | None
    include_forks: bool
    include_archived: bool
    rate_limit_wait: float

    @classmethod
    def pop(cls, kwargs: dict[str, Any]) -> HostArgs:
        return cls(**{name: kwargs.pop(name) for name in cls.__dataclass_fields__})

    def queries(self) -> list[HostQuery]:
        if not (self.github_orgs or self.github_users or self.gitlab_groups):
            return []  # no host named: no HTTP client to import
        from keyscan.hosts import check_queries

        return check_queries(self.github_orgs, self.github_users, self.gitlab_groups)

    def listing(self, queries: list[HostQuery], display: Progress,
                warn: Callable[[str], None]) -> HostListing:
        """The repositories the hosts list, as audit sources (https URLs, no credentials)."""
        if not queries:
            return HostListing()
        from keyscan.audit.client import Source
        from keyscan.hosts import HostOptions, Settings, list_repositories

        def status(text: str) -> None:
            display.show(f"keyscan audit: {text}" if text else "keyscan audit: listing")

        def waiting(seconds: float, why: str) -> None:
            if seconds >= LOUD_WAIT and not sys.stderr.isatty():
                warn(f"waiting {seconds:.0f} s for {why} (at most --rate-limit-wait in all)")

        options = HostOptions(self.github_api_url, self.gitlab_api_url, self.include_forks,
                              self.include_archived)
        settings = Settings(max_wait=self.rate_limit_wait, status=status, waiting=waiting)
        listed = list_repositories(queries, options, settings, os.environ, warn)
        sources = [Source(repo.url, repo.url, repo.access) for repo in listed.repositories]
        return HostListing(sources, listed.failed)
