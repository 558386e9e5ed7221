# The ODS app image: `ods serve` on port 8000, data in /var/lib/ods.
# compose.yaml runs it behind Nginx with MariaDB; docs/install.md explains.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/var/lib/ods

RUN groupadd --system --gid 1000 ods \
    && useradd --system --uid 1000 --gid ods --home-dir /var/lib/ods \
        --no-create-home --shell /usr/sbin/nologin ods \
    && install -d -o ods -g ods -m 0755 /var/lib/ods

WORKDIR /usr/src/ods
COPY pyproject.toml README.md ./
COPY alembic ./alembic
COPY src ./src
RUN pip install .

USER ods
WORKDIR /var/lib/ods
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ODS_PORT', '8000'), timeout=4)"

CMD ["ods", "serve", "--host", "0.0.0.0"]
