# NautilusLB container image: Deno on Debian slim, non-root (uid 1993), every dependency
# cached at build time, so the image needs no registry and runs with a read-only root.
#
# Runs the original's documented line unchanged:
#   docker run -d --name nautiluslb \
#     -v /path/to/config.yaml:/nautiluslb/config.yaml \
#     -v ~/.kube/config:/root/.kube/config \
#     -p 80:80 cloudresty/nautiluslb:latest
# No command serves ./config.yaml from /nautiluslb. The kubeconfig in root's home is found
# (HOME=/root, traversable by any user); if the file itself is not readable by the container's
# user, the entrypoint stops at once with one line saying what to change (`--user`).
# docs/deploy.md, "Container image", says why each choice.
FROM docker.io/denoland/deno:debian-2.9.6

WORKDIR /app
COPY deno.json deno.lock ./
COPY src/ src/
COPY config.yaml config.schema.json ./
COPY deploy/container/entrypoint.sh /usr/local/bin/nautiluslb
# Fetch and cache the pinned npm dependencies at build time, as root into DENO_DIR, then hand
# the cache to nobody: read-only for the runtime user. /nautiluslb: the original's working
# directory, where `config.yaml` is mounted. /root: the original's home, where it looked for
# ~/.kube/config: traversable by any user, so a mounted kubeconfig can be read. No setuid
# or setgid file is left: nothing in the image can gain privileges.
# Behind a TLS-intercepting proxy, pass its CA: `--secret id=ca_bundle,src=/path/to/ca.crt`.
RUN --mount=type=secret,id=ca_bundle \
  if [ -f /run/secrets/ca_bundle ]; then export DENO_CERT=/run/secrets/ca_bundle; fi \
  && deno cache --quiet src/main.ts \
  && chmod -R a+rX /deno-dir \
  && mkdir -p /nautiluslb /root/.kube \
  && cp config.yaml /nautiluslb/config.yaml \
  && chmod 0755 /root /root/.kube \
  && find / -xdev -perm /6000 -type f -exec chmod a-s {} +

USER 1993:1993
ENV HOME=/root NO_COLOR=1
WORKDIR /nautiluslb
# The original publishes 80 (traffic); the admin port (9090) listens on 127.0.0.1 unless
# `settings.adminAddress` or `--admin-address` says otherwise, so it is not exposed here.
EXPOSE 80 443
STOPSIGNAL SIGTERM
# deno run --cached-only --unstable-net --allow-net --allow-read --allow-env /app/src/main.ts
ENTRYPOINT ["/usr/local/bin/nautiluslb"]
CMD ["serve", "--config", "./config.yaml"]
