# The scheduler image (Marathon runs `clusterjobs scheduler` in it, see deploy/marathon/).
# Build from the repository root:
#   docker build -f deploy/docker/scheduler.Dockerfile -t clusterjobs/scheduler:0.1.0 .
# Two stages: the builder solves the two install hurdles of deploy/local/install.sh
# (http-parser's pure-Python wheel, pyeoskit built with Go); the runtime stage gets wheels only.

FROM python:3.11.11-slim-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake golang-go git \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY scheduler ./scheduler
COPY executor ./executor
COPY actors ./actors
COPY contracts ./contracts
# http-parser 0.9.0's C extension does not compile on 3.11: wheel of its Python modules only.
RUN pip download --no-deps --no-binary :all: http-parser==0.9.0 -d /tmp/hp \
 && tar -xzf /tmp/hp/http-parser-0.9.0.tar.gz -C /tmp/hp \
 && cd /tmp/hp/http-parser-0.9.0 \
 && python -c 'from setuptools import setup; setup(name="http-parser", version="0.9.0", packages=["http_parser"])' bdist_wheel -d /wheels
RUN pip install scikit-build cmake ninja cython \
 && pip wheel --no-build-isolation --no-deps -w /wheels pyeoskit==1.1.12 \
 && pip wheel -w /wheels --find-links /wheels /src

FROM python:3.11.11-slim-bookworm
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels clusterjobs \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 clusterjobs \
 && useradd --system --uid 10001 --gid clusterjobs --home-dir /home/clusterjobs --create-home clusterjobs
USER 10001:10001
WORKDIR /home/clusterjobs
# Keys and tokens come at run time (Marathon secrets as CLUSTERJOBS_CHAIN_KEY /
# CLUSTERJOBS_AUTH_TOKEN), never from the image.
EXPOSE 8080
ENTRYPOINT ["clusterjobs"]
CMD ["scheduler"]
