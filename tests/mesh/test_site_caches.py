"""Two processes of one site (one data dir, one database): what the admin changes through
one, the other acts on at once; no process keeps its own copy past a change."""

from __future__ import annotations

from ods.mesh.peers import links
from tests.helpers.mesh import Mesh, peer_call


async def test_a_peer_forgotten_through_one_process_is_refused_by_the_other_at_once(
    mesh: Mesh,
) -> None:
    peer = await mesh.add("ods-peer")
    site = await mesh.add("ods-site")
    other = await mesh.add("ods-site-2", site_of=site)
    registered = await site.register_with(peer)
    assert registered.status_code == 201, registered.text
    old_link = await links.link_by_iss(peer.context, site.context.iss)
    # The other process has just answered the peer: it knows the peer's link.
    assert (await peer_call(mesh, peer, other, "GET", "/packages")).status_code == 200

    forgot = await site.admin.delete(f"/api/admin/registered_ods/{registered.json()['id']}")
    assert forgot.status_code == 204, forgot.text

    refused = await peer_call(mesh, peer, other, "GET", "/packages", link=old_link)
    assert refused.status_code == 401, refused.text
