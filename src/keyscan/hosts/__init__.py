"""Repositories named by a host: `--github-org`, `--github-user`, `--gitlab-group` (network).

    queries = check_queries(github_orgs=["acme"], gitlab_groups=["acme/platform"])
    listing = list_repositories(queries, HostOptions(), Settings(), os.environ, warn)
    for repo in listing.repositories: ...   # Listed: url, access (no token), flags

Names are checked before any request. An organisation that cannot be listed is one
warning and `listing.failed`; the others go on. A refused token, or rate-limit waits
past the bound, end the run (KeyscanError): nothing listed after it would work.
Forks and archived repositories are left out unless asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from keyscan.hosts import github, gitlab
from keyscan.hosts.api import ListingError, Settings
from keyscan.hosts.listed import Listed

__all__ = ["HostOptions", "HostQuery", "Listed", "Listing", "Settings", "check_queries",
           "list_repositories"]


@dataclass(frozen=True)
class HostQuery:
    kind: str  # "github-org", "github-user" or "gitlab-group"
    name: str

    @property
    def shown(self) -> str:
        what = {"github-org": "GitHub organisation", "github-user": "GitHub user",
                "gitlab-group": "GitLab group"}[self.kind]
        return f"{what} {self.name}"


@dataclass(frozen=True)
class HostOptions:
    github_api_url: str | None = None
    gitlab_api_url: str | None = None
    include_forks: bool = False
    include_archived: bool = False


@dataclass
class Listing:
    repositories: list[Listed] = field(default_factory=list)
    failed: int = 0  # queries that could not be listed, repositories without a URL (warned)
    forks_left_out: int = 0
    archived_left_out: int = 0


def check_queries(
    github_orgs: Iterable[str] = (), github_users: Iterable[str] = (),
    gitlab_groups: Iterable[str] = (),
) -> list[HostQuery]:
    """The queries, each name checked (KeyscanError for one no host could have)."""
    queries = [HostQuery("github-org", github.check_name(n, "org")) for n in github_orgs]
    queries += [HostQuery("github-user", github.check_name(n, "user")) for n in github_users]
    queries += [HostQuery("gitlab-group", gitlab.check_group(n)) for n in gitlab_groups]
    return list(dict.fromkeys(queries))


def list_repositories(
    queries: Iterable[HostQuery], options: HostOptions, settings: Settings,
    environ: Mapping[str, str], warn: Callable[[str], None],
) -> Listing:
    listing = Listing()
    seen: set[str] = set()
    for query in queries:
        settings.status(f"listing {query.shown}")
        try:
            for repo in _list(query, options, settings, environ):
                if isinstance(repo, str):
                    warn(f"{query.shown} lists {repo} without an https clone URL; skipped")
                    listing.failed += 1
                elif repo.url in seen:
                    continue
                elif repo.fork and not options.include_forks:
                    listing.forks_left_out += 1
                elif repo.archived and not options.include_archived:
                    listing.archived_left_out += 1
                else:
                    seen.add(repo.url)
                    listing.repositories.append(repo)
                    settings.status(f"listing {query.shown}: {len(listing.repositories)}")
        except ListingError as error:
            warn(f"could not list {query.shown}: {error}")
            listing.failed += 1
    settings.status("")
    return listing


def _list(
    query: HostQuery, options: HostOptions, settings: Settings, environ: Mapping[str, str]
) -> Iterator[Listed | str]:
    if query.kind == "gitlab-group":
        with gitlab.open_api(options.gitlab_api_url, environ, settings) as api:
            yield from gitlab.list_group(api, query.name, options.include_archived)
        return
    with github.open_api(options.github_api_url, environ, settings) as api:
        if query.kind == "github-org":
            yield from github.list_org(api, query.name)
        else:
            yield from github.list_user(api, query.name, bool(environ.get(github.TOKEN)))
