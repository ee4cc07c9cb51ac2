# NautilusLB container image: Deno runtime, non-root, minimal permissions.
FROM denoland/deno:debian-2.9.6

WORKDIR /app
COPY deno.json deno.lock ./
COPY src/ src/
COPY config.yaml config.schema.json ./
# Fetch and cache the pinned npm dependencies at build time; the image needs no registry later.
RUN deno cache src/main.ts

USER deno
EXPOSE 9090
# --unstable-net: `Deno.listen({ reusePort })`, so `settings.workers` above 1 can share ports.
ENTRYPOINT ["deno", "run", "--cached-only", "--unstable-net", "--allow-net", "--allow-read", "--allow-env", "src/main.ts"]
CMD ["serve", "--config", "/etc/nautiluslb/config.yaml"]
