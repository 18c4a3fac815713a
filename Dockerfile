# der-gateway container image: `docker build -t dergw .` (docs/deploy.md).
# Stage 1 builds the wheel; stage 2 installs it with its runtime dependencies only (no dev tools, no compiler,
# no IEC 61850 binding: add `--build-arg EXTRAS=[iec61850]` to include it, and accept its GPLv3 licence).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY protocols ./protocols
COPY mappings ./mappings
RUN pip wheel --no-deps --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN WHEEL="$(ls /wheels/der_gateway-*.whl)" \
    && pip install --no-cache-dir "${WHEEL}${EXTRAS}" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/dergw --shell /usr/sbin/nologin dergw \
    && mkdir -p /var/lib/dergw/data /etc/dergw/certs \
    && chown -R dergw:dergw /var/lib/dergw /etc/dergw/certs
# The SQLite file (stations, directives, outcomes, audit log) and the certificates/audit signing key.
VOLUME ["/var/lib/dergw/data", "/etc/dergw/certs"]
# Inside a container the endpoints must listen on every interface; the configuration file is mounted read-only.
ENV DERGW_DATA_DIR=/var/lib/dergw/data \
    DERGW_CERTS_DIR=/etc/dergw/certs \
    DERGW_OCPP__HOST=0.0.0.0 \
    DERGW_API__HOST=0.0.0.0
USER dergw
WORKDIR /var/lib/dergw
# 9000: OCPP station endpoint (ws/wss); 8080: operator API, /metrics, /livez, /readyz.
EXPOSE 9000 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/livez', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["dergw"]
CMD ["run", "--config", "/etc/dergw/gateway.toml"]
