# One image for every process of the portal: web (gunicorn), Celery worker,
# outbox relay, Flower and the one-shot migrate. docker-compose.yml picks the
# command; the default is the web server, on the production settings.
FROM python:3.11-slim

# PYTHONPATH: the settings find templates/ and static/ relative to the source
# tree (BASE_DIR) and the wheel carries no templates, so every process must
# import the code in /app, not the copy `pip install .` puts in site-packages.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONPATH=/app

WORKDIR /app

RUN groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /app \
        --shell /usr/sbin/nologin portal

COPY . .

# The exact dependency versions of requirements/base.lock (hash-checked; no
# dev extras), then the project without resolving again. The in-tree build
# leaves build/ and *.egg-info behind; they are not needed at run time.
RUN pip install --require-hashes -r requirements/base.lock \
    && pip install --no-deps . \
    && rm -rf build ./*.egg-info

# Static files are collected into the image (var/static, served by WhiteNoise).
# collectstatic needs neither a database nor a broker nor the real secret:
# the key below exists only in this build step, and memory:// keeps the base
# settings from creating the embedded broker's folders.
RUN SECRET_KEY=build-only-collectstatic-not-a-secret \
    DJANGO_SETTINGS_MODULE=portal.settings.base \
    CELERY_BROKER_URL=memory:// \
    python manage.py collectstatic --noinput \
    && chown -R portal:portal var

# Every process of the image runs the production settings unless told
# otherwise: they refuse to start without a real SECRET_KEY or with DEBUG on.
ENV DJANGO_SETTINGS_MODULE=portal.settings.production

# Numeric, so "runAsNonRoot" checks (Kubernetes and the like) can verify it.
USER 10001:10001

EXPOSE 8000

CMD ["gunicorn", "portal.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000", "--workers", "3"]
