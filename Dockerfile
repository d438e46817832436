# hoist's own image: the static binary and nothing else. hoist builds it itself (no daemon):
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target x86_64-unknown-linux-gnu
#   target/x86_64-unknown-linux-gnu/release/hoist build . -t registry.example.com/tools/hoist:0.1.0
# With no CA bundle in the image, hoist falls back to the Mozilla roots compiled into it; mount or COPY a
# bundle and set SSL_CERT_FILE to trust a private CA (or use --ca-file / CI_SERVER_TLS_CA_FILE).
FROM scratch
COPY target/x86_64-unknown-linux-gnu/release/hoist /usr/local/bin/hoist
LABEL org.opencontainers.image.title="hoist" \
      org.opencontainers.image.description="Build and push OCI images and Helm charts without a Docker daemon"
ENTRYPOINT ["/usr/local/bin/hoist"]
CMD ["--help"]
