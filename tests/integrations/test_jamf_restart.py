"""A record sync under way when the server stops is finished by the next start."""

from __future__ import annotations

import asyncio
import hashlib

from ods.core.config import Settings
from tests.helpers.api import NEW_PASSWORD, anonymous, bearer, login, started
from tests.helpers.jamf_pro import JamfPro
from tests.helpers.jamf_steps import configure, until
from tests.helpers.packages import content_of, uploaded


async def test_a_pending_sync_survives_a_restart(settings: Settings, jamf: JamfPro) -> None:
    # The job is still waiting for its next try when the server stops.
    slow = settings.model_copy(update={"jamf_retry_seconds": 1.5})
    content = content_of(2000, seed=9)
    async with started(slow) as app, anonymous(app) as client:
        token = await login(client, "admin", "ods1234!")
        client.headers.update(bearer(token))
        changed = await client.post(
            "/api/auth/password", json={"old_password": "ods1234!", "new_password": NEW_PASSWORD}
        )
        assert changed.status_code == 204, changed.text
        await configure(client, jamf)
        jamf.down = True
        await uploaded(client, "Later.pkg", content)
        await until(lambda: jamf.token_requests() >= 1)
        await asyncio.sleep(0.2)  # the failed try is recorded
    jamf.down = False
    assert jamf.token_requests() == 1
    assert jamf.packages == {}

    async with started(settings) as app, anonymous(app) as client:
        client.headers.update(bearer(await login(client, "admin", NEW_PASSWORD)))
        [record] = await until(lambda: jamf.by_filename("Later.pkg"))
        assert record["hashValue"] == hashlib.sha512(content).hexdigest()
