import httpx


async def test_about_after_password_change(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/api/admin/about")
    assert response.status_code == 200
    body = response.json()
    assert len(body["iss"]) == 32
    assert body["stage"] == "Prod"
