# hoist's own images, built by hoist itself (no daemon) — scripts/release.sh builds the static binary,
# stages it, a CA bundle and busybox under target/image/ (the binary and busybox per architecture:
# target/image/amd64/, target/image/arm64/ — hoist's own pipeline, .gitlab-ci.yml, builds both), then runs
# `hoist build` for both targets:
#   hoist:VERSION        (the default target): the static binary and a CA bundle, ENTRYPOINT ["hoist"];
#   hoist:VERSION-debug  (--target debug): the same plus busybox's shell and tools, for GitLab jobs,
#                        whose `script:` needs a shell (use it with `entrypoint: [""]`).
# After `scripts/release.sh --stage`, `docker build .` and `docker build --target debug .` work too.
FROM scratch AS release
ARG TARGETARCH
COPY target/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY target/image/${TARGETARCH}/hoist /usr/local/bin/hoist
ENV PATH=/usr/local/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title="hoist" \
      org.opencontainers.image.description="Build and push OCI images and Helm charts without a Docker daemon"
ENTRYPOINT ["hoist"]
CMD ["--help"]

FROM release AS debug
ARG TARGETARCH
COPY target/image/${TARGETARCH}/busybox/ /bin/
CMD []

FROM release
