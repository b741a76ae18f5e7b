# sipbridge: SIP telephony bridge for LiveKit.
# Build: docker build -t sipbridge .     Run: see docker-compose.yaml (host networking: SIP 5060, RTP 10000-20000).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sipbridge ./sipbridge
COPY dispatch ./dispatch
RUN pip install --no-compile . && useradd --system --home /var/lib/sipbridge --create-home sipbridge
USER sipbridge
# Embedded storage (used only when no Redis is configured) lives in the user's data directory.
ENV XDG_DATA_HOME=/var/lib/sipbridge
VOLUME ["/var/lib/sipbridge"]
# Configuration as for LiveKit's Go SIP service: SIP_CONFIG_BODY, SIP_CONFIG_FILE or --config.
ENTRYPOINT ["sipbridge"]
