"""The receiving side of the mesh: intake of news, version conflicts, the download job."""
