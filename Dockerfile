# raftmq image without a base image: FROM scratch plus the static binary built on the host.
# Build it with docker/build-image.sh (static binary, then `docker build -t raftmq:latest .`).
FROM scratch

COPY target/static/image/raftmq /raftmq

# WORKDIR creates the directories in the empty root: /tmp for temporary files, /data for the
# write-ahead log, state mirror and snapshots (a volume: keep one per node).
WORKDIR /tmp
WORKDIR /data
VOLUME ["/data"]

# Listen on every interface of the container; override any key with RAFTMQ_<SECTION>_<KEY>
# (node id, peers, secret, admin token and VIP come from the environment, see
# docker-compose.yml).
ENV RAFTMQ_MQTT_LISTEN=0.0.0.0:1883 \
    RAFTMQ_RAFT_RAFT_LISTEN=0.0.0.0:7946 \
    RAFTMQ_ADMIN_LISTEN=0.0.0.0:8081

# MQTT, Raft, admin API.
EXPOSE 1883 7946 8081

ENTRYPOINT ["/raftmq"]
CMD ["serve", "--data-dir", "/data"]
