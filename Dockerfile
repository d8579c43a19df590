# Townsquare's image, built offline from the bundle's wheelhouse (no package index is reached):
#   townsquare bundle build && tar xf dist/townsquare-*.tar && cd townsquare-*/ && docker compose build
# The base image must match the wheelhouse: CPython 3.11 on glibc x86_64 (bundle.json says which).
# The full (not slim) Debian image carries libgomp, which the compiled llama.cpp wheel links to.
FROM python:3.11.11-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_INDEX=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TOWNSQUARE_DATA_DIR=/data \
    TOWNSQUARE_HOST=0.0.0.0 \
    TOWNSQUARE_PORT=8080

COPY wheelhouse /tmp/wheelhouse
RUN python -m pip install --no-index --no-cache-dir --find-links /tmp/wheelhouse -r /tmp/wheelhouse/requirements.txt \
 && python -m pip install --no-index --no-cache-dir --no-deps --find-links /tmp/wheelhouse -r /tmp/wheelhouse/models.txt \
 && rm -rf /tmp/wheelhouse \
 && useradd --system --uid 10001 --home-dir /data --create-home townsquare \
 && mkdir -p /memory && chown townsquare /data /memory

USER townsquare
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=4 \
    CMD ["python", "-m", "townsquare.bundles.offline.probe", "http", "http://127.0.0.1:8080/health"]
CMD ["townsquare", "serve"]
