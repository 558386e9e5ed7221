"""System information for `GET /api/admin/system`, read with psutil."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict

from ods.core.humanize import duration_hr, size_hr


class SystemInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cpu_count": 2,
                    "disk_free": 60351324160,
                    "disk_free_hr": "56.2 GB",
                    "disk_total": 270465425408,
                    "disk_total_hr": "251.9 GB",
                    "disk_used": 23448989696,
                    "disk_used_hr": "21.8 GB",
                    "mem_available": 24301559808,
                    "mem_available_hr": "22.6 GB",
                    "mem_total": 25213743104,
                    "mem_total_hr": "23.5 GB",
                    "mem_used": 912183296,
                    "mem_used_hr": "869.9 MB",
                    "network_bytes_received": 1203400,
                    "network_bytes_received_hr": "1.1 MB",
                    "network_bytes_sent": 804300,
                    "network_bytes_sent_hr": "785.4 KB",
                    "uptime": 30806,
                    "uptime_hr": "8:33:26",
                }
            ]
        }
    )

    cpu_count: int
    disk_free: int
    disk_free_hr: str
    disk_total: int
    disk_total_hr: str
    disk_used: int
    disk_used_hr: str
    mem_available: int
    mem_available_hr: str
    mem_total: int
    mem_total_hr: str
    mem_used: int
    mem_used_hr: str
    network_bytes_received: int
    network_bytes_received_hr: str
    network_bytes_sent: int
    network_bytes_sent_hr: str
    uptime: int
    uptime_hr: str


def read_system_info(data_dir: Path) -> SystemInfo:
    """Figures for the machine; disk figures are for the filesystem holding the data dir."""
    disk = psutil.disk_usage(str(data_dir))
    memory = psutil.virtual_memory()
    network = psutil.net_io_counters()
    uptime = int(time.time() - psutil.boot_time())
    sizes = {
        "disk_free": disk.free,
        "disk_total": disk.total,
        "disk_used": disk.used,
        "mem_available": memory.available,
        "mem_total": memory.total,
        "mem_used": memory.total - memory.available,
        "network_bytes_received": network.bytes_recv,
        "network_bytes_sent": network.bytes_sent,
    }
    fields: dict[str, int | str] = {"cpu_count": psutil.cpu_count() or 1}
    for name, value in sizes.items():
        fields[name] = value
        fields[f"{name}_hr"] = size_hr(value)
    fields["uptime"] = uptime
    fields["uptime_hr"] = duration_hr(uptime)
    return SystemInfo.model_validate(fields)
