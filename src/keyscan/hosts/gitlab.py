"""GitLab (gitlab.com or self-managed): the projects of a group and all its subgroups.

REST API v4: `GET /groups/{id}/projects?include_subgroups=true` lists what the token can
see, private and internal projects included. Projects only shared into the group
(`with_shared`) belong to other namespaces and are left out, as GitLab's own group
page does by default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from urllib.parse import quote

from keyscan.errors import KeyscanError
from keyscan.hosts.api import HostApi, ListingError, Settings
from keyscan.hosts.gitauth import GitAccess
from keyscan.hosts.listed import Listed, repository_from

DEFAULT_API = "https://gitlab.com"
TOKEN = "GITLAB_TOKEN"
GIT_USERNAME = "oauth2"  # GitLab's documented user name beside a token over HTTPS
_GROUP = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$")


def api_base(url: str | None) -> str:
    """The REST base: the instance's URL with `/api/v4` (given or added)."""
    base = (url or DEFAULT_API).strip().rstrip("/")
    return base if base.endswith("/api/v4") else base + "/api/v4"


def check_group(group: str) -> str:
    group = group.strip("/")
    if not _GROUP.match(group) or len(group) > 1000:
        raise KeyscanError(
            "--gitlab-group takes a group's full path (e.g. 'acme' or 'acme/platform'): fix it"
        )
    return group


def open_api(url: str | None, environ: Mapping[str, str], settings: Settings) -> HostApi:
    headers = {"Accept": "application/json"}
    token = environ.get(TOKEN, "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return HostApi(api_base(url), "GitLab", headers, settings)


def list_group(api: HostApi, group: str, include_archived: bool) -> Iterator[Listed | str]:
    params = {
        "include_subgroups": "true",
        "with_shared": "false",
        "per_page": "100",
        "order_by": "id",
        "sort": "asc",
    }
    if not include_archived:
        params["archived"] = "false"  # fewer pages; the filter after this one still checks
    access = GitAccess(api.origin, TOKEN, GIT_USERNAME)
    try:
        for page in api.pages(f"/groups/{quote(group, safe='')}/projects", params):
            for item in page:
                if isinstance(item, dict):
                    yield _project(item, access)
    except ListingError as error:
        if error.status == 404:
            raise ListingError(f"not found at {api.host}") from None
        raise


def _project(item: dict[str, object], access: GitAccess) -> Listed | str:
    return repository_from(
        item.get("http_url_to_repo"),
        name=item.get("path_with_namespace"),
        private=item.get("visibility") in ("private", "internal"),
        fork=isinstance(item.get("forked_from_project"), dict),
        archived=item.get("archived") is True,
        access=access,
    )
