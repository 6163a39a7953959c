# One image for every Hookline process: `hookline api`, `hookline worker`, `hookline migrate`,
# `hookline setup-temporal`, `hookline rekey`. It runs as an unprivileged user (uid 10001).
#
#   docker build -t hookline .
#   docker run --rm -e HOOKLINE_DATABASE_URL=… hookline migrate
#
# docker-compose.production.yml runs the whole production shape with it. (Validated statically by
# tests/test_deployment_files.py; no container engine runs in the test suite.)

FROM python:3.12-slim AS build
WORKDIR /src
COPY . .
# Wheels of Hookline and of every dependency, so the runtime stage needs no compiler and no cache.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/hookline --create-home --shell /usr/sbin/nologin hookline
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels hookline && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/hookline
# In a container the API must listen beyond loopback to be reached at all; publish its port
# on the host's loopback (or behind a gateway), not on every interface.
ENV PYTHONUNBUFFERED=1 \
    HOOKLINE_HOST=0.0.0.0 \
    HOOKLINE_DATA_DIR=/var/lib/hookline
EXPOSE 8000
ENTRYPOINT ["hookline"]
CMD ["api"]
