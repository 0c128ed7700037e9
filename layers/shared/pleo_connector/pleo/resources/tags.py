"""Tag groups (accounting dimensions) and tags (their values): Gjoll API, `/v0`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pleo_connector.pleo.models import Tag, TagGroup
from pleo_connector.pleo.transport import Transport, api_path

if TYPE_CHECKING:
    import builtins
    from collections.abc import AsyncIterator, Sequence

ARCHIVE_BATCH = 100


class TagGroups:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def list(
        self,
        company_id: str,
        *,
        include_archived: bool = False,
        include_tags_count: bool = False,
    ) -> list[TagGroup]:
        """Every tag group of the company (this list is not paginated)."""
        return await self._transport.request_list(
            TagGroup,
            "GET",
            "/v0/tag-groups",
            operation="getTagGroups",
            params={
                "company_id": company_id,
                "include_archived": include_archived,
                "include_tags_count": include_tags_count or None,
            },
        )

    async def get(self, group_id: str) -> TagGroup:
        return await self._transport.request_model(
            TagGroup,
            "GET",
            api_path("/v0/tag-groups/{groupId}", groupId=group_id),
            operation="getTagGroup",
        )

    async def create(
        self,
        company_id: str,
        *,
        code: str,
        name: str,
        archived: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> TagGroup:
        body: dict[str, Any] = {"archived": archived, "code": code, "name": name}
        if metadata is not None:
            body["metadata"] = metadata
        return await self._transport.request_model(
            TagGroup,
            "POST",
            "/v0/tag-groups",
            operation="createTagGroup",
            params={"company_id": company_id},
            body=body,
            expect=(200, 201),
            retry_safe=False,
        )

    async def update(
        self,
        group_id: str,
        *,
        code: str,
        name: str,
        archived: bool,
        metadata: dict[str, str] | None = None,
    ) -> TagGroup:
        """Replace the group (every field is required by Pleo); archive with `archived=True`."""
        body = {"archived": archived, "code": code, "name": name, "metadata": metadata or {}}
        return await self._transport.request_model(
            TagGroup,
            "PUT",
            api_path("/v0/tag-groups/{groupId}", groupId=group_id),
            operation="updateTagGroup",
            body=body,
        )


class Tags:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(
        self, group_id: str, *, include_archived: bool = False, page_size: int | None = None
    ) -> AsyncIterator[Tag]:
        """Every tag of one group, following the cursor."""
        return self._transport.paginate(
            Tag,
            "GET",
            api_path("/v0/tag-groups/{groupId}/tags", groupId=group_id),
            operation="getTags",
            params={"include_archived": include_archived},
            limit=page_size,
        )

    def search(
        self,
        company_id: str,
        *,
        tag_group_ids: Sequence[str] | None = None,
        tag_ids: Sequence[str] | None = None,
        archived: bool | None = None,
        include_archived: bool | None = None,
        text_search: str | None = None,
        page_size: int | None = None,
        pages_at_once: int = 1,
    ) -> AsyncIterator[Tag]:
        body: dict[str, Any] = {}
        if archived is not None:
            body["archived"] = archived
        if include_archived is not None:
            body["includeArchived"] = include_archived
        if tag_group_ids is not None:
            body["tagGroupIds"] = list(dict.fromkeys(tag_group_ids))
        if tag_ids is not None:
            body["tagIds"] = list(dict.fromkeys(tag_ids))
        if text_search is not None:
            body["textSearch"] = text_search
        return self._transport.paginate(
            Tag,
            "POST",
            "/v0/tags:search",
            operation="searchTagsPost",
            params={"company_id": company_id},
            body=body,
            limit=page_size,
            pages_at_once=pages_at_once,
            retry_safe=True,  # a search only reads
        )

    async def get(self, tag_id: str) -> Tag:
        return await self._transport.request_model(
            Tag, "GET", api_path("/v0/tags/{tagId}", tagId=tag_id), operation="getTag"
        )

    async def create(
        self,
        group_id: str,
        *,
        code: str,
        name: str | None = None,
        archived: bool = False,
        other_dimension_values: Sequence[str] | None = None,
    ) -> Tag:
        """Create a tag; ConflictError when the group already has its code."""
        return await self._transport.request_model(
            Tag,
            "POST",
            api_path("/v0/tag-groups/{groupId}/tags", groupId=group_id),
            operation="createTag",
            body=_tag_body(code, name, archived, other_dimension_values),
            expect=(200, 201),
            retry_safe=False,
        )

    async def update(
        self,
        tag_id: str,
        *,
        code: str,
        name: str | None = None,
        archived: bool = False,
        other_dimension_values: Sequence[str] | None = None,
    ) -> Tag:
        return await self._transport.request_model(
            Tag,
            "PUT",
            api_path("/v0/tags/{tagId}", tagId=tag_id),
            operation="updateTag",
            body=_tag_body(code, name, archived, other_dimension_values),
        )

    async def archive(
        self, company_id: str, tag_ids: Sequence[str], *, archived: bool = True
    ) -> builtins.list[Tag]:
        """Archive (or, with `archived=False`, unarchive) tags in bulk, 100 per request."""
        unique = list(dict.fromkeys(tag_ids))
        changed: builtins.list[Tag] = []
        for start in range(0, len(unique), ARCHIVE_BATCH):
            changed += await self._transport.request_list(
                Tag,
                "POST",
                "/v0/tags/archive",
                operation="bulkArchiveTags",
                body={
                    "archived": archived,
                    "companyId": company_id,
                    "tagIds": unique[start : start + ARCHIVE_BATCH],
                },
                expect=(200, 201),
                retry_safe=True,  # sets a flag on existing tags: twice is the same as once
            )
        return changed


def _tag_body(
    code: str, name: str | None, archived: bool, other_dimension_values: Sequence[str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"archived": archived, "code": code}
    if name is not None:
        body["name"] = name
    if other_dimension_values is not None:
        body["otherDimensionValues"] = list(other_dimension_values)
    return body
