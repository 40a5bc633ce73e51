# The recommendation service as an image: CPU torch, cdtl[serve,offline] at the lock's versions, a non-root user,
# the bundle mounted read-only at /bundle, every setting from the environment (CDTL_BUNDLE, CDTL_HOST, CDTL_PORT,
# CDTL_LOG_LEVEL, CDTL_ITEMS_STORE, CDTL_SERVE_TOKEN or CDTL_SERVE_TOKEN_FILE).
#   docker build -t cdtl-serve .
#   docker run -p 8000:8000 -v "$PWD/bundles/ml1m:/bundle:ro" -e CDTL_READ_ONLY=1 cdtl-serve
# compose.yaml runs several replicas behind a reverse proxy, with Prometheus scraping each one.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --gid 10001 cdtl \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin cdtl \
    && mkdir -p /bundle /items \
    && chown cdtl:cdtl /items

WORKDIR /opt/cdtl
COPY pyproject.toml README.md LICENSE requirements-ci.txt ./
COPY cdtl ./cdtl

# The lock's exact versions as constraints (its torch is the CPU build, from the PyTorch CPU index), for the two
# extras the service needs; the lock's other extras (the book, the tests, the benchmarks) stay out of the image.
RUN sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements-ci.txt > /tmp/pins.txt \
    && pip install --extra-index-url https://download.pytorch.org/whl/cpu -c /tmp/pins.txt ".[serve,offline]" \
    && rm /tmp/pins.txt

USER 10001:10001
ENV CDTL_BUNDLE=/bundle \
    CDTL_HOST=0.0.0.0 \
    CDTL_PORT=8000 \
    CDTL_LOG_LEVEL=info \
    CDTL_PROGRESS=0 \
    OMP_NUM_THREADS=1
EXPOSE 8000

# ready once the bundle is loaded and verified; a large bundle takes a while to load, hence the start period
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-m", "cdtl.serve.server", "ready"]

CMD ["cdtl", "serve"]
