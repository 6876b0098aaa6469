# latchkey as a container image: built with the same `cargo build` CI runs, served from a
# distroless runtime (no shell, no package manager) as a non-root user.
#
#   docker build -t latchkey .
#   docker run -p 8080:8080 -v latchkey-data:/var/lib/latchkey \
#     -e LATCHKEY_ISSUER=https://auth.example.com -e LATCHKEY_MASTER_KEY_FILE=/run/secrets/master_key \
#     --mount type=secret,... latchkey

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The production build: no demo, no PhotoAPI.
RUN cargo build --release --locked -p latchkey-server --no-default-features \
    && install -D -m 0755 target/release/latchkey /out/latchkey \
    && install -d -m 0700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/latchkey /usr/local/bin/latchkey
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/latchkey
USER nonroot
# SQLite by default, in the volume; several replicas use PostgreSQL instead.
ENV LATCHKEY_LISTEN=0.0.0.0:8080 \
    LATCHKEY_DATABASE__URL=sqlite:///var/lib/latchkey/latchkey.db \
    LATCHKEY_LOG__FORMAT=json
VOLUME ["/var/lib/latchkey"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/latchkey", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
