# The `peergroup` node as a container image.
#
#   docker build -t peergroup .
#   docker run -d --name pg -v pg-data:/data -p 3587:3587 peergroup
#   docker run --rm -it -v pg-data:/data peergroup --help
#
# Two stages: the standard Rust image compiles the binary, a slim Debian runs it. Both are
# build arguments, so a mirror or a pinned digest can be used instead:
#
#   docker build --build-arg BUILDER=rust:1.90-bookworm --build-arg BASE=debian:bookworm-slim .
#
# The runtime base must have the builder's glibc or newer (both bookworm by default).
# The offline multi-node test harness (tests/compose/) does not use this file: it cannot
# pull these images, and it does not compile twice. It builds peergroup/base:bookworm with
# debootstrap (docker/base-image.sh) and copies in the binary CI already built
# (docker/Dockerfile.test, docker/test-image.sh). Keep the runtime contract below (user,
# volume, ports, entrypoint, health check) the same in both files.

ARG BUILDER=rust:1-bookworm
ARG BASE=debian:bookworm-slim

FROM ${BUILDER} AS build
WORKDIR /src
# .dockerignore keeps target/, .git and fuzz/ out of the context.
COPY . .
RUN cargo build --release --locked -p peergroup-node --features cli --bin peergroup \
    && install -D -m 0755 target/release/peergroup /out/peergroup

FROM ${BASE}
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin peergroup \
    && mkdir -p /data \
    && chown peergroup:peergroup /data \
    && chmod 0700 /data
COPY --from=build /out/peergroup /usr/local/bin/peergroup

# The node's database (peergroup.redb) and transport key (node.key, hence a stable peer id).
# A named volume mounted here starts with this directory's owner and mode.
VOLUME /data
ENV PEERGROUP_DATA_DIR=/data
USER peergroup
WORKDIR /data

# 3587: libp2p (TCP); 3588: the HTTP control API, on every interface of the container
# (the default CMD) so that other containers of its network can drive it; it still needs
# the token from /data/api.token. Publish 3588 on the host only on purpose.
EXPOSE 3587 3588

# `status` asks the local node through its control API; exit 0 when it answers.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["peergroup", "--data-dir", "/data", "status"]

ENTRYPOINT ["peergroup"]
CMD ["run", "--data-dir", "/data", "--api-listen", "0.0.0.0:3588"]
