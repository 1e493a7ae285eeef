"""Federation: the platform office's peers and their state (platform_admin), a child's resync, and the change
feed a peer pulls — the one route here without a token, authenticated by its RFC 9421 signature instead."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response
from pydantic import BaseModel, Field

from govshare_common.message_signatures import read_signature, sign_response
from govshare_common.platform_identity import PlatformIdentity
from govshare_common.service import UoW

from catalog_svc.federation import feed, guard, peers, store
from catalog_svc.federation.peers import not_configured
from catalog_svc.routes.common import PREFIX, PlatformAdmin

router = APIRouter(prefix=f"{PREFIX}/federation", tags=["federation"])

DivisionCode = Annotated[str, Path(min_length=6, max_length=6, description="对端平台行政区划代码")]


class PeerBody(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="对端平台名称")
    level: str = Field(min_length=1, max_length=40, description="层级")
    relation: Literal["parent", "child"] = Field(description="对端平台是本平台的上级（parent）还是下级（child）")
    base_url: str = Field(min_length=1, max_length=500, description="对端平台入口地址（https://…）")
    public_key: str = Field(min_length=1, max_length=200, description="对端平台公布的 Ed25519 公钥")


class NewPeerBody(PeerBody):
    division_code: str = Field(min_length=1, max_length=12, description="对端平台行政区划代码（GB/T 2260）")


def _me(request: Request) -> PlatformIdentity | None:
    return request.app.state.federation_identity  # type: ignore[no-any-return]


async def _peer_view(uow: UoW, division_code: str) -> dict[str, Any]:
    peer = await store.peer(uow.conn, division_code)
    assert peer is not None
    counts = await store.mirrored_count(uow.conn)
    return peers.shown(peer, mirrored=counts.get(division_code, 0), now=uow.clock.now())


@router.get("/identity", summary="本平台身份（同 /.well-known/govshare-platform）")
async def identity(request: Request, _principal: PlatformAdmin) -> dict[str, Any]:
    me = _me(request)
    if me is None:
        raise not_configured()
    return me.published()


@router.post("/peers", status_code=201, summary="登记对端平台（平台管理机构）")
async def register_peer(
    uow: UoW, request: Request, body: NewPeerBody, principal: PlatformAdmin, after: BackgroundTasks
) -> dict[str, Any]:
    await peers.register(uow, principal, _me(request), body.model_dump())
    after.add_task(_wake, request)  # once committed: a new child is pulled at once, not at the next round
    return await _peer_view(uow, body.division_code)


@router.put("/peers/{division_code}", summary="修改对端平台（地址、公钥、名称、层级、关系）")
async def change_peer(
    uow: UoW, request: Request, division_code: DivisionCode, body: PeerBody, principal: PlatformAdmin
) -> dict[str, Any]:
    await peers.change(uow, principal, _me(request), division_code, body.model_dump())
    return await _peer_view(uow, division_code)


@router.get("/peers", summary="对端平台及其同步状态：游标、滞后、最近成功与最近错误")
async def list_peers(uow: UoW, _principal: PlatformAdmin) -> dict[str, Any]:
    counts = await store.mirrored_count(uow.conn)
    now = uow.clock.now()
    items = [peers.shown(p, mirrored=counts.get(p["division_code"], 0), now=now) for p in await store.peers(uow.conn)]
    return {"items": items, "total": len(items)}


@router.get("/peers/{division_code}", summary="对端平台详情及同步状态")
async def get_peer(uow: UoW, division_code: DivisionCode, _principal: PlatformAdmin) -> dict[str, Any]:
    await peers._existing(uow, division_code)
    return await _peer_view(uow, division_code)


@router.post("/peers/{division_code}/resync", status_code=202, summary="从对端平台重新完整同步目录")
async def resync(
    uow: UoW, request: Request, division_code: DivisionCode, principal: PlatformAdmin, after: BackgroundTasks
) -> dict[str, Any]:
    await peers.resync(uow, principal, division_code)
    after.add_task(_wake, request)
    return await _peer_view(uow, division_code)


def _wake(request: Request) -> None:
    puller = getattr(request.app.state, "federation_puller", None)
    if puller is not None:
        puller.wake.set()


@router.get(
    "/changes",
    summary="目录变更订阅（对端平台以签名请求拉取；上级平台得全部目录，下级平台只得跨层级共享的资源；含墓碑记录）",
)
async def changes(
    uow: UoW,
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62, description="游标：只返回此序号之后的变更")] = 0,
    limit: Annotated[int, Query(ge=1, le=feed.MAX_PAGE, description="每页条数")] = 500,
) -> Response:
    me = _me(request)
    if me is None:
        raise not_configured()
    reader = await guard.verified_peer(uow, request, relations=("parent", "child"))
    page = await feed.page(uow.conn, after=after, limit=limit, platform=me.published(), reader=reader)
    body = json.dumps(page, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    signed = sign_response(
        status=200,
        body=body,
        key=me.key,
        keyid=me.keyid,
        created=int(uow.clock.now().timestamp()),
        nonce=read_signature(request.headers).nonce,
    )
    headers = {
        **signed,
        "X-Govshare-Principal": f"peer:{reader['division_code']}",
        "X-Govshare-Kind": guard.PEER_KIND,
    }
    return Response(body, media_type="application/json", headers=headers)
