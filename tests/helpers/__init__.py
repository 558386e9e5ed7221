"""What the tests share; test modules and conftest files import it from here, never
from each other.

- api: test settings constants, logging in, clients, `assert_error` (the error shape)
- accounts: the first-start login and extra users with a role
- packages: reproducible content, hand-built multipart bodies, `upload` and `uploaded`
- mesh: in-process meshes of apps (`Mesh`, `Node`, `MeshTransport`) and their waits
- services: real MariaDB and PostgreSQL servers, and which backends a run uses
- tls: a self-signed certificate
- console: Chromium and the web console's login, tabs and rows
- autopkg: contrib/autopkg's processor run as AutoPkg runs it, on a stand-in `autopkglib`
- processes: real programs: `ods serve` (serve), meshes of them (mesh), Nginx,
  redis-server, and a TCP proxy that can stall
"""
