"""GitHub (and GitHub Enterprise Server): the repositories of an organisation or a user.

REST API v3: `GET /orgs/{org}/repos?type=all` lists what the token can see, private
repositories included. For a user, `/users/{user}/repos` lists public ones; when the
token belongs to that user, `/user/repos?affiliation=owner` adds the private ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from keyscan.errors import KeyscanError
from keyscan.hosts.api import HostApi, ListingError, Settings
from keyscan.hosts.gitauth import GitAccess
from keyscan.hosts.listed import Listed, repository_from

DEFAULT_API = "https://api.github.com"
TOKEN = "GITHUB_TOKEN"
GIT_USERNAME = "x-access-token"  # GitHub takes any user name beside a token; this one is its own
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$")


def api_base(url: str | None) -> str:
    """The REST base: api.github.com as is, a GHES host gets `/api/v3` if it lacks it."""
    base = (url or DEFAULT_API).strip().rstrip("/")
    rest = base.partition("://")[2]
    if "/" not in rest and rest.lower() != "api.github.com":
        base += "/api/v3"
    return base


def web_origin(api: HostApi) -> str:
    """Where the clones are: github.com for api.github.com, else the API's own origin."""
    return "https://github.com" if api.origin == "https://api.github.com" else api.origin


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise KeyscanError(
            f"--github-{what} takes a GitHub {what} name (letters, digits, '-', '.', '_'): fix it"
        )
    return name


def open_api(url: str | None, environ: Mapping[str, str], settings: Settings) -> HostApi:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    token = environ.get(TOKEN, "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return HostApi(api_base(url), "GitHub", headers, settings)


def list_org(api: HostApi, org: str) -> Iterator[Listed | str]:
    pages = api.pages(f"/orgs/{org}/repos", {"type": "all", "per_page": "100", "sort": "full_name"})
    try:
        yield from _repositories(api, pages)
    except ListingError as error:
        if error.status == 404:
            raise ListingError(f"not found at {api.host} (a user? use --github-user)") from None
        raise


def list_user(api: HostApi, user: str, has_token: bool) -> Iterator[Listed | str]:
    pages = None
    if has_token and _token_login(api).lower() == user.lower():
        params = {"affiliation": "owner", "visibility": "all", "per_page": "100"}
        pages = api.pages("/user/repos", params)
    if pages is None:
        params = {"type": "owner", "per_page": "100", "sort": "full_name"}
        pages = api.pages(f"/users/{user}/repos", params)
    try:
        yield from _repositories(api, pages)
    except ListingError as error:
        if error.status == 404:
            hint = "(an organisation? use --github-org)"
            raise ListingError(f"not found at {api.host} {hint}") from None
        raise


def _token_login(api: HostApi) -> str:
    """The login the token belongs to ('' if the API will not say: a fine-grained token)."""
    try:
        document = api.get("/user")
    except ListingError:
        return ""
    login = document.get("login") if isinstance(document, dict) else None
    return login if isinstance(login, str) else ""


def _repositories(api: HostApi, pages: Iterator[list[object]]) -> Iterator[Listed | str]:
    access = GitAccess(web_origin(api), TOKEN, GIT_USERNAME)
    for page in pages:
        for item in page:
            if not isinstance(item, dict):
                continue
            yield repository_from(
                item.get("clone_url"),
                name=item.get("full_name"),
                private=item.get("private") is True,
                fork=item.get("fork") is True,
                archived=item.get("archived") is True,
                access=access,
            )
