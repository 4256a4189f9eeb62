# Quantd image: `quantd serve` plus `quantctl` on debian:bookworm.
#
#   docker build -t quantd .
#   docker run -p 7443:7443 -p 9464:9464 -v quantd-data:/var/lib/quantd quantd
#
# The build stage runs the same steps as a developer machine and CI
# (scripts/setup.sh --build, then the CMake build). The runtime stage gets only
# the shared libraries the two binaries load: RUNTIME_PACKAGES below. The
# build stage fails if that list and `ldd` of the built binaries disagree, and
# CTest (tests/ops, ValidateDeploy) runs the same check on every build, so the
# list cannot drift.

# Debian packages providing every shared library quantd and quantctl load
# (deploy/docker/runtime-packages.sh prints them).
ARG RUNTIME_PACKAGES="libabsl20220623 libc-ares2 libc6 libcivetweb1 libcom-err2 libffi8 libgcc-s1 libgmp10 libgnutls30 libgrpc++1.51 libgrpc29 libgssapi-krb5-2 libhogweed6 libicu72 libidn2-0 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libldap-2.5-0 libnettle8 libonnx1 libp11-kit0 libpq5 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libprotobuf32 libre2-9 libsasl2-2 libsqlite3-0 libssl3 libstdc++6 libtasn1-6 libunistring2 zlib1g"

# ---------------------------------------------------------------- build
FROM debian:bookworm AS build
ARG RUNTIME_PACKAGES
WORKDIR /src
# Dependencies first, so this layer is cached across source changes.
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQUANTD_BUILD_TESTS=OFF -DQUANTD_BUILD_BENCH=OFF \
 && cmake --build build -j"$(nproc)" --target quantd quantctl \
 && deploy/docker/runtime-packages.sh build/server/quantd build/client/quantctl/quantctl > /tmp/needed \
 && printf '%s\n' ${RUNTIME_PACKAGES} | sort -u > /tmp/listed \
 && { diff -u /tmp/listed /tmp/needed || { echo "update RUNTIME_PACKAGES in the Dockerfile" >&2; exit 1; }; } \
 && strip build/server/quantd build/client/quantctl/quantctl

# ---------------------------------------------------------------- runtime
FROM debian:bookworm
ARG RUNTIME_PACKAGES
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 quantd \
 && useradd --system --uid 10001 --gid quantd --home-dir /var/lib/quantd --no-create-home \
      --shell /usr/sbin/nologin quantd \
 && install -d -o quantd -g quantd -m 0750 /var/lib/quantd
COPY --from=build /src/build/server/quantd /usr/local/bin/quantd
COPY --from=build /src/build/client/quantctl/quantctl /usr/local/bin/quantctl

USER 10001:10001
WORKDIR /var/lib/quantd
VOLUME ["/var/lib/quantd"]
# gRPC API and Prometheus /metrics.
EXPOSE 7443 9464
# quantctl (and the HEALTHCHECK) talk to the local server.
ENV QUANTD_SERVER=127.0.0.1:7443
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["quantctl", "--server", "127.0.0.1:7443", "health"]
# SIGTERM drains: new work is refused, running jobs get --shutdown-grace-seconds
# (default 30) to finish, then are requeued. Docker's default stop timeout is
# 10 s: run with `--stop-timeout 60` (compose sets stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["quantd"]
CMD ["serve", "--listen", "0.0.0.0:7443", "--data-dir", "/var/lib/quantd", \
     "--metrics-listen", "0.0.0.0:9464"]
