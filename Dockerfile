# Multi-stage build: compile in the Rust image, run in a slim Debian as a non-root user.
#   docker build -t tgwa .
#   docker run -d --name tgwa --env-file .env -v tgwa-data:/data tgwa
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
# The workspace member: cargo refuses a workspace whose member is missing.
COPY crates ./crates
# SQLite is bundled and built from source by rusqlite/libsqlite3-sys (needs the C compiler
# that the rust image already has).
RUN cargo build --release --locked --bin tgwa

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tgwa \
    && mkdir -p /data && chown tgwa:tgwa /data && chmod 0700 /data
COPY --from=build /src/target/release/tgwa /usr/local/bin/tgwa
USER tgwa
WORKDIR /data
# The master database, "DB USER TELEGRAM/" and backups/ all live in the volume.
VOLUME ["/data"]
ENV TGWA_DATA_DIR="/data/DB USER TELEGRAM" \
    TGWA_MASTER_DB=/data/bot_data.db \
    TGWA_HTTP_ADDR=0.0.0.0:9464
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9464/health || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tgwa"]
CMD ["run"]
